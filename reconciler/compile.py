"""Compile a target (its workspaces and features) and a catalogue into the desired state. Pure.

Rule types are chosen so that Azure Firewall accepts them:

- service tags                        -> network rules, `destinationAddresses` (regional suffix in Azure's casing)
- FQDNs and leading wildcards on web   -> application rules, `protocols` Http/Https with ports
  ports (Http/Https, TCP 80/443)
- FQDNs (no wildcard) on other ports  -> network rules with `destinationFqdns` (needs DNS proxy: a requirement)
- wildcards on other ports            -> the entry's declared fallback service tag, with a warning
- URL paths                           -> `targetUrls` + `terminateTLS` on Premium with TLS inspection;
                                         otherwise the host only, with a "widened" warning
- inbound service tags (apply_as route) -> routes with next hop Internet in the target's route table
- inbound NSG items (apply_as nsg)    -> not a firewall rule: a warning and an allow-list row

Per workspace the owned group holds two filter rule collections, `ws-<name>-net` and `ws-<name>-app`.
Rule names derive from the destination, so they are stable across runs and independent of input order.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from reconciler.arm import port_key
from reconciler.config import Config, Target, Workspace
from reconciler.errors import ConfigError
from reconciler.model import (
    BREADTHS,
    USER_ENTRY,
    AllowListRow,
    ApplicationProtocol,
    ApplicationRule,
    Catalogue,
    CompileWarning,
    DesiredTarget,
    Endpoint,
    NetworkRule,
    PortSpec,
    Provenance,
    Requirements,
    Route,
    RuleCollection,
    RuleCollectionGroup,
    RuleOrigin,
)

NAME_MAX = 80
DESCRIPTION_MAX = 140
COLLECTION_BASE_PRIORITY = 1000
COLLECTION_STEP = 10
_NAME_BAD = re.compile(r"[^A-Za-z0-9_.-]+")
# Service tags whose regional names use the lower-case region (`AzureCloud.eastus`); all others PascalCase.
LOWERCASE_REGION_TAGS = frozenset({"azurecloud"})


def regional_tag(base: str, region: str, suffixes: dict[str, str]) -> str:
    """`Storage` + `westus2` -> `Storage.WestUS2`, in Azure's casing for that tag."""
    if base.lower() in LOWERCASE_REGION_TAGS:
        return f"{base}.{region}"
    return f"{base}.{suffixes.get(region, region)}"


def safe_name(raw: str, *, limit: int = NAME_MAX) -> str:
    """An Azure-valid name (1-80 of `[A-Za-z0-9_.-]`, alphanumeric start, alphanumeric or `_` end).

    Deterministic: a name that must be shortened keeps a hash of the full text, so two long names stay apart.
    """
    name = raw.replace("*", "star")
    name = _NAME_BAD.sub("-", name).strip(".-")
    name = re.sub(r"-{2,}", "-", name)
    if len(name) > limit:
        digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
        name = name[: limit - 9].rstrip(".-") + "-" + digest
    name = name.rstrip(".-")
    if not name or not name[0].isalnum():
        name = "r" + name
    return name[:limit]


def collection_names(workspace: str) -> tuple[str, str]:
    """(network collection, application collection) of a workspace."""
    return safe_name(f"ws-{workspace}-net"), safe_name(f"ws-{workspace}-app")


@dataclass
class _RuleAcc:
    """Accumulates one desired rule while entries are folded in."""

    kind: str  # "net-tag" | "net-fqdn" | "app-fqdn" | "app-url-tls" | "app-url-http"
    destination: str
    protocol: str = ""  # network rules: TCP/UDP/Any
    ports: set[str] = field(default_factory=set)
    app_protocols: set[ApplicationProtocol] = field(default_factory=set)
    entry_ids: set[str] = field(default_factory=set)
    breadths: set[str] = field(default_factory=set)


@dataclass
class _WorkspaceOut:
    rules: dict[tuple[str, str, str], _RuleAcc] = field(default_factory=dict)
    rows: list[AllowListRow] = field(default_factory=list)

    def acc(self, kind: str, destination: str, protocol: str = "") -> _RuleAcc:
        key = (kind, destination.lower() if kind in ("app-fqdn", "net-fqdn") else destination, protocol)
        if key not in self.rules:
            self.rules[key] = _RuleAcc(kind=kind, destination=destination, protocol=protocol)
        return self.rules[key]


def compile_config(config: Config, catalogues: dict[str, Catalogue]) -> tuple[DesiredTarget, ...]:
    """Compile every target of a configuration. `catalogues` maps version -> catalogue."""
    return tuple(compile_target(t, catalogues[t.catalogue_version]) for t in config.targets)


def select_entries(catalogue: Catalogue, cloud: str, features: Iterable[str]) -> list[Endpoint]:
    """The catalogue entries a workspace with these features needs in this cloud (baseline always)."""
    wanted = {"baseline", *features}
    return [e for e in catalogue.entries if cloud in e.clouds and e.features & wanted]


def strategy_entries(catalogue: Catalogue, cloud: str, features: Iterable[str], allow_by: str) -> list[Endpoint]:
    """The entries a workspace gets under one strategy (`allow_by`), decided from each entry's data.

    - `both`: every selected entry.
    - `fqdns`: no service tag (strategy `service_tags`) where the catalogue has hosts: a port of a tag is dropped
      when a selected host that the tag covers (`covered_by`) is allowed on that protocol and port.
    - `service_tags`: every entry but the hosts (strategy `fqdns`) that a selected service tag already allows:
      a port of a host is dropped when one of its `covered_by` tags is selected on that protocol and port, and
      a host with no port left is dropped. Hosts no selected tag covers stay (e.g. `*.notebooks.azure.net`).
    """
    return split_by_strategy(catalogue, cloud, features, allow_by)[0]


def split_by_strategy(catalogue: Catalogue, cloud: str, features: Iterable[str], allow_by: str
                      ) -> tuple[list[Endpoint], list[tuple[Endpoint, str]]]:
    """(the entries to compile, [(a host entry with only its covered ports, the tag covering them)])."""
    selected = select_entries(catalogue, cloud, features)
    if allow_by == "both":
        return selected, []
    if allow_by == "fqdns":
        # a tag's port goes when a selected host it covers is allowed on that port; the rest of the tag stays
        # (e.g. Storage.<region> of the baseline when no storage host is selected)
        host_ports: dict[str, set[tuple[str, str]]] = defaultdict(set)
        for e in selected:
            if e.strategy == "fqdns":
                for tag in e.covered_by:
                    host_ports[tag.lower()].update((_net_protocol(spec), spec.ports) for spec in e.ports)
        kept: list[Endpoint] = []
        for e in selected:
            if e.strategy != "service_tags":
                kept.append(e)
                continue
            tag_left = tuple(s for s in e.ports if not _covers(host_ports.get(e.value.lower(), set()), s))
            if tag_left:
                kept.append(e if tag_left == e.ports else replace(e, ports=tag_left))
        return kept, []
    tag_ports: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for e in selected:
        if e.kind == "service_tag" and e.direction == "outbound" and e.apply_as == "firewall":
            for spec in e.ports:
                tag_ports[e.value.lower()].add((_net_protocol(spec), spec.ports))
    out: list[Endpoint] = []
    covered: list[tuple[Endpoint, str]] = []
    for e in selected:
        if e.strategy != "fqdns" or not e.covered_by:
            out.append(e)
            continue
        left: list[PortSpec] = []
        for spec in e.ports:
            by = next((t for t in e.covered_by if _covers(tag_ports.get(t.lower(), set()), spec)), None)
            if by is None:
                left.append(spec)
            else:
                covered.append((replace(e, ports=(spec,)), by))
        if left:
            out.append(e if tuple(left) == e.ports else replace(e, ports=tuple(left)))
    return out, covered


def _net_protocol(spec: PortSpec) -> str:
    return "TCP" if spec.protocol in ("Http", "Https") else spec.protocol


def _port_range(ports: str) -> tuple[int, int]:
    if ports == "*":
        return 1, 65535
    lo, _, hi = ports.partition("-")
    return int(lo), int(hi or lo)


def _covers(tag_specs: set[tuple[str, str]], spec: PortSpec) -> bool:
    """True when a service-tag rule on (protocol, ports) in `tag_specs` allows `spec` of a host."""
    proto = _net_protocol(spec)
    lo, hi = _port_range(spec.ports)
    for tag_proto, tag_ports in tag_specs:
        if tag_proto not in (proto, "Any"):
            continue
        tlo, thi = _port_range(tag_ports)
        if tlo <= lo and hi <= thi:
            return True
    return False


def _per_resource(target: Target, ws: Workspace, entry: Endpoint, suffixes: dict[str, str],
                  warn: Callable[[str, Endpoint | None, str, Workspace | None], None]) -> Endpoint:
    """Fill {keyvault}/{registry}/{workspace_id} from the workspace, or fall back to the entry's wildcard."""
    values = {"keyvault": ws.key_vault, "registry": ws.container_registry, "workspace_id": ws.workspace_id}
    keys = {"keyvault": "key_vault", "registry": "container_registry", "workspace_id": "workspace_id"}
    used = [p for p in values if "{" + p + "}" in entry.value]
    if not used:
        return entry
    missing = [p for p in used if values[p] is None]
    if missing:
        assert entry.if_unknown is not None  # the loader requires it
        wildcard = _resolve(target, ws, entry, entry.if_unknown, suffixes)
        warn("wildcard-fallback", entry, f"{entry.value} names one resource, but the workspace has no "
             f"{', '.join(keys[p] for p in missing)}; allowing the documented wildcard {wildcard} instead", ws)
        return replace(entry, kind="wildcard_fqdn", value=entry.if_unknown)
    value = entry.value
    for p in used:
        value = value.replace("{" + p + "}", str(values[p]))
    return replace(entry, value=value)


def compile_target(target: Target, catalogue: Catalogue) -> DesiredTarget:
    warnings: set[CompileWarning] = set()
    routes: dict[str, Route] = {}
    origins: list[RuleOrigin] = []
    rows: list[AllowListRow] = []
    collections: list[RuleCollection] = []
    needs_dns_proxy = False
    needs_premium = False
    suffixes = catalogue.region_suffixes(target.cloud)

    def warn(code: str, entry: Endpoint | None, message: str, ws: Workspace | None = None) -> None:
        warnings.add(CompileWarning(code, entry.id if entry else None, message, target.name, ws.name if ws else ""))

    if not target.catalogue_pinned:
        warn("catalogue-unpinned", None, f"no 'catalogue:' in the configuration, so the newest version "
             f"({catalogue.version}) is used and a newer one will change the rules when installed; pin it with "
             f"catalogue: {catalogue.version}")
    ordered = sorted(target.workspaces, key=lambda w: w.name.lower())
    used_priorities: dict[int, str] = {}
    for index, ws in enumerate(ordered):
        out = _WorkspaceOut()
        allow_by = ws.allow_by or target.allow_by
        if allow_by == "both":
            warn("strategy-both", None, "allow_by: both allows the service tags and the host tables at once, "
                 "which is wider than either service_tags or fqdns", ws)
        for feature in sorted(ws.requested):
            wanted = catalogue.with_implied({feature})
            if not any(target.cloud in e.clouds and e.features & wanted for e in catalogue.entries):
                warn("feature-empty", None, f"feature {feature} has no endpoints in {target.cloud} in catalogue "
                     f"{catalogue.version}; it adds no rule here (amlfw catalogue list --feature {feature})", ws)
        for feature in sorted(ws.requested):
            info = catalogue.feature(feature)
            for needed, why in info.needs if info else ():
                if needed not in ws.features:
                    warn("feature-needs", None, f"feature {feature} usually needs {needed}, which is not selected: "
                         f"{why}", ws)
        kept, covered = split_by_strategy(catalogue, target.cloud, ws.features, allow_by)
        for entry, tag in covered:
            # not a rule: the allow-list (and `amlfw deps`) shows which tag lets the host through
            entry = _per_resource(target, ws, entry, suffixes, lambda *_: None)
            tag_value = _resolve(target, ws, entry, tag, suffixes, service_tag=True)
            out.rows.extend(_rows(target, ws, entry, _resolve(target, ws, entry, entry.value, suffixes),
                                  entry.ports, f"service tag {tag_value} (covers this host)"))
        for entry in [*sorted(kept, key=lambda e: e.id), *_user_entries(ws, target.cloud)]:
            per_resource = bool(entry.placeholders & PER_RESOURCE_PLACEHOLDERS)
            entry = _per_resource(target, ws, entry, suffixes, warn)
            value = _resolve(target, ws, entry, entry.value, suffixes)
            if entry.apply_as == "firewall":
                _guard(target, ws, entry, value, warn)
                host_breadth = ("wildcard" if "*" in value else "per-resource host" if per_resource
                                else "exact host")
            if entry.apply_as == "nsg":
                warn("nsg-only", entry, f"{value} {_ports(entry.ports)} inbound is an NSG rule, not an Azure "
                     "Firewall rule; amlfw lists it in the allow-list export only", ws)
                out.rows.extend(_rows(target, ws, entry, value, entry.ports, "nsg"))
                continue
            if entry.apply_as == "route":
                if target.route_table is None:
                    warn("route-table-missing", entry, f"inbound route for {value} needs route_table in the "
                         "configuration; no route is managed", ws)
                    continue
                # the prefix stays verbatim: routes are owned by it (safe_name would fold `--` in a prefix)
                if catalogue.tag_unusable(target.cloud, value, route=True):
                    warn("tag-not-route-usable", entry, f"Microsoft's service-tag data does not list {value} as "
                         "usable in user-defined routes (networkFeatures has no UDR); Azure may reject the route", ws)
                name = target.route_prefix + safe_name(value, limit=NAME_MAX - len(target.route_prefix))
                routes[name] = Route(name=name, address_prefix=value, next_hop_type="Internet")
                out.rows.extend(_rows(target, ws, entry, value, entry.ports, "route"))
                continue
            if entry.kind == "service_tag":
                if catalogue.tag_unusable(target.cloud, value, route=False):
                    warn("tag-not-firewall-usable", entry, f"Microsoft's service-tag data does not list {value} as "
                         "usable in Azure Firewall (networkFeatures has no FW); Azure may reject the rule", ws)
                for spec in entry.ports:
                    proto = "TCP" if spec.protocol in ("Http", "Https") else spec.protocol
                    acc = out.acc("net-tag", value, proto)
                    acc.ports.add(spec.ports)
                    acc.entry_ids.add(entry.id)
                    acc.breadths.add(_tag_breadth(entry.value, value, suffixes))
                out.rows.extend(_rows(target, ws, entry, value, entry.ports, "network-rule"))
                continue
            if entry.kind == "url_path":
                host = value.split("/", 1)[0]
                if target.tier == "Premium" and target.tls_inspection:
                    # HTTPS needs TLS inspection to see the path; plain HTTP is filtered by URL without it,
                    # so the two go in separate rules and terminateTLS only ever meets Https
                    needs_premium = True
                    enforced = "application-rule (URL, TLS inspection)"
                    for spec in entry.ports:
                        proto = spec.app_protocol
                        acc = out.acc("app-url-tls" if proto == "Https" else "app-url-http", value)
                        acc.app_protocols.add(ApplicationProtocol(proto, _port(spec)))
                        acc.entry_ids.add(entry.id)
                        acc.breadths.add("URL path")
                    if any(spec.app_protocol == "Https" for spec in entry.ports):
                        warn("tls-inspection-client-trust", entry, f"{value} is filtered by URL with terminateTLS: "
                             "the compute instances and clusters must trust the firewall's TLS-inspection CA "
                             "certificate (its intermediate CA), or their HTTPS requests to it fail", ws)
                    out.rows.extend(_rows(target, ws, entry, value, entry.ports, enforced))
                else:
                    # without TLS inspection only the host can be matched: widen on the ports the source lists
                    # for this URL (widen_ports), never on the others
                    wide = entry.widen_ports or entry.ports
                    dropped = [spec for spec in entry.ports if spec not in wide]
                    acc = out.acc("app-fqdn", host)
                    warn("url-widened", entry, f"{value} needs Azure Firewall Premium with TLS inspection for "
                         f"URL filtering; allowing the whole host {host} on {_ports(wide)} instead"
                         + (f" (not on {_ports(dropped)})" if dropped else ""), ws)
                    for spec in wide:
                        acc.app_protocols.add(ApplicationProtocol(spec.app_protocol, _port(spec)))
                    acc.entry_ids.add(entry.id)
                    acc.breadths.add("widened URL")
                    out.rows.extend(_rows(target, ws, entry, value, wide, "application-rule (widened to host)"))
                    out.rows.extend(_rows(target, ws, entry, value, dropped, "not enforced"))
                continue
            # fqdn / wildcard_fqdn
            web = [s for s in entry.ports if s.is_web and s.ports.isdigit()]
            other = [s for s in entry.ports if s not in web]
            if web:
                acc = out.acc("app-fqdn", value)
                for spec in web:
                    acc.app_protocols.add(ApplicationProtocol(spec.app_protocol, int(spec.ports)))
                acc.entry_ids.add(entry.id)
                acc.breadths.add(host_breadth)
                out.rows.extend(_rows(target, ws, entry, value, web, "application-rule"))
            if not other:
                continue
            if entry.kind == "fqdn":
                needs_dns_proxy = True
                for spec in other:
                    proto = "TCP" if spec.protocol in ("Http", "Https") else spec.protocol
                    acc = out.acc("net-fqdn", value, proto)
                    acc.ports.add(spec.ports)
                    acc.entry_ids.add(entry.id)
                    acc.breadths.add(host_breadth)
                out.rows.extend(_rows(target, ws, entry, value, other, "network-rule (FQDN, needs DNS proxy)"))
            elif entry.fallback is not None:
                tag = _resolve(target, ws, entry, entry.fallback.value, suffixes, service_tag=True)
                warn("wildcard-fallback", entry, f"{value} on {_ports(other)} cannot be an Azure Firewall rule "
                     f"(wildcards only work in application rules on HTTP/HTTPS); allowing the {tag} service tag "
                     "on those ports instead", ws)
                for spec in other:
                    proto = "TCP" if spec.protocol in ("Http", "Https") else spec.protocol
                    acc = out.acc("net-tag", tag, proto)
                    acc.ports.add(spec.ports)
                    acc.entry_ids.add(entry.id)
                    acc.breadths.add(_tag_breadth(entry.fallback.value, tag, suffixes))
                out.rows.extend(_rows(target, ws, entry, value, other, f"network-rule (fallback {tag})"))
            else:
                warn("not-expressible", entry, f"{value} on {_ports(other)} cannot be expressed in Azure Firewall "
                     "and the catalogue declares no fallback; not allowed", ws)
                out.rows.extend(_rows(target, ws, entry, value, other, "not enforced"))

        if allow_by == "fqdns" and any(acc.kind == "net-fqdn" for acc in out.rules.values()):
            warn("dns-proxy-required", None, "allow_by: fqdns gives network rules with destination FQDNs, which "
                 "Azure Firewall resolves only with DNS proxy enabled on the policy (and the clients using the "
                 "firewall as their DNS server)", ws)
        net_name, app_name = collection_names(ws.name)
        base = ws.priority if ws.priority is not None else COLLECTION_BASE_PRIORITY + COLLECTION_STEP * index
        net_rules, app_rules, breadths = _build_rules(ws, out, target)
        for coll_name, prio, rules in ((net_name, base, net_rules), (app_name, base + 1, app_rules)):
            if not rules:
                continue
            if prio > 65000:
                raise ConfigError(target.source_file, f"{ws.key}.priority",
                                  f"rule collection priority {prio} would exceed 65000")
            if prio in used_priorities:
                raise ConfigError(target.source_file, f"{ws.key}.priority",
                                  f"rule collection priority {prio} is already used by {used_priorities[prio]}")
            used_priorities[prio] = coll_name
            collections.append(RuleCollection(name=coll_name, priority=prio, action="Allow",
                                               rules=tuple(r for r, _ in rules)))
            by_id = {e.id: e for e in catalogue.entries}
            selected = {"baseline", *ws.features}
            origins.extend(
                RuleOrigin(coll_name, r.name, ws.name, ids,
                           tuple(sorted({f for i in ids if i in by_id for f in by_id[i].features} & selected)),
                           breadths[r.name])
                for r, ids in rules)
        rows.extend(out.rows)

    group = RuleCollectionGroup(
        name=target.group_name,
        priority=target.group_priority,
        rule_collections=tuple(sorted(collections, key=lambda c: (c.priority, c.name))),
    )
    ip_groups = frozenset(g for ws in target.workspaces for g in ws.source_ip_groups)
    return DesiredTarget(
        target_name=target.name,
        group=group,
        routes=tuple(sorted(routes.values(), key=lambda r: r.name)),
        requirements=Requirements(dns_proxy=needs_dns_proxy, premium=needs_premium, tls_inspection=needs_premium,
                                  source_ip_groups=ip_groups),
        origins=tuple(sorted(origins, key=lambda o: (o.collection, o.rule))),
        allow_list=tuple(sorted(set(rows), key=_row_key)),
        warnings=tuple(sorted(warnings, key=lambda w: (w.workspace, w.code, w.entry_id or "", w.message))),
        catalogue_version=catalogue.version,
    )


def _row_key(r: AllowListRow) -> tuple[str, ...]:
    return (r.workspace, r.direction, r.destination.lower(), r.protocol, r.port, r.entry_id, r.enforced_as)


def _port(spec: PortSpec) -> int:
    return int(spec.ports) if spec.ports.isdigit() else (80 if spec.app_protocol == "Http" else 443)


def _ports(specs: Iterable[PortSpec]) -> str:
    return ", ".join(str(s) for s in specs)


def _resolve(target: Target, ws: Workspace, entry: Endpoint, value: str, suffixes: dict[str, str],
             *, service_tag: bool | None = None) -> str:
    is_tag = entry.kind == "service_tag" if service_tag is None else service_tag
    if "{storage}" in value:
        if ws.storage_account is None:
            feats = ", ".join(sorted(entry.features))
            raise ConfigError(target.source_file, f"{ws.key}.storage_account",
                              f"required by feature {feats} (catalogue entry {entry.id}: {entry.value})")
        value = value.replace("{storage}", ws.storage_account)
    if is_tag and value.endswith(".{region}"):
        value = regional_tag(value[: -len(".{region}")], ws.region, suffixes)
    if "{region}" in value:
        value = value.replace("{region}", ws.region)
    return value


def _rows(target: Target, ws: Workspace, entry: Endpoint, value: str, specs: Iterable[PortSpec],
          enforced: str) -> list[AllowListRow]:
    return [
        AllowListRow(target=target.name, workspace=ws.name, destination=value, kind=entry.kind,
                     protocol=s.protocol, port=s.ports, why=entry.purpose, entry_id=entry.id,
                     direction=entry.direction, enforced_as=enforced)
        for s in specs
    ]


def _description(entry_ids: Iterable[str]) -> str:
    text = "amlfw: " + ", ".join(sorted(entry_ids))
    if len(text) > DESCRIPTION_MAX:
        text = text[: DESCRIPTION_MAX - 3].rstrip(", ") + "..."
    return text


def _build_rules(ws: Workspace, out: _WorkspaceOut, target: Target
                 ) -> tuple[list[tuple[NetworkRule | ApplicationRule, tuple[str, ...]]],
                            list[tuple[NetworkRule | ApplicationRule, tuple[str, ...]]], dict[str, str]]:
    net: list[tuple[NetworkRule | ApplicationRule, tuple[str, ...]]] = []
    app: list[tuple[NetworkRule | ApplicationRule, tuple[str, ...]]] = []
    src = frozenset(ws.source_addresses)
    groups = frozenset(ws.source_ip_groups)
    breadth_of: dict[tuple[str, frozenset[str]], str] = {}
    for acc in out.rules.values():
        ids = tuple(sorted(acc.entry_ids))
        net_or_app = "NetworkRule" if acc.kind.startswith("net-") else "ApplicationRule"
        dest_key = (net_or_app, frozenset({acc.destination.lower() if acc.kind != "net-tag" else acc.destination}))
        if acc.kind.startswith("app-url"):
            host, sep, path = acc.destination.partition("/")
            dest_key = (net_or_app, frozenset({host.lower() + sep + path}))
        breadth_of[dest_key] = _breadth(acc.breadths | ({breadth_of[dest_key]} if dest_key in breadth_of else set()))
        if acc.kind == "net-tag":
            name = safe_name(f"tag-{acc.destination}-{acc.protocol.lower()}")
            net.append((NetworkRule(name=name, ip_protocols=frozenset({acc.protocol}), source_addresses=src,
                                    source_ip_groups=groups, destination_addresses=frozenset({acc.destination}),
                                    destination_ports=frozenset(_merge_ports(acc.ports)),
                                    description=_description(ids)), ids))
        elif acc.kind == "net-fqdn":
            name = safe_name(f"fqdn-{acc.destination}-{acc.protocol.lower()}")
            net.append((NetworkRule(name=name, ip_protocols=frozenset({acc.protocol}), source_addresses=src,
                                    source_ip_groups=groups, destination_fqdns=frozenset({acc.destination}),
                                    destination_ports=frozenset(_merge_ports(acc.ports)),
                                    description=_description(ids)), ids))
        elif acc.kind == "app-fqdn":
            name = safe_name(f"app-{acc.destination}")
            app.append((ApplicationRule(name=name, protocols=frozenset(acc.app_protocols), source_addresses=src,
                                        source_ip_groups=groups, target_fqdns=frozenset({acc.destination}),
                                        description=_description(ids)), ids))
        else:  # app-url-tls | app-url-http
            tls = acc.kind == "app-url-tls"
            name = safe_name(f"url-{acc.destination}" if tls else f"url-http-{acc.destination}")
            app.append((ApplicationRule(name=name, protocols=frozenset(acc.app_protocols), source_addresses=src,
                                        source_ip_groups=groups, target_urls=frozenset({acc.destination}),
                                        terminate_tls=tls, description=_description(ids)), ids))
    net_d, app_d = _dedupe_names(net), _dedupe_names(app)
    return net_d, app_d, {r.name: breadth_of[(type(r).__name__, _destinations(r))] for r, _ in net_d + app_d}


PER_RESOURCE_PLACEHOLDERS = frozenset({"storage", "keyvault", "registry", "workspace_id"})
# the destinations and ports no rule may have unless the workspace sets allow_broad: true
BROAD_DESTINATIONS = {"*": "any destination (*)", "0.0.0.0/0": "every IPv4 address (0.0.0.0/0)",
                      "internet": "the Internet service tag", "azurecloud": "the global AzureCloud tag (all of Azure)",
                      "any": "any destination"}


def _breadth(found: set[str]) -> str:
    """One breadth for a rule: an exact host wins over a widened URL on the same host (the host is needed
    anyway); otherwise the widest."""
    if "exact host" in found and found <= {"exact host", "widened URL", "per-resource host"}:
        return "exact host"
    for b in BREADTHS:
        if b in found:
            return b
    return "exact host"


def _tag_breadth(raw: str, tag: str, suffixes: dict[str, str]) -> str:
    """Regional when the catalogue writes `Tag.{region}` or the tag ends with a region of the cloud."""
    if tag[:1].isdigit() or tag.startswith("*"):  # an address from extra_rules
        return "exact host" if tag.endswith("/32") or "/" not in tag else "wildcard"
    if raw.endswith(".{region}"):
        return "regional tag"
    _, dot, suffix = tag.partition(".")
    regional = {v.lower() for v in suffixes.values()} | set(suffixes)
    return "regional tag" if dot and suffix.lower() in regional else "global tag"


def _all_ports(ports: str) -> bool:
    if ports == "*":
        return True
    lo, _, hi = ports.partition("-")
    return int(lo) <= 1 and int(hi or lo) >= 65535


def _guard(target: Target, ws: Workspace, entry: Endpoint, value: str,
           warn: Callable[[str, Endpoint | None, str, Workspace | None], None]) -> None:
    """Refuse a rule to *, 0.0.0.0/0, Internet, the global AzureCloud tag, all ports or a bare * FQDN, whether it
    comes from the catalogue or from extra_rules, unless the workspace sets allow_broad: true."""
    reasons = []
    dests = {value.lower()}
    if entry.kind == "url_path":
        dests.add(value.split("/", 1)[0].lower())
    if entry.fallback is not None:
        dests.add(entry.fallback.value.lower())
    reasons += [BROAD_DESTINATIONS[d] for d in sorted(dests) if d in BROAD_DESTINATIONS]
    reasons += [f"all ports ({spec})" for spec in entry.ports if _all_ports(spec.ports)]
    if not reasons:
        return
    user = entry.id == USER_ENTRY
    what = f"extra rule {value}" if user else f"catalogue entry {entry.id} ({value})"
    if ws.allow_broad:
        warn("broad-rule", entry, f"{what} allows {', '.join(reasons)}; accepted because allow_broad is true", ws)
        return
    key = entry.provenance.section if user else f"{ws.key}.features"
    raise ConfigError(target.source_file, key, f"{what} would allow {', '.join(reasons)}; refused (set "
                      f"allow_broad: true on workspace {ws.name} to accept it)")


def _user_entries(ws: Workspace, cloud: str) -> list[Endpoint]:
    """The workspace's extra_rules as entries (id `user`), compiled and guarded like the catalogue's."""
    out = []
    for r in ws.extra_rules:
        kind = "service_tag" if r.kind == "address" else r.kind
        out.append(Endpoint(
            id=USER_ENTRY, kind=kind,  # type: ignore[arg-type]
            value=r.value, direction="outbound",
            ports=tuple(PortSpec(*p.split(":", 1)) for p in r.ports), clouds=frozenset({cloud}),
            features=frozenset({"baseline"}), purpose=f"extra rule ({ws.key}.{r.key.rsplit('.', 1)[-1]})",
            provenance=Provenance(section=r.key), strategy="common"))
    return out


def _merge_ports(ports: set[str]) -> list[str]:
    """`*` swallows everything else; otherwise the distinct ports and ranges."""
    if "*" in ports:
        return ["*"]
    return sorted(ports, key=port_key)


def _dedupe_names(
    rules: list[tuple[NetworkRule | ApplicationRule, tuple[str, ...]]],
) -> list[tuple[NetworkRule | ApplicationRule, tuple[str, ...]]]:
    """Sort by name; two destinations that sanitise to one name get a hash suffix each (deterministic)."""
    by_name: dict[str, list[tuple[NetworkRule | ApplicationRule, tuple[str, ...]]]] = defaultdict(list)
    for rule, ids in rules:
        by_name[rule.name].append((rule, ids))
    result = []
    for name, items in by_name.items():
        if len(items) == 1:
            result.append(items[0])
            continue
        for rule, ids in items:
            dest = ",".join(sorted(_destinations(rule)))
            unique = safe_name(f"{name[:60]}-{hashlib.sha256(dest.encode()).hexdigest()[:8]}")
            result.append((_rename(rule, unique), ids))
    return sorted(result, key=lambda x: x[0].name)


def _destinations(rule: NetworkRule | ApplicationRule) -> frozenset[str]:
    if isinstance(rule, NetworkRule):
        return rule.destination_addresses | rule.destination_fqdns
    return rule.target_fqdns | rule.target_urls


def _rename(rule: NetworkRule | ApplicationRule, name: str) -> NetworkRule | ApplicationRule:
    return replace(rule, name=name)
