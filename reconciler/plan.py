"""Plan: a semantic, rule-keyed diff of desired against observed state, and the pre-flight checks. Pure.

Rules are matched by (collection name, rule name), never by list position. Set-valued fields compare as
sets; FQDNs, service tags, resource ids and protocol names compare case-insensitively, as Azure treats them.
Read-only and server-defaulted fields never reach this module (see `reconciler.arm`), so they never show
as drift.

Ownership: the configuration owns one rule collection group per target. Inside it, collections named
`ws-<workspace>-net` / `ws-<workspace>-app` are amlfw's; any other collection found there is foreign: it is
carried through unchanged in the PUT body and listed, never modified. Routes are owned by name prefix.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from reconciler.arm import unmodelled_fields
from reconciler.config import LimitSettings
from reconciler.model import (
    CompileWarning,
    DesiredTarget,
    NetworkRule,
    OpaqueRule,
    Route,
    Rule,
    RuleCollection,
    RuleCollectionGroup,
)

FORMAT_VERSION = 2  # 2: rule attributes, catalogue entries and features, list elements added/removed
OWNED_COLLECTION_RE = re.compile(r"^ws-.+-(net|app)$")


def is_owned_collection(name: str) -> bool:
    return bool(OWNED_COLLECTION_RE.match(name))


# ---------------------------------------------------------------------------------------------- observed


@dataclass(frozen=True, slots=True)
class ObservedGroup:
    group: RuleCollectionGroup
    etag: str | None = None
    provisioning_state: str | None = None
    size: str | None = None


@dataclass(frozen=True, slots=True)
class ObservedPolicy:
    """What observe() read about a target. `None` group = the owned group does not exist."""

    exists: bool
    tier: str = "Standard"
    dns_proxy: bool = False
    tls_inspection: bool = False
    provisioning_state: str | None = None
    etag: str | None = None
    owned: ObservedGroup | None = None
    foreign: tuple[ObservedGroup, ...] = ()
    group_count: int = 0
    routes: tuple[Route, ...] | None = None  # None: no route table configured or found
    route_table_exists: bool | None = None
    resource_group_exists: bool | None = None
    network_provider_state: str | None = None
    missing_ip_groups: tuple[str, ...] = ()
    unknown_service_tags: tuple[str, ...] = ()  # pre-flight: tags the Service Tags API does not serve (messages)


# ---------------------------------------------------------------------------------------------- changes


Value = str | int | bool | tuple[str, ...] | None


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field before and after. For list fields, `added` and `removed` name the elements that changed, so a
    renderer can show those instead of both whole lists."""

    field: str
    before: Value
    after: Value
    added: tuple[str, ...] = dataclasses.field(default=(), init=False)
    removed: tuple[str, ...] = dataclasses.field(default=(), init=False)

    def __post_init__(self) -> None:
        if isinstance(self.before, tuple) and isinstance(self.after, tuple):  # elements compare as Azure does
            b, a = {x.casefold(): x for x in self.before}, {x.casefold(): x for x in self.after}
            object.__setattr__(self, "added", tuple(sorted(a[k] for k in a.keys() - b.keys())))
            object.__setattr__(self, "removed", tuple(sorted(b[k] for k in b.keys() - a.keys())))

    @property
    def is_list(self) -> bool:
        return isinstance(self.before, tuple) or isinstance(self.after, tuple)


@dataclass(frozen=True, slots=True)
class RuleChange:
    """A rule added, removed or changed. `attributes` is everything an added rule will allow (or a removed rule
    allowed): its wire fields that are set. `entries` and `features` say what in the catalogue it serves."""

    action: str  # add | remove | change
    collection: str
    rule: str
    rule_type: str
    fields: tuple[FieldChange, ...] = ()
    attributes: tuple[tuple[str, Value], ...] = ()
    entries: tuple[str, ...] = ()
    features: tuple[str, ...] = ()
    breadth: str = ""  # how much the desired rule lets through (model.BREADTHS); "" for removed rules


@dataclass(frozen=True, slots=True)
class CollectionChange:
    action: str  # add | remove | change
    collection: str
    fields: tuple[FieldChange, ...] = ()
    rules: tuple[RuleChange, ...] = ()


@dataclass(frozen=True, slots=True)
class RouteChange:
    action: str  # add | remove | change
    route: str
    fields: tuple[FieldChange, ...] = ()


@dataclass(frozen=True, slots=True)
class ForeignGroup:
    name: str
    priority: int
    collections: int
    rules: int


@dataclass(frozen=True, slots=True)
class PreflightIssue:
    code: str
    message: str
    blocking: bool = True


@dataclass(frozen=True, slots=True)
class TargetPlan:
    """Everything one pass decided for one target. Renderers turn it into text, JSON or Markdown."""

    target: str
    policy_id: str
    group_name: str
    group_action: str  # create | update | repair | none
    group_fields: tuple[FieldChange, ...] = ()
    collections: tuple[CollectionChange, ...] = ()
    routes: tuple[RouteChange, ...] = ()
    foreign_groups: tuple[ForeignGroup, ...] = ()
    foreign_collections: tuple[str, ...] = ()
    foreign_routes: tuple[str, ...] = ()
    errors: tuple[PreflightIssue, ...] = ()
    notices: tuple[PreflightIssue, ...] = ()
    warnings: tuple[CompileWarning, ...] = ()
    body: RuleCollectionGroup | None = None  # the complete group to PUT when group_action != none
    desired_routes: tuple[Route, ...] = ()
    observed_etag: str | None = None
    catalogue_version: str = ""
    format_version: int = FORMAT_VERSION

    @property
    def drift(self) -> bool:
        return self.group_action != "none" or bool(self.routes)

    @property
    def applyable(self) -> bool:
        return not any(e.blocking for e in self.errors)

    @property
    def totals(self) -> dict[str, int]:
        """Terraform's three numbers: rules and routes to add, to change (collections and the group's own fields
        included), to destroy."""
        c = self.counts
        return {"add": c["rules_added"] + c["routes_added"],
                "change": c["rules_changed"] + c["routes_changed"] + c["collections_changed"]
                + (1 if self.group_fields else 0),
                "destroy": c["rules_removed"] + c["routes_removed"]}

    @property
    def counts(self) -> dict[str, int]:
        rule_changes = [r for c in self.collections for r in c.rules]
        return {
            "collections_added": sum(c.action == "add" for c in self.collections),
            "collections_removed": sum(c.action == "remove" for c in self.collections),
            "collections_changed": sum(c.action == "change" and bool(c.fields) for c in self.collections),
            "rules_added": sum(r.action == "add" for r in rule_changes),
            "rules_removed": sum(r.action == "remove" for r in rule_changes),
            "rules_changed": sum(r.action == "change" for r in rule_changes),
            "routes_added": sum(r.action == "add" for r in self.routes),
            "routes_removed": sum(r.action == "remove" for r in self.routes),
            "routes_changed": sum(r.action == "change" for r in self.routes),
        }


# ---------------------------------------------------------------------------------------------- diff

_CI_FIELDS = {"destination_addresses", "source_ip_groups", "destination_ip_groups", "fqdn_tags", "web_categories",
              "target_fqdns", "destination_fqdns"}  # not target_urls: a URL's path is case-sensitive
_NET_FIELDS = ("ip_protocols", "source_addresses", "source_ip_groups", "destination_addresses",
               "destination_ip_groups", "destination_fqdns", "destination_ports", "description")
_APP_FIELDS = ("protocols", "source_addresses", "source_ip_groups", "target_fqdns", "target_urls", "fqdn_tags",
               "web_categories", "destination_addresses", "terminate_tls", "description")
_WIRE = {
    "ip_protocols": "ipProtocols", "source_addresses": "sourceAddresses", "source_ip_groups": "sourceIpGroups",
    "destination_addresses": "destinationAddresses", "destination_ip_groups": "destinationIpGroups",
    "destination_fqdns": "destinationFqdns", "destination_ports": "destinationPorts",
    "description": "description", "protocols": "protocols", "target_fqdns": "targetFqdns",
    "target_urls": "targetUrls", "fqdn_tags": "fqdnTags", "web_categories": "webCategories",
    "terminate_tls": "terminateTLS",
}


def _value(rule: Rule, name: str) -> object:
    v = getattr(rule, name)
    if name == "protocols":
        return frozenset(str(p) for p in v)
    if name in _CI_FIELDS:
        return frozenset(x.lower() for x in v)
    return v


def _show(rule: Rule, name: str) -> str | int | bool | tuple[str, ...]:
    v = getattr(rule, name)
    if isinstance(v, frozenset):
        return tuple(sorted(str(x) for x in v))
    assert isinstance(v, str | int | bool)
    return v


def rule_attributes(rule: Rule) -> tuple[tuple[str, Value], ...]:
    """Every set wire field of a rule, in wire order: what it allows. An opaque rule shows its JSON body."""
    if isinstance(rule, OpaqueRule):
        return (("body", rule.body),)
    names = _NET_FIELDS if isinstance(rule, NetworkRule) else _APP_FIELDS
    out: list[tuple[str, Value]] = []
    for n in names:
        v = _show(rule, n)
        if v:  # set fields only: a False terminateTLS, an empty description or list says nothing
            out.append((_WIRE[n], v))
    return tuple(out)




def diff_rule(before: Rule, after: Rule) -> tuple[FieldChange, ...]:
    """Field-level differences between two rules of the same name. Empty when semantically equal."""
    if before == after:  # the common case, and cheap: normalised frozensets compare directly
        return ()
    if type(before) is not type(after):
        opaque = before if isinstance(before, OpaqueRule) else after
        if before.rule_type == after.rule_type and isinstance(opaque, OpaqueRule):
            # one side sets fields amlfw does not model (sourceGeoLocations, ...): name them, not the rule type
            extra = unmodelled_fields(opaque)
            return (FieldChange("unmanagedFields", *((extra, ()) if opaque is before else ((), extra))),)
        return (FieldChange("ruleType", before.rule_type, after.rule_type),)
    if isinstance(before, OpaqueRule):
        assert isinstance(after, OpaqueRule)
        return () if before.body == after.body else (FieldChange("body", before.body, after.body),)
    names = _NET_FIELDS if isinstance(before, NetworkRule) else _APP_FIELDS
    changes = [FieldChange(_WIRE[n], _show(before, n), _show(after, n))
               for n in names if _value(before, n) != _value(after, n)]
    if before.name != after.name:
        changes.insert(0, FieldChange("name", before.name, after.name))
    return tuple(changes)


def diff_collection(before: RuleCollection | None, after: RuleCollection | None) -> CollectionChange | None:
    if before is None and after is None:
        return None
    if before is None:
        assert after is not None
        return CollectionChange("add", after.name,
                                rules=tuple(RuleChange("add", after.name, r.name, r.rule_type,
                                                       attributes=rule_attributes(r)) for r in after.rules))
    if after is None:
        return CollectionChange("remove", before.name,
                                rules=tuple(RuleChange("remove", before.name, r.name, r.rule_type,
                                                       attributes=rule_attributes(r)) for r in before.rules))
    fields = []
    if before.priority != after.priority:
        fields.append(FieldChange("priority", before.priority, after.priority))
    if before.action.lower() != after.action.lower():
        fields.append(FieldChange("action", before.action, after.action))
    if before.collection_type != after.collection_type:
        fields.append(FieldChange("ruleCollectionType", before.collection_type, after.collection_type))
    if before.name != after.name:
        fields.append(FieldChange("name", before.name, after.name))
    old = {r.name.lower(): r for r in before.rules}
    new = {r.name.lower(): r for r in after.rules}
    rules: list[RuleChange] = []
    for key in sorted(old.keys() | new.keys()):
        o, n = old.get(key), new.get(key)
        if o is None:
            assert n is not None
            rules.append(RuleChange("add", after.name, n.name, n.rule_type, attributes=rule_attributes(n)))
        elif n is None:
            rules.append(RuleChange("remove", after.name, o.name, o.rule_type, attributes=rule_attributes(o)))
        else:
            f = diff_rule(o, n)
            if f:
                rules.append(RuleChange("change", after.name, n.name, n.rule_type, f))
    if len(before.rules) != len(old) and not rules:  # duplicate rule names in the live collection
        rules.append(RuleChange("change", after.name, "*", "duplicates",
                                (FieldChange("rules", len(before.rules), len(after.rules)),)))
    if not fields and not rules:
        return None
    return CollectionChange("change", after.name, tuple(fields), tuple(rules))


def diff_routes(desired: Iterable[Route], observed: Iterable[Route], prefix: str) -> tuple[RouteChange, ...]:
    want = {r.name.lower(): r for r in desired}
    have = {r.name.lower(): r for r in observed if r.name.lower().startswith(prefix.lower())}
    out: list[RouteChange] = []
    for key in sorted(want.keys() | have.keys()):
        w, h = want.get(key), have.get(key)
        if h is None:
            assert w is not None
            out.append(RouteChange("add", w.name, (FieldChange("addressPrefix", None, w.address_prefix),
                                                   FieldChange("nextHopType", None, w.next_hop_type))))
        elif w is None:
            out.append(RouteChange("remove", h.name, (FieldChange("addressPrefix", h.address_prefix, None),
                                                      FieldChange("nextHopType", h.next_hop_type, None))))
        else:
            f = []
            if h.address_prefix.lower() != w.address_prefix.lower():
                f.append(FieldChange("addressPrefix", h.address_prefix, w.address_prefix))
            if h.next_hop_type.lower() != w.next_hop_type.lower():
                f.append(FieldChange("nextHopType", h.next_hop_type, w.next_hop_type))
            if (h.next_hop_ip_address or "") != (w.next_hop_ip_address or ""):
                f.append(FieldChange("nextHopIpAddress", h.next_hop_ip_address, w.next_hop_ip_address))
            if f:
                out.append(RouteChange("change", w.name, tuple(f)))
    return tuple(out)


def merged_body(desired: RuleCollectionGroup, observed: RuleCollectionGroup | None) -> RuleCollectionGroup:
    """The complete group to PUT: our collections as desired, plus foreign collections carried through."""
    foreign = [c for c in (observed.rule_collections if observed else ()) if not is_owned_collection(c.name)]
    collections = sorted([*desired.rule_collections, *foreign], key=lambda c: (c.priority, c.name))
    return replace(desired, rule_collections=tuple(collections))


def _with_origins(collections: list[CollectionChange], desired: DesiredTarget) -> list[CollectionChange]:
    """Name the catalogue entries and features each added or changed rule serves (from the compiler's origins)."""
    origins = {(o.collection.lower(), o.rule.lower()): o for o in desired.origins}
    out = []
    for c in collections:
        rules = []
        for r in c.rules:
            origin = origins.get((r.collection.lower(), r.rule.lower())) if r.action != "remove" else None
            rules.append(replace(r, entries=origin.entry_ids, features=origin.features, breadth=origin.breadth)
                         if origin else r)
        out.append(replace(c, rules=tuple(rules)))
    return out


@dataclass(frozen=True, slots=True)
class PlanInput:
    target: str
    policy_id: str
    route_prefix: str
    desired: DesiredTarget
    observed: ObservedPolicy
    limits: LimitSettings = field(default_factory=LimitSettings)
    route_table_configured: bool = False
    source_file: str = ""


def plan(inp: PlanInput, measure: Callable[[RuleCollectionGroup], int] | None = None) -> TargetPlan:
    """Diff desired against observed and run the pre-flight checks. `measure` gives the byte size of a
    group's PUT body (the caller passes the ARM renderer's measure), checked against the size limit."""
    d, o = inp.desired, inp.observed
    errors: list[PreflightIssue] = []
    notices: list[PreflightIssue] = []

    if o.resource_group_exists is False:
        rg = inp.policy_id.split("/")[4]
        errors.append(PreflightIssue("resource-group-not-found",
                                     f"resource group {rg} does not exist: create it or fix "
                                     f"firewall_policy.resource_group in {inp.source_file}"))
    if o.network_provider_state is not None and o.network_provider_state.lower() != "registered":
        errors.append(PreflightIssue("provider-not-registered",
                                     f"Microsoft.Network is {o.network_provider_state} in this subscription: run "
                                     "`az provider register --namespace Microsoft.Network`"))
    if not o.exists:
        errors.append(PreflightIssue("policy-not-found",
                                     f"firewall policy {inp.policy_id} not found: create it first (amlfw manages "
                                     f"rule collection groups, not policies) or fix firewall_policy in "
                                     f"{inp.source_file}"))
        return TargetPlan(target=inp.target, policy_id=inp.policy_id, group_name=d.group.name, group_action="none",
                          errors=tuple(errors), warnings=d.warnings, catalogue_version=d.catalogue_version)

    # ownership of the group
    owned = o.owned
    if owned is not None:
        cols = owned.group.rule_collections
        if cols and not any(is_owned_collection(c.name) for c in cols):
            errors.append(PreflightIssue(
                "foreign-group-name",
                f"rule collection group {owned.group.name} exists but holds no amlfw collections "
                f"({', '.join(c.name for c in cols[:3])}): it belongs to someone else; choose another "
                f"rule_collection_group.name in {inp.source_file} or remove that group"))
    for g in o.foreign:
        if g.group.priority == d.group.priority:
            errors.append(PreflightIssue(
                "foreign-group-priority",
                f"rule collection group {g.group.name} already uses priority {d.group.priority}: choose another "
                f"rule_collection_group.priority in {inp.source_file}"))

    # what the policy must offer
    req = d.requirements
    if req.dns_proxy and not o.dns_proxy and o.tier == "Basic":
        errors.append(PreflightIssue(
            "dns-proxy-disabled",
            "network rules with FQDNs (e.g. SMB 445 to the storage account) need DNS proxy, which Basic policies do "
            f"not offer: move {inp.policy_id} to Standard or Premium, or drop the features that need it"))
    elif req.dns_proxy and not o.dns_proxy:
        errors.append(PreflightIssue(
            "dns-proxy-disabled",
            "network rules with FQDNs (e.g. SMB 445 to the storage account) need DNS proxy on the firewall "
            "policy: enable it (`az network firewall policy update --enable-dns-proxy true -g <rg> -n <policy>`, "
            "or dnsSettings.enableProxy in your IaC), or drop the features that need it"))
    if req.premium and o.tier != "Premium":
        errors.append(PreflightIssue(
            "premium-required",
            f"URL-path rules need a Premium policy but {inp.policy_id} is {o.tier}: upgrade it or set "
            f"firewall.tier/tls_inspection in {inp.source_file} to match (URLs then widen to their hosts)"))
    if req.tls_inspection and not o.tls_inspection:
        errors.append(PreflightIssue(
            "tls-inspection-missing",
            "URL-path rules with terminateTLS need TLS inspection (transportSecurity.certificateAuthority) on "
            f"the policy: configure it or set firewall.tls_inspection: false in {inp.source_file}"))
    if o.missing_ip_groups:
        errors.append(PreflightIssue(
            "ip-group-not-found",
            f"source IP groups not found: {', '.join(o.missing_ip_groups)}: create them or fix "
            f"source_ip_groups in {inp.source_file}"))
    for message in o.unknown_service_tags:
        errors.append(PreflightIssue("service-tag-unknown", message))
    if owned is None and o.group_count >= inp.limits.max_groups:
        errors.append(PreflightIssue(
            "group-count-limit",
            f"the policy already has {o.group_count} rule collection groups (limit {inp.limits.max_groups}): "
            "free one up or raise the limit if your policy allows more"))

    # state of the policy and the group
    repair = False
    for what, state in (("policy", o.provisioning_state), ("group", owned.provisioning_state if owned else None)):
        if state is None:
            continue
        s = state.lower()
        if s == "failed":
            repair = True
            notices.append(PreflightIssue(f"{what}-failed", f"the {what} is in provisioning state Failed: "
                                          "amlfw re-PUTs the owned group to repair it", blocking=False))
        elif s in ("updating", "deleting", "creating"):
            notices.append(PreflightIssue(f"{what}-busy", f"the {what} is {state}; writes wait until it settles",
                                          blocking=False))

    # diff the owned group
    desired_group = d.group
    observed_group = owned.group if owned else None
    collections: list[CollectionChange] = []
    group_fields: list[FieldChange] = []
    foreign_collections: tuple[str, ...] = ()
    if observed_group is None:
        action = "create"
        collections = [c for c in (diff_collection(None, x) for x in desired_group.rule_collections) if c]
    else:
        if observed_group.priority != desired_group.priority:
            group_fields.append(FieldChange("priority", observed_group.priority, desired_group.priority))
        foreign_cols = [c for c in observed_group.rule_collections if not is_owned_collection(c.name)]
        foreign_collections = tuple(c.name for c in foreign_cols)
        mine_prios = {c.priority: c.name for c in desired_group.rule_collections}
        for fc in foreign_cols:
            if fc.priority in mine_prios:
                errors.append(PreflightIssue(
                    "foreign-collection-priority",
                    f"collection {fc.name} (not amlfw's) in group {desired_group.name} uses priority {fc.priority}, "
                    f"which amlfw needs for {mine_prios[fc.priority]}: move it, or set the workspace priority in "
                    f"{inp.source_file}"))
        have = {c.name.lower(): c for c in observed_group.rule_collections if is_owned_collection(c.name)}
        want = {c.name.lower(): c for c in desired_group.rule_collections}
        for key in sorted(have.keys() | want.keys()):
            ch = diff_collection(have.get(key), want.get(key))
            if ch:
                collections.append(ch)
        action = "update" if collections or group_fields else ("repair" if repair else "none")
        if action == "update" and repair:
            action = "repair"

    route_changes: tuple[RouteChange, ...] = ()
    foreign_routes: tuple[str, ...] = ()
    routes_wanted = d.routes
    if inp.route_table_configured:
        if o.route_table_exists is False:
            if routes_wanted:
                errors.append(PreflightIssue(
                    "route-table-not-found",
                    f"route table not found: create it (and associate it with the compute subnet) or fix "
                    f"route_table in {inp.source_file}"))
        elif o.routes is not None:
            prefix = inp.route_prefix.lower()
            foreign = [r for r in o.routes if not r.name.lower().startswith(prefix)]
            foreign_routes = tuple(sorted(r.name for r in foreign))
            kept: list[Route] = []
            for r in routes_wanted:
                clash = next((f for f in foreign if f.address_prefix.lower() == r.address_prefix.lower()), None)
                if clash is None:
                    kept.append(r)
                elif clash.next_hop_type.lower() == r.next_hop_type.lower():
                    notices.append(PreflightIssue(
                        "route-already-present",
                        f"route {clash.name} (not amlfw's) already sends {r.address_prefix} to "
                        f"{clash.next_hop_type}; amlfw leaves it alone and adds none", blocking=False))
                else:
                    errors.append(PreflightIssue(
                        "foreign-route-clash",
                        f"route {clash.name} (not amlfw's) sends {r.address_prefix} to {clash.next_hop_type}, but "
                        f"inbound Azure ML traffic needs next hop {r.next_hop_type}: change or remove that route"))
            routes_wanted = tuple(kept)
            route_changes = diff_routes(routes_wanted, o.routes, inp.route_prefix)

    collections = _with_origins(collections, d)
    body = merged_body(desired_group, observed_group) if action != "none" else None
    size = measure(body) if (measure is not None and body is not None) else 0
    if size > inp.limits.max_group_bytes:
        errors.append(PreflightIssue(
            "group-size-limit",
            f"the rule collection group body is {size} bytes, over the {inp.limits.max_group_bytes}-byte limit: "
            "split workspaces across targets with separate groups"))
    return TargetPlan(
        target=inp.target,
        policy_id=inp.policy_id,
        group_name=d.group.name,
        warnings=d.warnings,
        catalogue_version=d.catalogue_version,
        desired_routes=routes_wanted,
        group_action=action,
        group_fields=tuple(group_fields),
        collections=tuple(collections),
        routes=route_changes,
        foreign_groups=tuple(sorted((ForeignGroup(g.group.name, g.group.priority, len(g.group.rule_collections),
                                                  g.group.rule_count) for g in o.foreign), key=lambda f: f.name)),
        foreign_collections=foreign_collections,
        foreign_routes=foreign_routes,
        errors=tuple(errors),
        notices=tuple(notices),
        body=body,
        observed_etag=owned.etag if owned else None,
    )


@dataclass(frozen=True, slots=True)
class Outcome:
    """How one pass over one target ended: in_sync, drift (dry-run), applied, or error."""

    target: str
    status: str
    plan: TargetPlan | None = None
    error: str | None = None
    group_written: bool = False
    routes_written: int = 0
    retries: int = 0
    duration_ms: int = 0
    observed_routes: tuple[Route, ...] = ()  # the owned routes as read (a saved plan records them)
    routes_done: tuple[str, ...] = ()  # the route writes that happened, in order: "add amlfw-X"

    @property
    def ok(self) -> bool:
        return self.status not in ("error", "partial")
