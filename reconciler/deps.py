"""Check compiled rules against a workspace's own dependency list. Pure.

Azure ML publishes, per workspace, the hosts and ports it needs (`outboundNetworkDependenciesEndpoints`).
The catalogue is documentation-based and can lag behind; this check says, endpoint by endpoint, whether the
desired firewall rules let it through, so a gap shows before users hit it.

An endpoint `host:port` is covered by an application- or network-rule destination `d` on that port when
`d == host`, or `d` is `*.suffix` and `host` ends with `.suffix` (Azure Firewall's leading-wildcard
semantics: `*.x.com` does not cover `x.com`). A wildcard endpoint `*.a.b` is covered by `*.a.b` or by a
broader wildcard `*.b`. Service-tag rules cannot be matched to host names by address; they count only for the
hosts the catalogue says they cover (`covered_by`), which the allow-list lists as `service tag <tag>`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from reconciler.model import AllowListRow, DesiredTarget

FORMAT_VERSION = 1
_ENFORCED = ("application-rule", "network-rule (FQDN", "service tag ")


@dataclass(frozen=True, slots=True)
class Dependency:
    category: str
    domain: str
    port: int


@dataclass(frozen=True, slots=True)
class DependencyCheck:
    workspace: str
    category: str
    domain: str
    port: int
    covered_by: tuple[str, ...]  # catalogue entry ids whose rules let it through

    @property
    def covered(self) -> bool:
        return bool(self.covered_by)


def parse_dependencies(body: object) -> list[Dependency]:
    """The ARM response (`{"value": [{"properties": {"category", "endpoints": [...]}}]}`) as a flat list.
    Nothing (None) is no dependencies; any other shape raises ValueError naming the field."""
    out: list[Dependency] = []
    if body is None:
        return out
    if not isinstance(body, dict):
        raise ValueError(f"expected an object, got {type(body).__name__}")
    for i, item in enumerate(_items(body.get("value"), "value")):
        item = _obj(item, f"value[{i}]")
        props = _obj(item.get("properties"), f"value[{i}].properties")
        category = str(props.get("category") or "")
        for j, ep in enumerate(_items(props.get("endpoints"), f"value[{i}].properties.endpoints")):
            ep = _obj(ep, f"value[{i}].properties.endpoints[{j}]")
            domain = ep.get("domainName") or ""
            if not isinstance(domain, str):
                raise ValueError(f"value[{i}].properties.endpoints[{j}].domainName: expected a string")
            domain = domain.strip().lower()
            if not domain:
                continue
            details = _items(ep.get("endpointDetails"), "endpointDetails") or [{"port": 443}]
            for d in details:
                port = d.get("port") if isinstance(d, dict) else None
                if isinstance(port, int):
                    out.append(Dependency(category, domain, port))
    return sorted(set(out), key=lambda d: (d.domain, d.port, d.category))


def _items(value: object, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ValueError(f"{where}: expected a list, got {type(value).__name__}")
    return value


def _obj(value: object, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"{where}: expected an object, got {type(value).__name__}")
    return value


def _port_ok(row: AllowListRow, port: int) -> bool:
    if row.port == "*":
        return True
    lo, _, hi = row.port.partition("-")
    if not lo.isdigit():
        return False
    return int(lo) <= port <= int(hi or lo)


def _host_ok(dest: str, domain: str) -> bool:
    dest = dest.lower()
    if dest == domain:
        return True
    if dest.startswith("*."):
        suffix = dest[1:]  # ".x.com"
        if domain.startswith("*."):
            return domain[1:].endswith(suffix)
        return domain.endswith(suffix)
    return False


def check_dependencies(desired: DesiredTarget, workspace: str, deps: Iterable[Dependency]) -> list[DependencyCheck]:
    rows: list[tuple[str, AllowListRow]] = []
    for r in desired.allow_list:
        if r.workspace != workspace or r.direction != "outbound" or not r.enforced_as.startswith(_ENFORCED):
            continue
        if r.kind == "url_path":
            if "widened" not in r.enforced_as:
                continue  # a URL rule lets only its path through, not the whole host
            rows.append((r.destination.split("/", 1)[0], r))
        else:
            rows.append((r.destination, r))
    out = []
    for dep in deps:
        ids = sorted({r.entry_id for host, r in rows if _port_ok(r, dep.port) and _host_ok(host, dep.domain)})
        out.append(DependencyCheck(workspace, dep.category, dep.domain, dep.port, tuple(ids)))
    return out
