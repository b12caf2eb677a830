"""`reconciler.plan`: a semantic, rule-keyed diff and the pre-flight checks, as pure functions of values.

Observed state is built the way the shell builds it: ARM JSON (here: our own PUT body, dressed up the way Azure
answers a GET) parsed by `reconciler.arm.group_from_arm`.
"""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from dataclasses import replace
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.arm import group_from_arm, group_to_arm, rule_from_arm, rule_to_arm
from reconciler.catalogue import CatalogueStore
from reconciler.compile import compile_target
from reconciler.config import LimitSettings, Target, load_config
from reconciler.model import DesiredTarget, OpaqueRule, Route, RuleCollectionGroup
from reconciler.plan import (
    CollectionChange,
    FieldChange,
    ObservedGroup,
    ObservedPolicy,
    Outcome,
    PlanInput,
    RuleChange,
    TargetPlan,
    is_owned_collection,
    plan,
)
from reconciler.render.desired import policy_id
from reconciler.render.report import render_text
from tests.emulator.reference import ReferenceData

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "config" / "examples"


@cache
def _store() -> CatalogueStore:
    return CatalogueStore(REPO / "config" / "catalogue")


@cache
def example_pairs() -> tuple[tuple[Target, DesiredTarget], ...]:
    """Every target of every example configuration, compiled."""
    out = []
    for name in ("public", "usgov", "china", "fleet"):
        config = load_config(EXAMPLES / f"{name}.yaml", _store().get)
        out += [(t, compile_target(t, _store().get(t.catalogue_version))) for t in config.targets]
    return tuple(out)


def public() -> tuple[Target, DesiredTarget]:
    return example_pairs()[0]


def observed_policy(t: Target, group_json: dict[str, Any] | None, **kw: Any) -> ObservedPolicy:
    defaults: dict[str, Any] = {"exists": True, "tier": t.tier, "dns_proxy": True, "tls_inspection": t.tls_inspection,
                                "provisioning_state": "Succeeded", "group_count": 3}
    owned = None
    if group_json is not None:
        props = group_json.get("properties", {})
        owned = ObservedGroup(group_from_arm(group_json), etag=group_json.get("etag"),
                              provisioning_state=props.get("provisioningState"), size=props.get("size"))
    return ObservedPolicy(owned=owned, **{**defaults, **kw})


def make_plan(t: Target, d: DesiredTarget, observed: ObservedPolicy, *,
              measure: Callable[[RuleCollectionGroup], int] | None = None) -> TargetPlan:
    return plan(PlanInput(target=t.name, policy_id=policy_id(t), route_prefix=t.route_prefix, desired=d,
                          observed=observed, limits=t.limits,
                          route_table_configured=t.route_table is not None, source_file="amlfw.yaml"),
                measure=measure)


# -------------------------------------------------------------------------------- Azure-style GET bodies

_NET_DEFAULTS = {"sourceAddresses": [], "sourceIpGroups": [], "destinationAddresses": [], "destinationIpGroups": [],
                 "destinationFqdns": [], "destinationPorts": [], "ipProtocols": [], "sourceKubeSelectorGroups": [],
                 "sourceGeoLocations": [], "destinationGeoLocations": []}
_APP_DEFAULTS = {"sourceAddresses": [], "sourceIpGroups": [], "targetFqdns": [], "targetUrls": [], "fqdnTags": [],
                 "webCategories": [], "destinationAddresses": [], "terminateTLS": False, "httpHeadersToInsert": [],
                 "sourceKubeSelectorGroups": [], "protocols": []}


def as_azure_returns_it(body: dict[str, Any], t: Target) -> dict[str, Any]:
    """Our PUT body with what a GET adds: ids, etag, read-only state, empty lists and false flags."""
    out = copy.deepcopy(body)
    out["id"] = f"{policy_id(t)}/ruleCollectionGroups/{body['name']}"
    out["type"] = "Microsoft.Network/FirewallPolicies/RuleCollectionGroups"
    out["etag"] = 'W/"00000000-0000-0000-0000-000000000042"'
    out["properties"]["provisioningState"] = "Succeeded"
    out["properties"]["size"] = "0.012 MB"
    for c in out["properties"]["ruleCollections"]:
        for i, r in enumerate(c["rules"]):
            defaults = _NET_DEFAULTS if r["ruleType"] == "NetworkRule" else _APP_DEFAULTS
            c["rules"][i] = {**defaults, "description": None, **r}
    return out


def _recase(value: str, rnd: random.Random) -> str:
    return "".join(ch.upper() if rnd.random() < 0.5 else ch.lower() for ch in value)


def scramble(body: dict[str, Any], rnd: random.Random) -> dict[str, Any]:
    """What must never count as drift: list order anywhere, and the case of FQDNs, tags and protocol names."""
    out = copy.deepcopy(body)
    cols = out["properties"]["ruleCollections"]
    rnd.shuffle(cols)
    for c in cols:
        rnd.shuffle(c["rules"])
        for r in c["rules"]:
            for value in r.values():
                if isinstance(value, list):
                    rnd.shuffle(value)
            for key in ("targetFqdns", "destinationFqdns", "destinationAddresses", "ipProtocols"):
                if r.get(key):
                    r[key] = [_recase(v, rnd) for v in r[key]]
            for p in r.get("protocols") or []:
                p["protocolType"] = p["protocolType"].upper() if rnd.random() < 0.5 else p["protocolType"].lower()
    return out


def assert_no_drift(p: TargetPlan) -> None:
    assert p.collections == ()
    assert p.group_fields == ()
    assert p.group_action == "none"
    assert p.body is None
    assert not p.drift
    assert p.errors == ()
    assert sum(p.counts.values()) == 0


# ------------------------------------------------------------------------------------------ properties

pair_index = st.integers(min_value=0, max_value=len(example_pairs()) - 1)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(index=pair_index, seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_plan_of_desired_against_itself_is_empty(index: int, seed: int) -> None:
    t, d = example_pairs()[index]
    body = scramble(as_azure_returns_it(group_to_arm(d.group), t), random.Random(seed))
    observed = observed_policy(t, body, routes=d.routes, route_table_exists=True)
    assert_no_drift(make_plan(t, d, observed))


@settings(max_examples=40, deadline=None)
@given(index=pair_index, seed=st.integers(min_value=0, max_value=2**32 - 1),
       edit=st.sampled_from(["rule-removed", "port-changed", "extra-rule", "collection-priority", "source-changed"]))
def test_one_edit_is_one_change_whatever_the_order(index: int, seed: int, edit: str) -> None:
    t, d = example_pairs()[index]
    rnd = random.Random(seed)
    body = as_azure_returns_it(group_to_arm(d.group), t)
    coll = rnd.choice(body["properties"]["ruleCollections"])
    rule = rnd.choice(coll["rules"])
    expected = apply_edit(edit, coll, rule)
    p = make_plan(t, d, observed_policy(t, scramble(body, rnd)))
    assert describe(p) == [expected]
    assert p.group_action == "update"
    assert p.body == d.group
    # applying the plan, then planning again, finds nothing to do
    applied = as_azure_returns_it(group_to_arm(p.body), t)
    assert_no_drift(make_plan(t, d, observed_policy(t, scramble(applied, rnd))))


def apply_edit(edit: str, coll: dict[str, Any], rule: dict[str, Any]) -> tuple[Any, ...]:
    """Edit the observed JSON in place; return the change the plan must report, as `describe` shows it."""
    c = coll["name"]
    if edit == "rule-removed":
        coll["rules"].remove(rule)
        return ("change", c, (), (("add", rule["name"], ()),))
    if edit == "extra-rule":
        coll["rules"].append({**rule, "name": "zz-added-by-hand"})
        return ("change", c, (), (("remove", "zz-added-by-hand", ()),))
    if edit == "collection-priority":
        before = coll["priority"]
        coll["priority"] = before + 5
        return ("change", c, (("priority", before + 5, before),), ())
    if edit == "source-changed":
        wanted = tuple(sorted(rule.get("sourceAddresses") or []))
        rule["sourceAddresses"] = ["0.0.0.0/0"]
        return ("change", c, (), (("change", rule["name"], (("sourceAddresses", ("0.0.0.0/0",), wanted),)),))
    assert edit == "port-changed"
    if rule["ruleType"] == "NetworkRule":
        wanted_ports = tuple(sorted(rule["destinationPorts"]))
        rule["destinationPorts"] = ["63999"]  # a port no catalogue entry uses
        return ("change", c, (), (("change", rule["name"], (("destinationPorts", ("63999",), wanted_ports),)),))
    wanted_protocols = tuple(sorted(f"{p['protocolType']}:{p['port']}" for p in rule["protocols"]))
    rule["protocols"] = [{"protocolType": "Https", "port": 63999}]
    return ("change", c, (), (("change", rule["name"], (("protocols", ("Https:63999",), wanted_protocols),)),))


def describe(p: TargetPlan) -> list[tuple[Any, ...]]:
    def fields(fs: tuple[FieldChange, ...]) -> tuple[tuple[Any, ...], ...]:
        return tuple((f.field, f.before, f.after) for f in fs)

    return [(c.action, c.collection, fields(c.fields), tuple((r.action, r.rule, fields(r.fields)) for r in c.rules))
            for c in p.collections]


# ------------------------------------------------------------------------------------------ exact changes


def test_exact_changes_on_the_public_example() -> None:
    t, d = public()
    body = as_azure_returns_it(group_to_arm(d.group), t)
    net = next(c for c in body["properties"]["ruleCollections"] if c["name"].endswith("-net"))
    rule = next(r for r in net["rules"] if r["name"] == "tag-AzureResourceManager-tcp")
    rule["destinationPorts"] = ["8443"]
    p = make_plan(t, d, observed_policy(t, body))
    (cc,) = p.collections
    assert (cc.action, cc.collection, cc.fields) == ("change", net["name"], ())
    assert cc.rules == (RuleChange("change", net["name"], "tag-AzureResourceManager-tcp", "NetworkRule",
                                   (FieldChange("destinationPorts", ("8443",), ("443",)),),
                                   entries=("tag.azure-resource-manager",), features=("baseline",),
                                   breadth="global tag"),)
    assert (cc.rules[0].fields[0].added, cc.rules[0].fields[0].removed) == (("443",), ("8443",))
    assert p.counts["rules_changed"] == 1
    assert p.applyable


def test_the_plan_shows_everything_an_added_or_removed_rule_allows_and_what_it_serves() -> None:
    """An added rule: every attribute and its catalogue entries and features; a removed rule: all it allowed."""
    t, d = public()
    body = as_azure_returns_it(group_to_arm(d.group), t)
    app = next(c for c in body["properties"]["ruleCollections"] if c["name"].endswith("-app"))
    pypi = next(r for r in app["rules"] if r["name"] == "app-pypi.org")
    app["rules"].remove(pypi)
    app["rules"].append({"ruleType": "ApplicationRule", "name": "allow-everything-temp", "sourceAddresses": ["*"],
                         "protocols": [{"protocolType": "Https", "port": 443}], "targetFqdns": ["*"]})
    p = make_plan(t, d, observed_policy(t, body))
    (cc,) = p.collections
    added = next(r for r in cc.rules if r.action == "add")
    removed = next(r for r in cc.rules if r.action == "remove")
    assert added.rule == "app-pypi.org"
    attributes = dict(added.attributes)
    assert attributes["targetFqdns"] == ("pypi.org",)
    assert attributes["protocols"] == ("Http:80", "Https:443")
    assert attributes["sourceAddresses"] == ("10.20.0.0/24",)
    assert added.entries and all(e.startswith("hosts.python") or "pypi" in e for e in added.entries), added.entries
    assert "python_packages" in added.features
    assert removed.rule == "allow-everything-temp"
    assert dict(removed.attributes) == {"protocols": ("Https:443",), "sourceAddresses": ("*",),
                                        "targetFqdns": ("*",)}
    assert (removed.entries, removed.features) == ((), ())
    assert p.totals == {"add": 1, "change": 0, "destroy": 1}


def test_a_list_change_names_the_elements_not_both_lists() -> None:
    t, d = public()
    body = as_azure_returns_it(group_to_arm(d.group), t)
    for c in body["properties"]["ruleCollections"]:
        for r in c["rules"]:
            r["sourceAddresses"] = [*r["sourceAddresses"], "10.99.0.0/24"]
    p = make_plan(t, d, observed_policy(t, body))
    changes = [f for c in p.collections for r in c.rules for f in r.fields]
    assert changes and {f.field for f in changes} == {"sourceAddresses"}
    assert {(f.added, f.removed) for f in changes} == {((), ("10.99.0.0/24",))}

    text = render_text([Outcome(t.name, "drift", p)])
    assert 'sourceAddresses: -["10.99.0.0/24"] (2 -> 1 element)' in text
    assert '"10.20.0.0/24", "10.99.0.0/24"' not in text  # not the whole list before and after


def test_group_missing_is_created_and_group_priority_is_a_group_field() -> None:
    t, d = public()
    p = make_plan(t, d, observed_policy(t, None))
    assert p.group_action == "create"
    assert {c.action for c in p.collections} == {"add"}
    assert p.counts["rules_added"] == d.group.rule_count
    assert p.body == d.group
    body = group_to_arm(d.group)
    body["properties"]["priority"] = 310
    p = make_plan(t, d, observed_policy(t, body))
    assert (p.group_action, p.collections) == ("update", ())
    assert p.group_fields == (FieldChange("priority", 310, 300),)


def test_owned_collection_of_a_removed_workspace_is_removed() -> None:
    t, d = public()
    body = group_to_arm(d.group)
    gone = copy.deepcopy(body["properties"]["ruleCollections"][0])
    gone["name"], gone["priority"] = "ws-retired-net", 3000
    body["properties"]["ruleCollections"].append(gone)
    p = make_plan(t, d, observed_policy(t, body))
    (cc,) = p.collections
    assert (cc.action, cc.collection) == ("remove", "ws-retired-net")
    assert p.counts["collections_removed"] == 1
    assert p.body is not None
    assert p.body.collection("ws-retired-net") is None


def test_action_and_description_edits_show() -> None:
    t, d = public()
    body = group_to_arm(d.group)
    app = body["properties"]["ruleCollections"][1]
    app["action"]["type"] = "Deny"
    app["rules"][0]["description"] = "edited by hand"
    (cc,) = make_plan(t, d, observed_policy(t, body)).collections
    assert cc.fields == (FieldChange("action", "Deny", "Allow"),)
    ((field,),) = [r.fields for r in cc.rules]
    assert (field.field, field.before) == ("description", "edited by hand")


# ------------------------------------------------------------------------------------------ foreign state

OFFICIAL_GROUP_BODIES = [
    ("2026-03-01", "FirewallPolicyRuleCollectionGroupGet.json", ("responses", "200", "body")),
    ("2026-03-01", "FirewallPolicyRuleCollectionGroupPut.json", ("parameters", "parameters")),
    ("2026-03-01", "FirewallPolicyRuleCollectionGroupWithWebCategoriesPut.json", ("parameters", "parameters")),
    ("2026-03-01", "FirewallPolicyRuleCollectionGroupWithIpGroupsGet.json", ("responses", "200", "body")),
    ("2026-01-01", "FirewallPolicyNatRuleCollectionGroupGet.json", ("responses", "200", "body")),
    ("2025-09-01", "FirewallPolicyRuleCollectionGroupWithHttpHeadersToInsert.json", ("parameters", "parameters")),
]


def _official(reference: ReferenceData, version: str, name: str, path: tuple[str, ...]) -> dict[str, Any]:
    file = reference.path("azure-rest-api-specs", version, "examples", name)
    doc: Any = json.loads(file.read_text(encoding="utf-8"))
    for key in path:
        doc = doc[key]
    assert isinstance(doc, dict)
    return doc


def _canonical(rule: dict[str, Any]) -> dict[str, Any]:
    """A rule without empty fields, lists sorted: what must survive a read and a re-PUT."""
    out = {}
    for k, v in rule.items():
        if v in (None, False, "", [], {}):
            continue
        if isinstance(v, list):
            v = sorted(v, key=lambda x: json.dumps(x, sort_keys=True))
        out[k] = v
    return out


@pytest.mark.parametrize(("version", "name", "path"), OFFICIAL_GROUP_BODIES,
                         ids=[n.removeprefix("FirewallPolicy") for _, n, _ in OFFICIAL_GROUP_BODIES])
def test_foreign_rules_survive_a_read_and_a_re_put(reference: ReferenceData, version: str, name: str,
                                                   path: tuple[str, ...]) -> None:
    """Every field of a rule amlfw does not own is PUT back as read, including fields the model does not know
    (sourceGeoLocations, httpHeadersToInsert): carrying a foreign collection through must never widen it."""
    raw = _official(reference, version, name, path)
    for c in raw["properties"]["ruleCollections"]:
        for r in c["rules"]:
            assert _canonical(rule_to_arm(rule_from_arm(r))) == _canonical(r), r["name"]


def test_foreign_collection_is_carried_through_and_never_removed(reference: ReferenceData) -> None:
    t, d = public()
    theirs = _official(reference, "2026-03-01", "FirewallPolicyRuleCollectionGroupGet.json",
                       ("responses", "200", "body"))["properties"]["ruleCollections"][0]
    assert not is_owned_collection(theirs["name"])
    body = as_azure_returns_it(group_to_arm(d.group), t)
    body["properties"]["ruleCollections"].insert(0, copy.deepcopy(theirs))
    p = make_plan(t, d, observed_policy(t, body))
    assert_no_drift(p)  # a foreign collection is not drift
    assert p.foreign_collections == (theirs["name"],)
    # once something of ours changes, the PUT body carries their collection unchanged
    body["properties"]["ruleCollections"][1]["rules"].pop()
    p = make_plan(t, d, observed_policy(t, body))
    assert p.group_action == "update"
    assert [c.action for c in p.collections] == ["change"]
    assert p.body is not None
    put = group_to_arm(p.body)["properties"]["ruleCollections"]
    (kept,) = [c for c in put if c["name"] == theirs["name"]]
    assert [_canonical(r) for r in kept["rules"]] == [_canonical(r) for r in theirs["rules"]]
    assert (kept["priority"], kept["action"]) == (theirs["priority"], theirs["action"])
    assert {c["name"] for c in put} == {c.name for c in d.group.rule_collections} | {theirs["name"]}


def test_owned_rule_with_fields_amlfw_does_not_set_is_drift() -> None:
    t, d = public()
    body = group_to_arm(d.group)
    rule = body["properties"]["ruleCollections"][0]["rules"][0]
    rule["sourceGeoLocations"] = ["US"]
    assert isinstance(rule_from_arm(rule), OpaqueRule)
    p = make_plan(t, d, observed_policy(t, body))
    (cc,) = p.collections
    (change,) = cc.rules
    assert (change.action, change.rule, change.rule_type) == ("change", rule["name"], "NetworkRule")
    assert change.fields == (FieldChange("unmanagedFields", ("sourceGeoLocations",), ()),)
    assert change.entries  # the owned rule still names what it serves
    assert p.body == d.group  # the re-PUT drops the field


def _foreign_group(name: str, priority: int) -> ObservedGroup:
    return ObservedGroup(group_from_arm({"name": name, "properties": {"priority": priority, "ruleCollections": []}}))


def test_foreign_group_with_our_priority_is_a_plan_error() -> None:
    t, d = public()
    p = make_plan(t, d, observed_policy(t, group_to_arm(d.group),
                                        foreign=(_foreign_group("DefaultNetworkRuleCollectionGroup", 300),)))
    assert [e.code for e in p.errors] == ["foreign-group-priority"]
    assert not p.applyable
    assert "DefaultNetworkRuleCollectionGroup" in p.errors[0].message
    p = make_plan(t, d, observed_policy(t, group_to_arm(d.group), foreign=(_foreign_group("theirs", 200),)))
    assert p.errors == ()
    assert [(g.name, g.priority) for g in p.foreign_groups] == [("theirs", 200)]


def test_group_with_our_name_holding_only_foreign_collections_is_not_ours() -> None:
    t, d = public()
    body = {"name": d.group.name, "properties": {"priority": 300, "ruleCollections": [
        {"ruleCollectionType": "FirewallPolicyFilterRuleCollection", "name": "team-rules", "priority": 100,
         "action": {"type": "Allow"}, "rules": []}]}}
    p = make_plan(t, d, observed_policy(t, body))
    assert "foreign-group-name" in [e.code for e in p.errors]
    assert not p.applyable


def test_foreign_collection_on_our_priority_is_an_error() -> None:
    t, d = public()
    body = group_to_arm(d.group)
    mine = body["properties"]["ruleCollections"][0]
    body["properties"]["ruleCollections"].append(
        {"ruleCollectionType": "FirewallPolicyFilterRuleCollection", "name": "team-rules",
         "priority": mine["priority"], "action": {"type": "Allow"}, "rules": []})
    p = make_plan(t, d, observed_policy(t, body))
    assert [e.code for e in p.errors] == ["foreign-collection-priority"]


# ------------------------------------------------------------------------------------------ pre-flight


def test_dns_proxy_off_with_a_445_fqdn_rule_blocks() -> None:
    t, d = public()
    assert d.requirements.dns_proxy
    p = make_plan(t, d, observed_policy(t, None, dns_proxy=False))
    (err,) = p.errors
    assert err.code == "dns-proxy-disabled"
    assert err.blocking
    assert not p.applyable
    assert "--enable-dns-proxy true" in err.message
    no_smb = replace(d, requirements=replace(d.requirements, dns_proxy=False))
    assert make_plan(t, no_smb, observed_policy(t, None, dns_proxy=False)).errors == ()


def test_premium_requirements() -> None:
    t, d = next((t, d) for t, d in example_pairs() if d.requirements.premium)
    p = make_plan(t, d, observed_policy(t, None, tier="Standard", tls_inspection=False))
    assert {e.code for e in p.errors} >= {"premium-required", "tls-inspection-missing"}
    assert make_plan(t, d, observed_policy(t, None, tier="Premium", tls_inspection=True)).applyable


@pytest.mark.parametrize(("observed", "code"), [
    ({"exists": False, "resource_group_exists": False}, "resource-group-not-found"),
    ({"exists": False}, "policy-not-found"),
    ({"network_provider_state": "NotRegistered"}, "provider-not-registered"),
    ({"missing_ip_groups": ("/subscriptions/x/ipGroups/gone",)}, "ip-group-not-found"),
    ({"group_count": 50}, "group-count-limit"),
])
def test_preflight_errors(observed: dict[str, Any], code: str) -> None:
    t, d = public()
    p = make_plan(t, d, observed_policy(t, None, **observed))
    assert code in {e.code for e in p.errors}
    assert not p.applyable


def test_size_limit_uses_the_measure() -> None:
    t, d = public()
    small = replace(t, limits=LimitSettings(max_group_bytes=1024))
    p = make_plan(small, d, observed_policy(t, None), measure=lambda g: len(json.dumps(group_to_arm(g))))
    assert [e.code for e in p.errors] == ["group-size-limit"]


def test_failed_state_is_repaired_and_busy_is_a_notice() -> None:
    t, d = public()
    body = as_azure_returns_it(group_to_arm(d.group), t)
    body["properties"]["provisioningState"] = "Failed"
    p = make_plan(t, d, observed_policy(t, body))
    assert p.group_action == "repair"
    assert p.body == d.group
    assert [n.code for n in p.notices] == ["group-failed"]
    p = make_plan(t, d, observed_policy(t, group_to_arm(d.group), provisioning_state="Updating"))
    assert (p.group_action, [n.code for n in p.notices]) == ("none", ["policy-busy"])


# ------------------------------------------------------------------------------------------ routes


def test_routes() -> None:
    t, d = public()
    assert d.routes
    body = group_to_arm(d.group)
    same = tuple(replace(r, address_prefix=r.address_prefix.lower(), next_hop_type="internet") for r in d.routes)
    assert_no_drift(make_plan(t, d, observed_policy(t, body, routes=same, route_table_exists=True)))

    theirs = Route("default-to-firewall", "0.0.0.0/0", "VirtualAppliance", "10.0.0.4")
    stale = Route(f"{t.route_prefix}Old", "AzureCloud", "Internet")
    p = make_plan(t, d, observed_policy(t, body, routes=(*d.routes[1:], theirs, stale), route_table_exists=True))
    assert [(r.action, r.route) for r in p.routes] == [("add", d.routes[0].name), ("remove", stale.name)]
    assert p.foreign_routes == ("default-to-firewall",)
    assert p.drift
    assert p.group_action == "none"


def test_foreign_route_for_the_same_prefix() -> None:
    t, d = public()
    body = group_to_arm(d.group)
    first = d.routes[0]
    same_hop = Route("theirs", first.address_prefix, "Internet")
    p = make_plan(t, d, observed_policy(t, body, routes=(same_hop, *d.routes[1:]), route_table_exists=True))
    assert [n.code for n in p.notices] == ["route-already-present"]
    assert p.routes == ()
    other_hop = Route("theirs", first.address_prefix, "VirtualAppliance", "10.0.0.4")
    p = make_plan(t, d, observed_policy(t, body, routes=(other_hop, *d.routes[1:]), route_table_exists=True))
    assert [e.code for e in p.errors] == ["foreign-route-clash"]
    p = make_plan(t, d, observed_policy(t, body, routes=None, route_table_exists=False))
    assert [e.code for e in p.errors] == ["route-table-not-found"]


def test_collection_change_is_a_value() -> None:
    """Plans are frozen values: equal inputs give equal plans, and changes hash."""
    t, d = public()
    a = make_plan(t, d, observed_policy(t, None))
    b = make_plan(t, d, observed_policy(t, None))
    assert a == b
    assert len({*a.collections, *b.collections}) == len(a.collections)
    assert all(isinstance(c, CollectionChange) for c in a.collections)
