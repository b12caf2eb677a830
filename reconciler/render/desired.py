"""Render compiled desired state: ARM bodies, a human table, and allow-list exports (CSV, JSON). Pure."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from typing import Any

from reconciler.arm import group_to_arm, port_key, route_to_arm
from reconciler.config import Target
from reconciler.model import BREADTHS, USER_ENTRY, ApplicationRule, DesiredTarget, NetworkRule, OpaqueRule, Rule

FORMAT_VERSION = 1
ALLOW_LIST_COLUMNS = ("target", "workspace", "direction", "destination", "kind", "protocol", "port",
                      "enforced_as", "why", "entry_id")


def policy_id(t: Target) -> str:
    p = t.policy
    return (f"/subscriptions/{p.subscription_id}/resourceGroups/{p.resource_group}"
            f"/providers/Microsoft.Network/firewallPolicies/{p.name}")


def route_table_id(t: Target) -> str | None:
    r = t.route_table
    if r is None:
        return None
    return (f"/subscriptions/{r.subscription_id}/resourceGroups/{r.resource_group}"
            f"/providers/Microsoft.Network/routeTables/{r.name}")


def render_arm(pairs: Sequence[tuple[Target, DesiredTarget]]) -> str:
    """Per target: the rule collection group exactly as it would be PUT, and the routes."""
    doc: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "targets": [
            {
                "name": t.name,
                "cloud": t.cloud,
                "catalogue_version": d.catalogue_version,
                "firewallPolicy": policy_id(t),
                "requirements": {
                    "dnsProxy": d.requirements.dns_proxy,
                    "premium": d.requirements.premium,
                    "tlsInspection": d.requirements.tls_inspection,
                },
                "ruleCollectionGroups": [group_to_arm(d.group)],
                "routeTable": route_table_id(t),
                "routes": [route_to_arm(r) for r in d.routes],
            }
            for t, d in pairs
        ],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _rule_cells(rule: Rule) -> tuple[str, str, str]:
    if isinstance(rule, NetworkRule):
        dest = sorted(rule.destination_addresses | rule.destination_fqdns | rule.destination_ip_groups)
        ports = ",".join(sorted(rule.destination_ports, key=port_key))
        return "network", " ".join(dest), f"{'/'.join(sorted(rule.ip_protocols))}:{ports}"
    if isinstance(rule, ApplicationRule):
        dest = sorted(rule.target_fqdns | rule.target_urls | rule.fqdn_tags)
        protos = ",".join(str(p) for p in sorted(rule.protocols, key=lambda p: (p.port, p.protocol_type)))
        tls = " +TLS" if rule.terminate_tls else ""
        return "application", " ".join(dest), protos + tls
    assert isinstance(rule, OpaqueRule)
    return rule.rule_type, "", ""


def table_lines(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """A plain left-aligned text table."""
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*headers).rstrip(), fmt.format(*("-" * w for w in widths)).rstrip()]
    lines.extend(fmt.format(*row).rstrip() for row in rows)
    return lines


def render_table(pairs: Sequence[tuple[Target, DesiredTarget]]) -> str:
    out: list[str] = []
    for t, d in pairs:
        origins = {(o.collection, o.rule): o.entry_ids for o in d.origins}
        breadth = {(o.collection, o.rule): o.breadth for o in d.origins}
        out.append(f"target {t.name}  ({t.cloud}, catalogue {d.catalogue_version})")
        out.append(f"  policy {policy_id(t)}")
        out.append(f"  rule collection group {d.group.name} (priority {d.group.priority}, "
                   f"{len(d.group.rule_collections)} collections, {d.group.rule_count} rules)")
        req = [k for k, v in (("DNS proxy", d.requirements.dns_proxy), ("Premium + TLS inspection",
                                                                          d.requirements.premium)) if v]
        if req:
            out.append(f"  requires: {', '.join(req)}")
        for c in d.group.rule_collections:
            out.append("")
            out.append(f"  collection {c.name} (priority {c.priority}, {c.action})")
            rows = []
            for r in c.rules:
                kind, dest, ports = _rule_cells(r)
                rows.append((r.name, kind, dest, ports, breadth.get((c.name, r.name), ""),
                             ", ".join(origins.get((c.name, r.name), ()))))
            out.extend("    " + line for line in table_lines(
                ("rule", "type", "destination", "ports", "breadth", "entries"), rows))
        if d.routes:
            out.append("")
            out.append(f"  routes in {route_table_id(t)}")
            route_rows = [(r.name, r.address_prefix, r.next_hop_type) for r in d.routes]
            out.extend("    " + line for line in table_lines(("route", "address prefix", "next hop"), route_rows))
        out.append("")
    return "\n".join(out)


def breadth_summary(pairs: Sequence[tuple[Target, DesiredTarget]]) -> str:
    """One line: how many rules of each breadth, widest first, and how many come from extra_rules."""
    counts = dict.fromkeys(BREADTHS, 0)
    user = total = 0
    for _, d in pairs:
        for o in d.origins:
            total += 1
            counts[o.breadth] = counts.get(o.breadth, 0) + 1
            user += USER_ENTRY in o.entry_ids
    plural = {"global tag": "global tags", "regional tag": "regional tags", "wildcard": "wildcards",
              "widened URL": "widened URLs", "per-resource host": "per-resource hosts", "exact host": "exact hosts",
              "URL path": "URL paths"}
    parts = ", ".join(f"{n} {b if n == 1 else plural.get(b, b)}" for b, n in counts.items())
    return f"allows: {parts} ({total} rules, {user} from extra_rules)"


def _allow_rows(pairs: Sequence[tuple[Target, DesiredTarget]]) -> list[dict[str, str]]:
    return [
        {
            "target": r.target, "workspace": r.workspace, "direction": r.direction, "destination": r.destination,
            "kind": r.kind, "protocol": r.protocol, "port": r.port, "enforced_as": r.enforced_as,
            "why": r.why, "entry_id": r.entry_id,
        }
        for _, d in pairs
        for r in d.allow_list
    ]


def render_csv(pairs: Sequence[tuple[Target, DesiredTarget]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=ALLOW_LIST_COLUMNS, lineterminator="\n")
    w.writeheader()
    w.writerows(_allow_rows(pairs))
    return buf.getvalue()


def render_allow_json(pairs: Sequence[tuple[Target, DesiredTarget]]) -> str:
    versions = sorted({d.catalogue_version for _, d in pairs})
    doc = {"format_version": FORMAT_VERSION, "catalogue_versions": versions, "allow_list": _allow_rows(pairs)}
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
