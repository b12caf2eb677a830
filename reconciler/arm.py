"""ARM wire JSON (REST camelCase) <-> frozen model. Pure.

`group_to_arm` gives the body exactly as amlfw PUTs it; `group_from_arm` reads what Azure returns, where
read-only and server-defaulted fields (etag, provisioningState, size, empty lists, `terminateTLS: false`)
simply vanish into the model's normal form, so they can never show as drift.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Mapping
from typing import Any

from reconciler.model import (
    ApplicationProtocol,
    ApplicationRule,
    NetworkRule,
    OpaqueRule,
    Route,
    Rule,
    RuleCollection,
    RuleCollectionGroup,
)


def port_key(p: str) -> tuple[int, str]:
    head = p.split("-")[0]
    return (int(head) if head.isdigit() else -1, p)


def _sorted(values: Iterable[str]) -> list[str]:
    return sorted(values, key=lambda v: (v.lower(), v))


def rule_to_arm(rule: Rule) -> dict[str, Any]:
    if isinstance(rule, OpaqueRule):
        body: dict[str, Any] = json.loads(rule.body)
        return body
    out: dict[str, Any] = {"ruleType": rule.rule_type, "name": rule.name}
    if rule.description:
        out["description"] = rule.description
    if isinstance(rule, NetworkRule):
        fields: list[tuple[str, Iterable[str]]] = [
            ("ipProtocols", sorted(rule.ip_protocols)),
            ("sourceAddresses", _sorted(rule.source_addresses)),
            ("sourceIpGroups", _sorted(rule.source_ip_groups)),
            ("destinationAddresses", _sorted(rule.destination_addresses)),
            ("destinationIpGroups", _sorted(rule.destination_ip_groups)),
            ("destinationFqdns", _sorted(rule.destination_fqdns)),
            ("destinationPorts", sorted(rule.destination_ports, key=port_key)),
        ]
        for key, values in fields:
            vals = list(values)
            if vals:
                out[key] = vals
        return out
    if rule.protocols:
        out["protocols"] = [{"protocolType": p.protocol_type, "port": p.port}
                            for p in sorted(rule.protocols, key=lambda p: (p.port, p.protocol_type))]
    app_fields: list[tuple[str, Iterable[str]]] = [
        ("sourceAddresses", _sorted(rule.source_addresses)),
        ("sourceIpGroups", _sorted(rule.source_ip_groups)),
        ("targetFqdns", _sorted(rule.target_fqdns)),
        ("targetUrls", _sorted(rule.target_urls)),
        ("fqdnTags", _sorted(rule.fqdn_tags)),
        ("webCategories", _sorted(rule.web_categories)),
        ("destinationAddresses", _sorted(rule.destination_addresses)),
    ]
    for key, values in app_fields:
        vals = list(values)
        if vals:
            out[key] = vals
    if rule.terminate_tls:
        out["terminateTLS"] = True
    return out


def collection_to_arm(c: RuleCollection) -> dict[str, Any]:
    return {
        "ruleCollectionType": c.collection_type,
        "name": c.name,
        "priority": c.priority,
        "action": {"type": c.action},
        "rules": [rule_to_arm(r) for r in c.rules],
    }


def group_to_arm(group: RuleCollectionGroup) -> dict[str, Any]:
    """The complete PUT body of a rule collection group."""
    return {
        "name": group.name,
        "properties": {
            "priority": group.priority,
            "ruleCollections": [collection_to_arm(c) for c in group.rule_collections],
        },
    }


def route_to_arm(route: Route) -> dict[str, Any]:
    props: dict[str, Any] = {"addressPrefix": route.address_prefix, "nextHopType": route.next_hop_type}
    if route.next_hop_ip_address:
        props["nextHopIpAddress"] = route.next_hop_ip_address
    return {"name": route.name, "properties": props}


# ------------------------------------------------------------------------------------------------ parsing


def _list(d: Mapping[str, Any], key: str) -> list[str]:
    v = d.get(key)
    if not v:
        return []
    return [x if type(x) is str else str(x) for x in v]


@functools.lru_cache(maxsize=4096)
def _protocol(protocol_type: str, port: int) -> ApplicationProtocol:
    """Protocols repeat across thousands of rules; build each distinct one once."""
    return ApplicationProtocol(protocol_type, port)


# The wire fields the model carries. A rule that sets any other field (sourceGeoLocations, httpHeadersToInsert,
# sourceKubeSelectorGroups, ...) is kept whole as an OpaqueRule, so carrying it through a PUT never drops it.
_NETWORK_KEYS = frozenset({
    "ruleType", "name", "description", "ipProtocols", "sourceAddresses", "sourceIpGroups", "destinationAddresses",
    "destinationIpGroups", "destinationFqdns", "destinationPorts",
})
_APPLICATION_KEYS = frozenset({
    "ruleType", "name", "description", "protocols", "sourceAddresses", "sourceIpGroups", "targetFqdns", "targetUrls",
    "fqdnTags", "webCategories", "destinationAddresses", "terminateTLS",
})


def _unset(value: object) -> bool:
    return value is None or value is False or value == "" or value == [] or value == {}


def _modelled(raw: Mapping[str, Any], known: frozenset[str]) -> bool:
    """True when every field the rule sets is one the model carries (server defaults such as [] do not count)."""
    if known.issuperset(raw):  # the common case, decided in C
        return True
    return all(k in known or _unset(v) for k, v in raw.items())


def unmodelled_fields(rule: OpaqueRule) -> tuple[str, ...]:
    """The fields an opaque network or application rule sets that the model does not carry (for the plan)."""
    known = {"NetworkRule": _NETWORK_KEYS, "ApplicationRule": _APPLICATION_KEYS}.get(rule.rule_type, frozenset())
    raw = json.loads(rule.body)
    return tuple(sorted(k for k, v in raw.items() if k not in known and not _unset(v)))


def rule_from_arm(raw: Mapping[str, Any]) -> Rule:
    rtype = str(raw.get("ruleType", ""))
    name = str(raw.get("name", ""))
    description = str(raw.get("description") or "")
    if rtype == "NetworkRule" and _modelled(raw, _NETWORK_KEYS):
        return NetworkRule(
            name=name,
            ip_protocols=frozenset(_list(raw, "ipProtocols")),
            source_addresses=frozenset(_list(raw, "sourceAddresses")),
            source_ip_groups=frozenset(_list(raw, "sourceIpGroups")),
            destination_addresses=frozenset(_list(raw, "destinationAddresses")),
            destination_ip_groups=frozenset(_list(raw, "destinationIpGroups")),
            destination_fqdns=frozenset(_list(raw, "destinationFqdns")),
            destination_ports=frozenset(_list(raw, "destinationPorts")),
            description=description,
        )
    if rtype == "ApplicationRule" and _modelled(raw, _APPLICATION_KEYS):
        protocols = frozenset(
            _protocol(str(p.get("protocolType", "")), int(p.get("port") or 0))
            for p in (raw.get("protocols") or [])
        )
        return ApplicationRule(
            name=name,
            protocols=protocols,
            source_addresses=frozenset(_list(raw, "sourceAddresses")),
            source_ip_groups=frozenset(_list(raw, "sourceIpGroups")),
            target_fqdns=frozenset(_list(raw, "targetFqdns")),
            target_urls=frozenset(_list(raw, "targetUrls")),
            fqdn_tags=frozenset(_list(raw, "fqdnTags")),
            web_categories=frozenset(_list(raw, "webCategories")),
            destination_addresses=frozenset(_list(raw, "destinationAddresses")),
            terminate_tls=bool(raw.get("terminateTLS") or False),
            description=description,
        )
    return OpaqueRule(name=name, rule_type=rtype, body=json.dumps(dict(raw), sort_keys=True))


def collection_from_arm(raw: Mapping[str, Any]) -> RuleCollection:
    action = raw.get("action") or {}
    return RuleCollection(
        name=str(raw.get("name", "")),
        priority=int(raw.get("priority") or 0),
        action=str(action.get("type", "")) if isinstance(action, Mapping) else "",
        collection_type=str(raw.get("ruleCollectionType", "")),
        rules=tuple(rule_from_arm(r) for r in (raw.get("rules") or [])),
    )


def group_from_arm(raw: Mapping[str, Any]) -> RuleCollectionGroup:
    """A rule collection group from ARM JSON (`{"name":..., "properties": {...}}`)."""
    props = raw.get("properties") or {}
    return RuleCollectionGroup(
        name=str(raw.get("name", "")),
        priority=int(props.get("priority") or 0),
        rule_collections=tuple(collection_from_arm(c) for c in (props.get("ruleCollections") or [])),
    )


def route_from_arm(raw: Mapping[str, Any]) -> Route:
    props = raw.get("properties") or {}
    return Route(
        name=str(raw.get("name", "")),
        address_prefix=str(props.get("addressPrefix", "")),
        next_hop_type=str(props.get("nextHopType", "")),
        next_hop_ip_address=str(props["nextHopIpAddress"]) if props.get("nextHopIpAddress") else None,
    )
