"""ARM wire JSON (REST camelCase) <-> frozen model. Pure.

`group_to_arm` gives the body exactly as amlfw PUTs it; `group_from_arm` reads what Azure returns, where
read-only and server-defaulted fields (etag, provisioningState, size, empty lists, `terminateTLS: false`)
simply vanish into the model's normal form, so they can never show as drift. Every collection read keeps
its JSON text (`RuleCollection.raw`): a foreign collection goes back in a PUT exactly as it came.

Parsing checks the shape of what it reads (objects, lists, strings, integers) and raises `MalformedArm`
(a ValueError naming the field) on anything else; the Azure shell turns that into a BadResponseError.
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
    if c.raw is not None:
        raw: dict[str, Any] = json.loads(json.dumps(c.raw))  # a deep copy, exactly as read
        return raw
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


class MalformedArm(ValueError):  # noqa: N818 - reads as "malformed ARM JSON"
    """ARM JSON of the wrong shape: the message names the field and what was there."""


def _kind(value: object) -> str:
    if value is None:
        return "null"
    text = json.dumps(value, default=str)
    return {dict: "an object", list: "a list", str: "a string", int: "a number", float: "a number",
            bool: "a boolean", type(None): "null"}.get(type(value), type(value).__name__) + (
        f" {text}" if len(text) <= 40 else f" {text[:37]}...")


def _obj(value: object, where: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise MalformedArm(f"{where}: expected an object, got {_kind(value)}")
    return value


def _items(value: object, where: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise MalformedArm(f"{where}: expected a list, got {_kind(value)}")
    return value


def _int(value: object, where: str) -> int:
    if value is None:
        return 0
    if type(value) is not int:
        raise MalformedArm(f"{where}: expected an integer, got {_kind(value)}")
    return value


def _text(value: object, where: str) -> str:
    if value is None:
        return ""
    if type(value) is not str:
        raise MalformedArm(f"{where}: expected a string, got {_kind(value)}")
    return value


def _list(d: Mapping[str, Any], key: str) -> list[str]:
    v = d.get(key)
    if v is None:
        return []
    if type(v) is not list:
        raise MalformedArm(f"{key}: expected a list of strings, got {_kind(v)}")
    try:
        "".join(v)  # the type check of every item, in C
    except TypeError:
        raise MalformedArm(f"{key}: expected a list of strings, got {_kind(v)}") from None
    return v


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


def rule_from_arm(raw: object, where: str = "rule") -> Rule:
    if not isinstance(raw, Mapping):
        raise MalformedArm(f"{where}: expected an object, got {_kind(raw)}")
    rtype = _text(raw.get("ruleType"), f"{where}.ruleType")
    name = _text(raw.get("name"), f"{where}.name")
    description = _text(raw.get("description"), f"{where}.description")
    try:
        return _rule(raw, rtype, name, description)
    except MalformedArm as exc:
        raise MalformedArm(f"{where}.{exc}") from None


def _app_protocols(value: object) -> list[ApplicationProtocol]:
    out = []
    for i, p in enumerate(_items(value, "protocols")):
        if not isinstance(p, Mapping):
            raise MalformedArm(f"protocols[{i}]: expected an object, got {_kind(p)}")
        out.append(_protocol(_text(p.get("protocolType"), f"protocols[{i}].protocolType"),
                             _int(p.get("port"), f"protocols[{i}].port")))
    return out


def _rule(raw: Mapping[str, Any], rtype: str, name: str, description: str) -> Rule:
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
        protocols = frozenset(_app_protocols(raw.get("protocols")))
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


def collection_from_arm(raw: object, where: str = "ruleCollection") -> RuleCollection:
    if not isinstance(raw, Mapping):
        raise MalformedArm(f"{where}: expected an object, got {_kind(raw)}")
    action = _obj(raw.get("action"), f"{where}.action")
    rules = _items(raw.get("rules"), f"{where}.rules")
    return RuleCollection(
        name=_text(raw.get("name"), f"{where}.name"),
        priority=_int(raw.get("priority"), f"{where}.priority"),
        action=_text(action.get("type"), f"{where}.action.type"),
        collection_type=_text(raw.get("ruleCollectionType"), f"{where}.ruleCollectionType"),
        rules=tuple(rule_from_arm(r, f"{where}.rules[{i}]") for i, r in enumerate(rules)),
        raw=raw,
    )


def group_from_arm(raw: object) -> RuleCollectionGroup:
    """A rule collection group from ARM JSON (`{"name":..., "properties": {...}}`)."""
    if not isinstance(raw, Mapping):
        raise MalformedArm(f"rule collection group: expected an object, got {_kind(raw)}")
    name = _text(raw.get("name"), "name")
    props = _obj(raw.get("properties"), "properties")
    cols = _items(props.get("ruleCollections"), "properties.ruleCollections")
    return RuleCollectionGroup(
        name=name,
        priority=_int(props.get("priority"), "properties.priority"),
        rule_collections=tuple(collection_from_arm(c, f"properties.ruleCollections[{i}]")
                               for i, c in enumerate(cols)),
    )





def route_from_arm(raw: object) -> Route:
    if not isinstance(raw, Mapping):
        raise MalformedArm(f"route: expected an object, got {_kind(raw)}")
    props = _obj(raw.get("properties"), "route.properties")
    hop = _text(props.get("nextHopIpAddress"), "route.properties.nextHopIpAddress")
    return Route(
        name=_text(raw.get("name"), "route.name"),
        address_prefix=_text(props.get("addressPrefix"), "route.properties.addressPrefix"),
        next_hop_type=_text(props.get("nextHopType"), "route.properties.nextHopType"),
        next_hop_ip_address=hop or None,
    )
