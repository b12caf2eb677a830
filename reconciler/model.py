"""Frozen domain types shared by the pure core.

Everything here is immutable and normalised at construction, so that `==` is semantic equality the way
Azure Firewall sees it: FQDNs are lower-case, protocol names use Azure's canonical casing, and the
set-like fields of a rule (addresses, FQDNs, ports, protocols) are frozensets. Order lives only where
Azure gives it meaning: the rule collections of a group and the rules of a collection are tuples, but the
plan compares them by name, never by position.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

CLOUDS: tuple[str, ...] = ("AzureCloud", "AzureUSGovernment", "AzureChinaCloud")

EndpointKind = Literal["service_tag", "fqdn", "wildcard_fqdn", "url_path"]
ENDPOINT_KINDS: tuple[str, ...] = ("service_tag", "fqdn", "wildcard_fqdn", "url_path")
Direction = Literal["outbound", "inbound"]
ApplyAs = Literal["firewall", "route", "nsg"]
# Which rule-set strategy an entry belongs to: `service_tags` (the service-tag network rules of the Azure Firewall
# recipe), `fqdns` (the host tables for firewalls without service tags), `common` (needed in either strategy).
EntryStrategy = Literal["service_tags", "fqdns", "common"]
ENTRY_STRATEGIES: tuple[str, ...] = ("service_tags", "fqdns", "common")
# What a target or workspace asks for (`allow_by:`); `both` is the union of the two.
ALLOW_BY: tuple[str, ...] = ("service_tags", "fqdns", "both")

_NETWORK_PROTOCOLS = {"tcp": "TCP", "udp": "UDP", "any": "Any", "icmp": "ICMP"}
_APP_PROTOCOLS = {"http": "Http", "https": "Https"}
PORT_PROTOCOLS = {**_NETWORK_PROTOCOLS, **_APP_PROTOCOLS}


def canonical_network_protocol(value: str) -> str:
    """`tcp` -> `TCP`; Azure's ipProtocols enum is case-insensitive on the wire."""
    return _NETWORK_PROTOCOLS.get(value.lower(), value)


def canonical_app_protocol(value: str) -> str:
    """`https` -> `Https`."""
    return _APP_PROTOCOLS.get(value.lower(), value)


def _fs(values: Iterable[str]) -> frozenset[str]:
    return values if type(values) is frozenset else frozenset(values)


def _lower_fs(values: Iterable[str]) -> frozenset[str]:
    return frozenset([v.strip().lower() for v in values])


def _url_fs(values: Iterable[str]) -> frozenset[str]:
    """URL paths: the host is case-insensitive, the path is not."""
    out = set()
    for v in values:
        host, sep, path = v.strip().partition("/")
        out.add(host.lower() + sep + path)
    return frozenset(out)


# --------------------------------------------------------------------------------------------------
# Catalogue


@dataclass(frozen=True, slots=True)
class PortSpec:
    """One `PROTO:PORTS` item of a catalogue entry, e.g. `TCP:443`, `Https:443`, `TCP:29876-29877`."""

    protocol: str
    ports: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "protocol", PORT_PROTOCOLS.get(self.protocol.lower(), self.protocol))

    @property
    def is_web(self) -> bool:
        """True when an application rule can carry it: Http/Https, or TCP on 80/443."""
        if self.protocol in ("Http", "Https"):
            return True
        return self.protocol == "TCP" and self.ports in ("80", "443")

    @property
    def app_protocol(self) -> str:
        """The application-rule protocol for a web port: TCP 80 is Http, everything else Https."""
        if self.protocol in ("Http", "Https"):
            return self.protocol
        return "Http" if self.ports == "80" else "Https"

    def __str__(self) -> str:
        return f"{self.protocol}:{self.ports}"


@dataclass(frozen=True, slots=True)
class Correction:
    code: str
    note: str


@dataclass(frozen=True, slots=True)
class Provenance:
    section: str
    seed_text: str | None = None
    also_in: tuple[str, ...] = ()
    in_seed_text: bool = True
    source: str | None = None


@dataclass(frozen=True, slots=True)
class Fallback:
    kind: EndpointKind
    value: str


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One entry of the endpoint catalogue."""

    id: str
    kind: EndpointKind
    value: str
    direction: Direction
    ports: tuple[PortSpec, ...]
    clouds: frozenset[str]
    features: frozenset[str]
    purpose: str
    provenance: Provenance
    apply_as: ApplyAs = "firewall"
    fallback: Fallback | None = None
    corrections: tuple[Correction, ...] = ()
    notes: str | None = None
    strategy: EntryStrategy = "common"
    # service tags (values as in the catalogue, e.g. `Storage.{region}`) whose rules already allow this host
    covered_by: tuple[str, ...] = ()
    # the documented wildcard used when a per-resource placeholder ({keyvault}, ...) has no value
    if_unknown: str | None = None
    # url_path: the ports on which Standard (no TLS inspection) may allow the whole host; empty: all its ports
    widen_ports: tuple[PortSpec, ...] = ()

    @property
    def placeholders(self) -> frozenset[str]:
        found = set()
        for name in ("region", "storage", "keyvault", "registry", "workspace_id"):
            if "{" + name + "}" in self.value:
                found.add(name)
        return frozenset(found)


@dataclass(frozen=True, slots=True)
class FeatureInfo:
    name: str
    description: str
    implies: tuple[str, ...] = ()
    # (feature, why): another feature this one usually needs, for a `feature-needs` warning when it is absent
    needs: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class Catalogue:
    version: str
    title: str
    source: tuple[tuple[str, str], ...]
    features: tuple[FeatureInfo, ...]
    corrections: tuple[tuple[str, str], ...]
    well_known_ports: tuple[tuple[int, str], ...]
    entries: tuple[Endpoint, ...]
    # cloud -> ((lowercase region, tag suffix), ...)
    regions: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]
    path: str = ""
    # cloud -> (tags Microsoft does not mark usable in Azure Firewall, ... nor as route prefixes), lower-case
    tag_limits: tuple[tuple[str, frozenset[str], frozenset[str]], ...] = ()

    @property
    def feature_names(self) -> frozenset[str]:
        return frozenset(f.name for f in self.features)

    def feature(self, name: str) -> FeatureInfo | None:
        for f in self.features:
            if f.name == name:
                return f
        return None

    def with_implied(self, features: frozenset[str] | set[str]) -> frozenset[str]:
        """The features plus everything they imply, transitively (arc_inference -> arc_training -> ...)."""
        out = set(features)
        todo = list(out)
        while todo:
            info = self.feature(todo.pop())
            for implied in info.implies if info else ():
                if implied not in out:
                    out.add(implied)
                    todo.append(implied)
        return frozenset(out)

    def tag_unusable(self, cloud: str, tag: str, *, route: bool) -> bool:
        """True when Microsoft's service-tag data says `tag` cannot be used in Azure Firewall rules
        (or, with route=True, as a UDR prefix) in `cloud`. False when it can, or nothing is known."""
        for c, no_fw, no_udr in self.tag_limits:
            if c == cloud:
                return tag.lower() in (no_udr if route else no_fw)
        return False

    def region_suffixes(self, cloud: str) -> dict[str, str]:
        for c, pairs in self.regions:
            if c == cloud:
                return dict(pairs)
        return {}

    def entry(self, entry_id: str) -> Endpoint | None:
        for e in self.entries:
            if e.id == entry_id:
                return e
        return None


# --------------------------------------------------------------------------------------------------
# Firewall policy content (desired and observed)


@dataclass(frozen=True, slots=True, order=True)
class ApplicationProtocol:
    protocol_type: str
    port: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "protocol_type", canonical_app_protocol(self.protocol_type))

    def __str__(self) -> str:
        return f"{self.protocol_type}:{self.port}"


@dataclass(frozen=True, slots=True)
class NetworkRule:
    name: str
    ip_protocols: frozenset[str] = frozenset()
    source_addresses: frozenset[str] = frozenset()
    source_ip_groups: frozenset[str] = frozenset()
    destination_addresses: frozenset[str] = frozenset()
    destination_ip_groups: frozenset[str] = frozenset()
    destination_fqdns: frozenset[str] = frozenset()
    destination_ports: frozenset[str] = frozenset()
    description: str = ""

    rule_type: Literal["NetworkRule"] = field(default="NetworkRule", init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "ip_protocols", _fs(canonical_network_protocol(p) for p in self.ip_protocols))
        object.__setattr__(self, "source_addresses", _fs(self.source_addresses))
        object.__setattr__(self, "source_ip_groups", _fs(self.source_ip_groups))
        object.__setattr__(self, "destination_addresses", _fs(self.destination_addresses))
        object.__setattr__(self, "destination_ip_groups", _fs(self.destination_ip_groups))
        object.__setattr__(self, "destination_fqdns", _lower_fs(self.destination_fqdns))
        object.__setattr__(self, "destination_ports", _fs(p.strip() for p in self.destination_ports))


@dataclass(frozen=True, slots=True)
class ApplicationRule:
    name: str
    protocols: frozenset[ApplicationProtocol] = frozenset()
    source_addresses: frozenset[str] = frozenset()
    source_ip_groups: frozenset[str] = frozenset()
    target_fqdns: frozenset[str] = frozenset()
    target_urls: frozenset[str] = frozenset()
    fqdn_tags: frozenset[str] = frozenset()
    web_categories: frozenset[str] = frozenset()
    destination_addresses: frozenset[str] = frozenset()
    terminate_tls: bool = False
    description: str = ""

    rule_type: Literal["ApplicationRule"] = field(default="ApplicationRule", init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "protocols", frozenset(self.protocols))
        object.__setattr__(self, "source_addresses", _fs(self.source_addresses))
        object.__setattr__(self, "source_ip_groups", _fs(self.source_ip_groups))
        object.__setattr__(self, "target_fqdns", _lower_fs(self.target_fqdns))
        object.__setattr__(self, "target_urls", _url_fs(self.target_urls))
        object.__setattr__(self, "fqdn_tags", _fs(self.fqdn_tags))
        object.__setattr__(self, "web_categories", _fs(self.web_categories))
        object.__setattr__(self, "destination_addresses", _fs(self.destination_addresses))


@dataclass(frozen=True, slots=True)
class OpaqueRule:
    """A rule amlfw does not model (a NAT rule, an unknown type): kept as canonical JSON text."""

    name: str
    rule_type: str
    body: str


Rule = NetworkRule | ApplicationRule | OpaqueRule


@dataclass(frozen=True, slots=True)
class RuleCollection:
    name: str
    priority: int
    action: str = "Allow"
    collection_type: str = "FirewallPolicyFilterRuleCollection"
    rules: tuple[Rule, ...] = ()
    # the JSON the collection was read as (observed collections only; never mutated); a PUT carrying a foreign
    # collection sends exactly this, so types and fields amlfw does not model survive byte for byte
    raw: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)

    def rule(self, name: str) -> Rule | None:
        for r in self.rules:
            if r.name == name:
                return r
        return None


@dataclass(frozen=True, slots=True)
class RuleCollectionGroup:
    name: str
    priority: int
    rule_collections: tuple[RuleCollection, ...] = ()

    def collection(self, name: str) -> RuleCollection | None:
        for c in self.rule_collections:
            if c.name == name:
                return c
        return None

    @property
    def rule_count(self) -> int:
        return sum(len(c.rules) for c in self.rule_collections)


@dataclass(frozen=True, slots=True)
class Route:
    name: str
    address_prefix: str
    next_hop_type: str = "Internet"
    next_hop_ip_address: str | None = None


# --------------------------------------------------------------------------------------------------
# Compiler output


@dataclass(frozen=True, slots=True)
class CompileWarning:
    """A warning of the compiler, as data: code, catalogue entry id, message."""

    code: str
    entry_id: str | None
    message: str
    target: str = ""
    workspace: str = ""

    def __str__(self) -> str:
        where = "/".join(p for p in (self.target, self.workspace) if p)
        entry = f" [{self.entry_id}]" if self.entry_id else ""
        return f"warning: {where + ': ' if where else ''}{self.code}{entry}: {self.message}"


@dataclass(frozen=True, slots=True)
class Requirements:
    """What the live policy must offer for the desired rules to be accepted (checked in pre-flight)."""

    dns_proxy: bool = False
    premium: bool = False
    tls_inspection: bool = False
    source_ip_groups: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class AllowListRow:
    """One line of the allow-list export, for other firewalls."""

    target: str
    workspace: str
    destination: str
    kind: str
    protocol: str
    port: str
    why: str
    entry_id: str
    direction: str = "outbound"
    enforced_as: str = ""


@dataclass(frozen=True, slots=True)
class RuleOrigin:
    """Which catalogue entries a desired rule serves."""

    collection: str
    rule: str
    workspace: str
    entry_ids: tuple[str, ...]
    features: tuple[str, ...] = ()  # the workspace's features those entries serve (baseline included)
    # how much the rule lets through: one of BREADTHS
    breadth: str = ""


# Breadth of a rule, widest first (`render --format table` marks each rule; `render` prints a summary).
BREADTHS: tuple[str, ...] = ("global tag", "regional tag", "wildcard", "widened URL", "per-resource host",
                             "exact host", "URL path")
USER_ENTRY = "user"  # the entry id of a workspace's extra_rules


@dataclass(frozen=True, slots=True)
class DesiredTarget:
    target_name: str
    group: RuleCollectionGroup
    routes: tuple[Route, ...]
    requirements: Requirements
    origins: tuple[RuleOrigin, ...]
    allow_list: tuple[AllowListRow, ...]
    warnings: tuple[CompileWarning, ...]
    catalogue_version: str
