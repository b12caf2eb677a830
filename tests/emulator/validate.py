"""Request validation: the official swagger first (jsonschema), then the documented service rules.

Schema layer: the definitions of ``firewallPolicy.json`` / ``common.json`` (2026-03-01) and the route-table
definitions quoted in the ``virtualNetwork.json`` excerpt, turned into Draft 7 JSON Schema:

* swagger polymorphism (``discriminator`` + ``x-ms-discriminator-value``) becomes an ``if``/``then`` dispatch
  on ``ruleCollectionType`` / ``ruleType``, and an unknown discriminator value is rejected;
* ``x-nullable`` properties also accept ``null``;
* every enum in these specs is ``modelAsString`` (extensible). The emulator enforces only the enums that
  decide how a rule behaves (see ``CLOSED_ENUMS``). The others stay open because the official examples
  themselves send values outside them (``FirewallPolicyPut.json`` sends IDPS profile ``Balanced``, which is
  not in ``FirewallPolicyIntrusionDetectionProfileType``).

Service-rule layer: the rules in docs/research/azure-firewall-facts.md sections 1-5. Where the fact sheet
quotes Azure's error text, the emulator uses it; where it does not, the code is an assumption and marked so
in README.md.
"""

from __future__ import annotations

import copy
import ipaddress
import json
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from .errors import ArmError, bad_request
from .reference import ReferenceData

SPEC_BASE = "https://specs.invalid/specification/network/resource-manager/Microsoft.Network/Network/stable/2026-03-01/"
TYPES_URI = "https://specs.invalid/specification/common-types/resource-management/v5/types.json"

CLOSED_ENUMS = frozenset(
    {
        "FirewallPolicyRuleCollectionType",
        "FirewallPolicyRuleType",
        "FirewallPolicyRuleApplicationProtocolType",
        "FirewallPolicyRuleNetworkProtocol",
        "FirewallPolicyFilterRuleCollectionActionType",
        "FirewallPolicyNatRuleCollectionActionType",
        "FirewallPolicySkuTier",
        "AzureFirewallThreatIntelMode",
        "RouteNextHopType",
    }
)

NAME_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,78}[A-Za-z0-9_])?$")
APP_DESTINATION_FIELDS = ("targetFqdns", "fqdnTags", "webCategories", "targetUrls")
NETWORK_DESTINATION_FIELDS = ("destinationAddresses", "destinationIpGroups", "destinationFqdns")
MAX_SERVICE_TAG_ROUTES = 25
MAX_ROUTES = 400
SCHEMA_ROOTS = {
    "policy": "firewallPolicy.json#/definitions/FirewallPolicy",
    "group": "firewallPolicy.json#/definitions/FirewallPolicyRuleCollectionGroup",
    "routeTable": "virtualNetwork.json#/definitions/RouteTable",
    "route": "virtualNetwork.json#/definitions/Route",
}


# --------------------------------------------------------------------------------------------------
# Swagger -> JSON Schema


def _rewrite(node: Any, fn: Callable[[dict[str, Any]], dict[str, Any]]) -> Any:
    if isinstance(node, dict):
        return fn({key: _rewrite(value, fn) for key, value in node.items()})
    if isinstance(node, list):
        return [_rewrite(item, fn) for item in node]
    return node


def _adapt_keywords(schema: dict[str, Any]) -> dict[str, Any]:
    enum_name = schema.get("x-ms-enum", {}).get("name")
    if "enum" in schema and schema.get("x-ms-enum", {}).get("modelAsString") and enum_name not in CLOSED_ENUMS:
        del schema["enum"]
    if schema.get("x-nullable") and isinstance(schema.get("type"), str):
        schema["type"] = [schema["type"], "null"]
    return schema


def _polymorphic(definitions: dict[str, Any]) -> dict[str, Any]:
    """Replace each discriminated base ``B`` by a dispatcher; the original becomes ``B__base``."""
    result = dict(definitions)
    for base, schema in definitions.items():
        discriminator = schema.get("discriminator")
        if not discriminator:
            continue
        base_ref = f"#/definitions/{base}"
        subtypes = {
            sub["x-ms-discriminator-value"]: name
            for name, sub in definitions.items()
            if {"$ref": base_ref} in sub.get("allOf", []) and "x-ms-discriminator-value" in sub
        }
        result[f"{base}__base"] = {key: value for key, value in schema.items() if key != "discriminator"}
        for name in subtypes.values():
            sub = copy.deepcopy(result[name])
            sub["allOf"] = [{"$ref": f"{base_ref}__base"} if ref == {"$ref": base_ref} else ref for ref in sub["allOf"]]
            result[name] = sub
        result[base] = {
            "type": "object",
            "required": [discriminator],
            "properties": {discriminator: {"type": "string", "enum": sorted(subtypes)}},
            "allOf": [
                {"if": {"properties": {discriminator: {"const": value}}}, "then": {"$ref": f"#/definitions/{name}"}}
                for value, name in sorted(subtypes.items())
            ],
        }
    return result


def _adapt_document(document: dict[str, Any]) -> dict[str, Any]:
    definitions = _rewrite(document.get("definitions", {}), _adapt_keywords)
    return {"definitions": _polymorphic(definitions)}


class SchemaValidator:
    """Draft 7 validators for the request bodies, built on first use (the swagger files are ~370 kB).

    ``SchemaValidator.of(reference)`` shares one instance per reference folder in the process.
    """

    _shared: ClassVar[dict[Path, SchemaValidator]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def of(cls, reference: ReferenceData) -> SchemaValidator:
        with cls._shared_lock:
            if reference.root not in cls._shared:
                cls._shared[reference.root] = cls(reference)
            return cls._shared[reference.root]

    def __init__(self, reference: ReferenceData) -> None:
        self._reference = reference
        self._lock = threading.Lock()
        self._validators: dict[str, Any] = {}

    def _build(self) -> dict[str, Any]:
        from jsonschema import Draft7Validator
        from referencing import Registry, Resource
        from referencing.jsonschema import DRAFT7

        network = self._reference.route_table_definitions()
        network["Subnet"] = {"type": "object"}  # read-only in RouteTable; not part of the excerpt
        documents = {
            SPEC_BASE + "firewallPolicy.json": _adapt_document(self._reference.swagger("firewallPolicy.json")),
            SPEC_BASE + "common.json": _adapt_document(self._reference.swagger("common.json")),
            SPEC_BASE + "virtualNetwork.json": _adapt_document({"definitions": network}),
            TYPES_URI: {"definitions": {}},
        }
        registry: Registry[Any] = Registry().with_resources(
            (uri, Resource.from_contents(doc, default_specification=DRAFT7)) for uri, doc in documents.items()
        )
        return {
            kind: Draft7Validator({"$ref": SPEC_BASE + root}, registry=registry) for kind, root in SCHEMA_ROOTS.items()
        }

    def check(self, kind: str, body: Any) -> None:
        with self._lock:
            if not self._validators:
                self._validators = self._build()
            validator = self._validators[kind]
        errors = sorted(validator.iter_errors(body), key=lambda e: [str(p) for p in e.absolute_path])
        if errors:
            raise _schema_error(body, errors)


def json_path(path: Iterable[Any]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _lookup(body: Any, path: list[Any]) -> Any:
    for part in path:
        body = body[part]
    return body


def _schema_error(body: Any, errors: list[Any]) -> ArmError:
    """Map the first schema violation to the Network RP error it corresponds to."""
    first = errors[0]
    path = list(first.absolute_path)
    leaf = path[-1] if path else None
    value = first.instance
    if first.validator in ("minimum", "maximum") and leaf == "priority":
        if "ruleCollections" in path:
            name = _lookup(body, path[:-1]).get("name")
            return bad_request(
                "FirewallPolicyRuleCollectionInvalidPriority",
                f"Firewall Policy Rule Collection {name} has invalid priority {value}. "
                "Priority must be between 100 and 65000.",
                target=json_path(path),
            )
        return bad_request(
            "FirewallPolicyRuleCollectionGroupInvalidPriority",
            f"Firewall Policy Rule Collection Group priority {value} is invalid. "
            "Priority must be between 100 and 65000.",
            target=json_path(path),
        )
    if leaf == "port" and first.validator in ("minimum", "maximum"):
        rule = _lookup(body, path[:-3]).get("name")
        return bad_request(
            "FirewallPolicyApplicationRuleInvalidPort",
            f"Firewall Policy Application Rule {rule}: invalid port {value}. Port must be in [0, 64000].",
            target=json_path(path),
        )
    if leaf == "protocolType" and first.validator == "enum":
        rule = _lookup(body, path[:-3]).get("name")
        return bad_request(
            "FirewallPolicyApplicationRuleInvalidProtocolType",
            f"Firewall Policy Application Rule {rule}: protocol type '{value}' is not supported. "
            "Supported protocol types are Http, Https.",
            target=json_path(path),
        )
    details = [{"code": "InvalidJson", "message": f"{e.message}. Path '{json_path(e.absolute_path)}'."} for e in errors]
    return bad_request("InvalidRequestFormat", "Cannot parse the request.", details=details[:10])


# --------------------------------------------------------------------------------------------------
# Service rules


def check_name(name: Any, what: str, *, resource_id: str | None = None) -> None:
    """Azure's naming rule for policies, rule collection groups, collections, rules, route tables and routes."""
    if isinstance(name, str) and NAME_RE.match(name):
        return
    if resource_id is not None:
        raise bad_request(
            "InvalidResourceName",
            f"Resource name {name} is invalid. The name can be up to 80 characters long. It must begin with a word "
            "character, and it must end with a word character or with '_'. The name may contain word characters "
            "or '.', '-', '_'.",
            target=resource_id,
        )
    raise bad_request(
        "InvalidResourceName",
        f"{what} name '{name}' is invalid. The name must be 1-80 characters of letters, digits, '_', '.' or '-', "
        "start with a letter or digit, and end with a letter, digit or '_'.",
    )


def is_ip_or_range(value: str) -> bool:
    """``*``, an IPv4/IPv6 address or CIDR, or an ``a-b`` address range."""
    if value == "*":
        return True
    try:
        if "-" in value:
            low, high = (ipaddress.ip_address(part.strip()) for part in value.split("-", 1))
            return low.version == high.version and int(low) <= int(high)
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True


def _port_or_range_ok(value: str) -> bool:
    if value == "*":
        return True
    parts = value.split("-", 1)
    if not all(part.isdigit() for part in parts):
        return False
    numbers = [int(part) for part in parts]
    return all(1 <= n <= 65535 for n in numbers) and numbers == sorted(numbers)


@dataclass(frozen=True)
class PolicyContext:
    """What the rule checks need to know about the parent policy and the rest of the state."""

    name: str
    tier: str
    dns_proxy_enabled: bool
    require_proxy_for_network_rules: bool | None
    has_tls_certificate_authority: bool
    ip_group_exists: Callable[[str], bool]
    is_service_tag: Callable[[str], bool]

    @classmethod
    def from_policy(
        cls,
        name: str,
        properties: dict[str, Any],
        ip_group_exists: Callable[[str], bool],
        is_service_tag: Callable[[str], bool],
    ) -> PolicyContext:
        dns = properties.get("dnsSettings") or {}
        tls = properties.get("transportSecurity") or {}
        return cls(
            name=name,
            tier=(properties.get("sku") or {}).get("tier") or "Standard",
            dns_proxy_enabled=bool(dns.get("enableProxy")),
            require_proxy_for_network_rules=dns.get("requireProxyForNetworkRules"),
            has_tls_certificate_authority=bool(tls.get("certificateAuthority")),
            ip_group_exists=ip_group_exists,
            is_service_tag=is_service_tag,
        )


def _invalid_address(rule: str, value: str) -> ArmError:
    # Text quoted from a real answer (hashicorp/terraform-provider-azurerm#8312).
    return bad_request(
        "AzureFirewallRuleInvalidIpAddressOrRangeFormat",
        f"AzureFirewallRule {rule}: Invalid IP address value or range or Service Tag {value}.",
    )


def _nonempty(rule: dict[str, Any], field: str) -> bool:
    return bool(rule.get(field))


def _check_addresses(rule: dict[str, Any], name: str, ctx: PolicyContext) -> None:
    for value in rule.get("sourceAddresses") or []:
        if not is_ip_or_range(value):  # service tags are destination-only in Azure Firewall
            raise _invalid_address(name, value)
    for value in rule.get("destinationAddresses") or []:
        if not is_ip_or_range(value) and not ctx.is_service_tag(value):
            raise _invalid_address(name, value)
    for field in ("sourceIpGroups", "destinationIpGroups"):
        for ref in rule.get(field) or []:
            if not ctx.ip_group_exists(ref):
                raise bad_request(
                    "InvalidResourceReference",
                    f"Resource {ref} referenced by resource Firewall Policy {ctx.name} was not found. Please make "
                    "sure that the referenced resource exists, and that both resources are in the same region.",
                )


def _check_ports(rule: dict[str, Any], name: str) -> None:
    for value in rule.get("destinationPorts") or []:
        if not _port_or_range_ok(value):
            # Text quoted from a real answer (Azure/azure-rest-api-specs#11831).
            raise bad_request(
                "FirewallPolicyRuleConditionInvalidPortOrRangeFormat",
                f"Firewall Policy Rule Condition {name}: Invalid port value or range. User ports must be in [1, 65535]",
            )


def _check_application_rule(rule: dict[str, Any], name: str, ctx: PolicyContext) -> None:
    kinds = [field for field in APP_DESTINATION_FIELDS if _nonempty(rule, field)]
    if len(kinds) != 1:
        raise bad_request(
            "FirewallPolicyApplicationRuleInvalidDestination",
            f"Firewall Policy Application Rule {name} must have exactly one of targetFqdns, fqdnTags, webCategories "
            f"or targetUrls specified (found: {', '.join(kinds) or 'none'}).",
        )
    premium = ctx.tier == "Premium"
    if _nonempty(rule, "targetUrls") and not premium:
        raise bad_request(
            "FirewallPolicyApplicationRuleTargetUrlsRequirePremium",
            f"Firewall Policy Application Rule {name}: targetUrls (URL filtering) is only supported on Firewall "
            f"Policy with Premium SKU; policy {ctx.name} is {ctx.tier}.",
        )
    if rule.get("terminateTLS") is True:
        if not premium:
            raise bad_request(
                "FirewallPolicyApplicationRuleTerminateTlsRequiresPremium",
                f"Firewall Policy Application Rule {name}: terminateTLS (TLS inspection) is only supported on "
                f"Firewall Policy with Premium SKU; policy {ctx.name} is {ctx.tier}.",
            )
        if not ctx.has_tls_certificate_authority:
            raise bad_request(
                "FirewallPolicyApplicationRuleTerminateTlsRequiresTransportSecurity",
                f"Firewall Policy Application Rule {name}: terminateTLS requires the policy {ctx.name} to have "
                "transportSecurity.certificateAuthority configured.",
            )
    _check_addresses(rule, name, ctx)


def _check_network_rule(rule: dict[str, Any], name: str, collection: str, ctx: PolicyContext) -> None:
    if not any(_nonempty(rule, field) for field in NETWORK_DESTINATION_FIELDS):
        # Text quoted from a real answer (Azure/azure-cli#18932).
        raise bad_request(
            "FirewallPolicyNetworkRuleMustHaveDestination",
            f"Firewall Policy Network Rule {name} must have one of destinationAddresses, destinationIpGroups or "
            "destinationFqdns specified",
        )
    fqdns = rule.get("destinationFqdns") or []
    for fqdn in fqdns:
        if "*" in fqdn:
            raise bad_request(
                "FirewallPolicyNetworkRuleFqdnWildcardNotSupported",
                f"Firewall Policy Network Rule {name}: destination FQDN {fqdn} is invalid. Network rules with FQDN "
                "filtering don't support the use of wildcard characters.",
            )
    if fqdns and not ctx.dns_proxy_enabled and ctx.require_proxy_for_network_rules is not False:
        # Text quoted from a real answer (Azure/azure-sdk-for-go#11094).
        raise bad_request(
            "FirewallPolicyNetworkRuleFqdnRequiresDnsProxy",
            "In order to use DestinationFqdns in Network Rules, DNS Proxy must be enabled, or "
            f"RequireProxyForNetworkRules must be set to 'false'. See rule {name} in network rule collection "
            f"{collection}",
        )
    _check_addresses(rule, name, ctx)
    _check_ports(rule, name)


def _check_unique(names: list[str], what: str, scope: str) -> None:
    seen: set[str] = set()
    for name in names:
        key = name.casefold()
        if key in seen:
            raise bad_request(
                f"FirewallPolicy{what.replace(' ', '')}DuplicateName",
                f"Firewall Policy {what} name {name} is not unique in {scope}. {what} names must be unique.",
            )
        seen.add(key)


def _check_collection(collection: dict[str, Any], group: str, ctx: PolicyContext) -> None:
    check_name(collection.get("name"), "Rule Collection")
    name: str = collection["name"]
    rules = collection.get("rules") or []
    for rule in rules:
        check_name(rule.get("name"), "Rule")
    _check_unique([rule["name"] for rule in rules], "Rule", f"rule collection {name}")
    types = {rule["ruleType"] for rule in rules}
    nat = collection["ruleCollectionType"] == "FirewallPolicyNatRuleCollection"
    if (nat and types - {"NatRule"}) or (not nat and ("NatRule" in types or len(types) > 1)):
        raise bad_request(
            "FirewallPolicyRuleCollectionInvalidRuleType",
            f"Firewall Policy Rule Collection {name} in rule collection group {group} holds rules of type "
            f"{', '.join(sorted(types))}. A NAT rule collection holds only NatRule; a filter rule collection holds "
            "only ApplicationRule or only NetworkRule.",
        )
    for rule in rules:
        if rule["ruleType"] == "ApplicationRule":
            _check_application_rule(rule, rule["name"], ctx)
        elif rule["ruleType"] == "NetworkRule":
            _check_network_rule(rule, rule["name"], name, ctx)
        else:
            _check_addresses(rule, rule["name"], ctx)
            _check_ports(rule, rule["name"])


def check_rule_collection_group(group: str, properties: dict[str, Any], ctx: PolicyContext) -> None:
    collections = properties.get("ruleCollections") or []
    for collection in collections:
        _check_collection(collection, group, ctx)
    _check_unique([c["name"] for c in collections], "Rule Collection", f"rule collection group {group}")


def group_size_bytes(properties: dict[str, Any]) -> int:
    """Size of the group's JSON (compact), the measure used for the configurable size limit."""
    return len(json.dumps(properties, separators=(",", ":")).encode("utf-8"))


def format_size(size_bytes: int) -> str:
    """``size`` as Azure shows it (``"1.2MB"``)."""
    return f"{round(size_bytes / (1024 * 1024), 4):g}MB"


# --------------------------------------------------------------------------------------------------
# Routes


def _invalid_prefix(prefix: Any, route_id: str) -> ArmError:
    # Text quoted from a real answer (MicrosoftDocs/azure-docs#73366).
    return bad_request(
        "InvalidAddressPrefixFormat",
        f"Address prefix {prefix} of resource {route_id} is not formatted correctly. It should follow CIDR "
        "notation, for example 10.0.0.0/24.",
    )


def check_route(properties: dict[str, Any], route_id: str, is_service_tag: Callable[[str], bool]) -> None:
    prefix = properties.get("addressPrefix")
    if not isinstance(prefix, str) or not prefix:
        raise _invalid_prefix(prefix, route_id)
    if "/" in prefix:
        try:
            network = ipaddress.ip_network(prefix, strict=False)
        except ValueError:
            raise _invalid_prefix(prefix, route_id) from None
        if str(network) != prefix:
            raise bad_request(
                "InvalidCIDRNotation",
                f"The address prefix {prefix} in resource {route_id} has an invalid CIDR notation. For the given "
                f"prefix length, the address prefix should be {network}.",
            )
    elif not is_service_tag(prefix):
        raise _invalid_prefix(prefix, route_id)
    hop_type = properties["nextHopType"]
    hop_ip = properties.get("nextHopIpAddress")
    if hop_type == "VirtualAppliance":
        if not hop_ip:
            raise bad_request(
                "InvalidNextHopIpAddress",
                f"NextHopIpAddress cannot be Null or Empty in route {route_id} when NextHopType is VirtualAppliance",
            )
        if not is_ip_or_range(hop_ip) or "/" in hop_ip or "-" in hop_ip or hop_ip == "*":
            raise bad_request("InvalidNextHopIpAddress", f"NextHopIpAddress {hop_ip} of route {route_id} is not valid.")
    elif hop_ip:
        raise bad_request(
            "NextHopIpAddressNotAllowed",
            f"Route {route_id} has NextHopIpAddress {hop_ip}. Next hop values are only allowed in routes where the "
            f"next hop type is VirtualAppliance; next hop type is {hop_type}.",
        )
    if properties.get("nextHop") and hop_type != "VirtualApplianceEcmp":
        raise bad_request(
            "NextHopNotAllowed",
            f"Route {route_id} has nextHop, which is only allowed when nextHopType is VirtualApplianceEcmp.",
        )


def check_route_set(table_id: str, routes: dict[str, dict[str, Any]], is_service_tag: Callable[[str], bool]) -> None:
    """Per-table limits: 400 routes, at most 25 of them with a service tag as prefix."""
    if len(routes) > MAX_ROUTES:
        raise bad_request(
            "RouteTableRoutesLimitReached", f"Route table {table_id} would have {len(routes)} routes; limit is 400."
        )
    tagged = sum(1 for route in routes.values() if is_service_tag(route.get("addressPrefix", "")))
    if tagged > MAX_SERVICE_TAG_ROUTES:
        raise bad_request(
            "RouteTableServiceTagRoutesLimitReached",
            f"Route table {table_id} would have {tagged} routes with a service tag as address prefix; "
            f"limit is {MAX_SERVICE_TAG_ROUTES}.",
        )
