"""The compiler: catalogue entries + a target -> the rules, routes, requirements and warnings Azure accepts.

Most cases use a small in-memory catalogue (one entry per case), so each row of a table tests one rule of the
compiler; the last section checks the shipped catalogue and the example configurations.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.arm import group_to_arm
from reconciler.catalogue import CatalogueStore
from reconciler.compile import compile_target, safe_name
from reconciler.config import load_config
from reconciler.errors import ConfigError
from reconciler.model import (
    CLOUDS,
    ApplicationProtocol,
    ApplicationRule,
    Catalogue,
    DesiredTarget,
    Endpoint,
    Fallback,
    FeatureInfo,
    NetworkRule,
    PortSpec,
    Provenance,
    RuleCollection,
)

AZURE_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,78}[A-Za-z0-9_])?$")
SUB = "00000000-0000-0000-0000-000000000001"
STORAGE = "mlwssa"
SRC = "10.0.0.0/24"


def ep(entry_id: str, kind: str, value: str, ports: Sequence[str] = ("TCP:443",), *,
       features: Iterable[str] = ("f",), clouds: Iterable[str] = CLOUDS, direction: str = "outbound",
       apply_as: str = "firewall", fallback: str | None = None) -> Endpoint:
    specs = tuple(PortSpec(*p.split(":", 1)) for p in ports)
    return Endpoint(
        id=entry_id, kind=kind, value=value, direction=direction, ports=specs,  # type: ignore[arg-type]
        clouds=frozenset(clouds), features=frozenset(features), purpose=f"purpose of {entry_id}",
        provenance=Provenance(section="test"), apply_as=apply_as,  # type: ignore[arg-type]
        fallback=Fallback("service_tag", fallback) if fallback else None,
    )


def make_catalogue(real: Catalogue, *entries: Endpoint) -> Catalogue:
    """A test catalogue: these entries, features baseline/f/g/h, and the shipped region tables."""
    return Catalogue(
        version="test-1", title="test", source=(), corrections=(), well_known_ports=(),
        features=(FeatureInfo("baseline", "always"), FeatureInfo("f", "f"), FeatureInfo("g", "g"),
                  FeatureInfo("h", "h", implies=("g",))),
        entries=tuple(entries), regions=real.regions,
    )


def target_doc(*, cloud: str = "AzureCloud", region: str = "westus2", features: Sequence[str] = ("f",),
               firewall: dict[str, Any] | None = None, route_table: dict[str, Any] | None = None,
               workspaces: list[dict[str, Any]] | None = None, storage: str | None = STORAGE) -> dict[str, Any]:
    ws: dict[str, Any] = {"name": "mlws", "region": region, "source_addresses": [SRC], "features": list(features)}
    if storage:
        ws["storage_account"] = storage
    doc: dict[str, Any] = {
        "cloud": cloud, "subscription_id": SUB, "firewall_policy": {"resource_group": "rg", "name": "fw"},
        "rule_collection_group": {"name": "azureml-egress", "priority": 300},
        "workspaces": workspaces if workspaces is not None else [ws],
    }
    if firewall:
        doc["firewall"] = firewall
    if route_table:
        doc["route_table"] = route_table
    return doc


def compile_doc(tmp_path: Path, catalogue: Catalogue, doc: dict[str, Any]) -> DesiredTarget:
    path = tmp_path / "amlfw.yaml"
    doc = {"catalogue": catalogue.version, **doc}  # pinned, so the only warnings are the ones under test
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    config = load_config(path, lambda _version: catalogue)
    (target,) = config.targets
    return compile_target(target, catalogue)


def compile_entries(tmp_path: Path, real: Catalogue, *entries: Endpoint, **doc: Any) -> DesiredTarget:
    return compile_doc(tmp_path, make_catalogue(real, *entries), target_doc(**doc))


def all_rules(d: DesiredTarget) -> list[tuple[RuleCollection, NetworkRule | ApplicationRule]]:
    out = []
    for c in d.group.rule_collections:
        for r in c.rules:
            assert isinstance(r, NetworkRule | ApplicationRule)
            out.append((c, r))
    return out


def net_rules(d: DesiredTarget) -> list[NetworkRule]:
    return [r for _, r in all_rules(d) if isinstance(r, NetworkRule)]


def app_rules(d: DesiredTarget) -> list[ApplicationRule]:
    return [r for _, r in all_rules(d) if isinstance(r, ApplicationRule)]


def origins(d: DesiredTarget) -> dict[str, tuple[str, ...]]:
    return {o.rule: o.entry_ids for o in d.origins}


def warning_codes(d: DesiredTarget) -> set[tuple[str, str | None]]:
    return {(w.code, w.entry_id) for w in d.warnings}


# ------------------------------------------------------------------------------------------ service tags

TAG_CASES = [
    ("Storage.{region}", "AzureCloud", "westus2", "Storage.WestUS2"),
    ("AzureKeyVault.{region}", "AzureCloud", "westus2", "AzureKeyVault.WestUS2"),
    ("AzureContainerRegistry.{region}", "AzureCloud", "eastus2", "AzureContainerRegistry.EastUS2"),
    ("AzureCloud.{region}", "AzureCloud", "westus2", "AzureCloud.westus2"),
    ("AzureCloud.{region}", "AzureCloud", "West US 2", "AzureCloud.westus2"),
    ("Storage.{region}", "AzureCloud", "West Europe", "Storage.WestEurope"),
    ("Storage.{region}", "AzureUSGovernment", "usgovvirginia", "Storage.USGovVirginia"),
    ("Storage.{region}", "AzureChinaCloud", "chinaeast2", "Storage.ChinaEast2"),
    ("AzureActiveDirectory", "AzureCloud", "westus2", "AzureActiveDirectory"),
]


@pytest.mark.parametrize(("value", "cloud", "region", "expected"), TAG_CASES)
def test_service_tag_becomes_network_rule_in_azure_casing(
    tmp_path: Path, catalogue: Catalogue, value: str, cloud: str, region: str, expected: str
) -> None:
    d = compile_entries(tmp_path, catalogue, ep("t", "service_tag", value, ["TCP:443"]), cloud=cloud, region=region)
    (rule,) = net_rules(d)
    assert rule.destination_addresses == {expected}
    assert (rule.ip_protocols, rule.destination_ports, rule.destination_fqdns) == ({"TCP"}, {"443"}, frozenset())
    assert rule.source_addresses == {SRC}
    assert app_rules(d) == []
    # the wire body keeps Azure's casing exactly
    (coll,) = group_to_arm(d.group)["properties"]["ruleCollections"]
    assert coll["rules"][0]["destinationAddresses"] == [expected]
    assert not d.requirements.dns_proxy


def test_service_tag_ports_and_protocols(tmp_path: Path, catalogue: Catalogue) -> None:
    d = compile_entries(tmp_path, catalogue,
                        ep("t", "service_tag", "AzureCloud.{region}", ["TCP:9000", "UDP:1194", "TCP:443"]))
    by_proto = {next(iter(r.ip_protocols)): r for r in net_rules(d)}
    assert by_proto["TCP"].destination_ports == {"443", "9000"}
    assert by_proto["UDP"].destination_ports == {"1194"}
    assert {r.name for r in net_rules(d)} == {"tag-AzureCloud.westus2-tcp", "tag-AzureCloud.westus2-udp"}


# ------------------------------------------------------------------------------------------------ FQDNs

WEB_CASES = [
    ("fqdn", "example.com", ["TCP:443"], {("Https", 443)}),
    ("fqdn", "example.com", ["TCP:80", "TCP:443"], {("Http", 80), ("Https", 443)}),
    ("fqdn", "example.com", ["Http:80", "Https:443"], {("Http", 80), ("Https", 443)}),
    ("fqdn", "Example.COM", ["https:443"], {("Https", 443)}),
    ("fqdn", "example.com", ["Https:8443"], {("Https", 8443)}),
    ("wildcard_fqdn", "*.example.com", ["Https:443"], {("Https", 443)}),
    ("wildcard_fqdn", "*.example.com", ["TCP:80"], {("Http", 80)}),
]


@pytest.mark.parametrize(("kind", "value", "ports", "protocols"), WEB_CASES)
def test_web_ports_become_application_rules(
    tmp_path: Path, catalogue: Catalogue, kind: str, value: str, ports: list[str], protocols: set[tuple[str, int]]
) -> None:
    d = compile_entries(tmp_path, catalogue, ep("h", kind, value, ports))
    (rule,) = app_rules(d)
    assert rule.target_fqdns == {value.lower()}
    assert {(p.protocol_type, p.port) for p in rule.protocols} == protocols
    assert not rule.target_urls
    assert not rule.terminate_tls
    assert not rule.destination_addresses
    assert net_rules(d) == []
    assert d.warnings == ()
    assert not d.requirements.dns_proxy


def test_smb_to_storage_is_a_network_fqdn_rule_needing_dns_proxy(tmp_path: Path, catalogue: Catalogue) -> None:
    d = compile_entries(tmp_path, catalogue,
                        ep("s", "fqdn", "{storage}.file.core.windows.net", ["TCP:445", "Https:443"]))
    (net,) = net_rules(d)
    assert net.destination_fqdns == {f"{STORAGE}.file.core.windows.net"}
    assert (net.ip_protocols, net.destination_ports, net.destination_addresses) == ({"TCP"}, {"445"}, frozenset())
    (app,) = app_rules(d)
    assert app.target_fqdns == {f"{STORAGE}.file.core.windows.net"}
    assert d.requirements.dns_proxy
    rows = {(r.port, r.enforced_as) for r in d.allow_list}
    assert rows == {("445", "network-rule (FQDN, needs DNS proxy)"), ("443", "application-rule")}


def test_udp_fqdn_is_a_network_rule(tmp_path: Path, catalogue: Catalogue) -> None:
    d = compile_entries(tmp_path, catalogue, ep("n", "fqdn", "ntp.ubuntu.com", ["UDP:123"]))
    (rule,) = net_rules(d)
    assert (rule.ip_protocols, rule.destination_fqdns, rule.destination_ports) == (
        {"UDP"}, {"ntp.ubuntu.com"}, {"123"})
    assert d.requirements.dns_proxy


def test_wildcard_on_other_ports_falls_back_to_its_service_tag(tmp_path: Path, catalogue: Catalogue) -> None:
    d = compile_entries(
        tmp_path, catalogue,
        ep("tag", "service_tag", "AzureMachineLearning", ["TCP:443"]),
        ep("ci", "wildcard_fqdn", "*.instances.azureml.ms", ["TCP:443"]),
        ep("ci.pe", "wildcard_fqdn", "*.instances.azureml.ms", ["TCP:8787", "TCP:18881"],
           fallback="AzureMachineLearning"),
    )
    (net,) = net_rules(d)
    assert net.destination_addresses == {"AzureMachineLearning"}
    assert net.destination_ports == {"443", "8787", "18881"}
    assert origins(d)[net.name] == ("ci.pe", "tag")
    (app,) = app_rules(d)
    assert app.target_fqdns == {"*.instances.azureml.ms"}
    assert {str(p) for p in app.protocols} == {"Https:443"}
    assert warning_codes(d) == {("wildcard-fallback", "ci.pe")}
    (w,) = d.warnings
    assert "AzureMachineLearning" in w.message
    assert "TCP:8787" in w.message
    assert not d.requirements.dns_proxy  # a wildcard never becomes a network FQDN rule


def test_regional_fallback_tag(tmp_path: Path, catalogue: Catalogue) -> None:
    d = compile_entries(tmp_path, catalogue, ep("w", "wildcard_fqdn", "*.batch.azure.com", ["TCP:29876"],
                                                 fallback="BatchNodeManagement.{region}"))
    (net,) = net_rules(d)
    assert net.destination_addresses == {"BatchNodeManagement.WestUS2"}


def test_wildcard_without_fallback_is_not_allowed_and_says_so(tmp_path: Path, catalogue: Catalogue) -> None:
    d = compile_entries(tmp_path, catalogue, ep("w", "wildcard_fqdn", "*.example.com", ["TCP:8787"]))
    assert all_rules(d) == []
    assert warning_codes(d) == {("not-expressible", "w")}
    assert [r.enforced_as for r in d.allow_list] == ["not enforced"]


# ------------------------------------------------------------------------------------------------ URLs

URL = "raw.githubusercontent.com/microsoft/tools/master/server/*"


def test_url_path_on_premium_with_tls_inspection(tmp_path: Path, catalogue: Catalogue) -> None:
    d = compile_entries(tmp_path, catalogue, ep("u", "url_path", URL, ["Https:443"]),
                        firewall={"tier": "Premium", "tls_inspection": True})
    (rule,) = app_rules(d)
    assert rule.target_urls == {URL}
    assert rule.terminate_tls
    assert not rule.target_fqdns
    assert (d.requirements.premium, d.requirements.tls_inspection) == (True, True)
    # terminateTLS works only when the clients trust the firewall's CA: said, once (issue 13)
    assert [(w.code, w.entry_id) for w in d.warnings] == [("tls-inspection-client-trust", "u")]
    body = group_to_arm(d.group)["properties"]["ruleCollections"][0]["rules"][0]
    assert body["targetUrls"] == [URL]
    assert body["terminateTLS"] is True
    assert "targetFqdns" not in body


def test_url_path_widens_only_on_the_ports_the_source_lists(tmp_path: Path, catalogue: Catalogue) -> None:
    entry = replace(ep("u", "url_path", URL, ["Http:80", "Https:443"]), widen_ports=(PortSpec("Https", "443"),))
    d = compile_entries(tmp_path, catalogue, entry)
    (rule,) = app_rules(d)
    assert rule.target_fqdns == {"raw.githubusercontent.com"}
    assert {str(p) for p in rule.protocols} == {"Https:443"}
    (w,) = d.warnings
    assert w.code == "url-widened" and "on Https:443 instead (not on Http:80)" in w.message
    assert {(r.port, r.enforced_as) for r in d.allow_list} == {
        ("443", "application-rule (widened to host)"), ("80", "not enforced")}
    premium = compile_entries(tmp_path, catalogue, entry, firewall={"tier": "Premium", "tls_inspection": True})
    assert {str(p) for r in app_rules(premium) for p in r.protocols} == {"Http:80", "Https:443"}


@pytest.mark.parametrize("firewall", [None, {"tier": "Standard"}, {"tier": "Premium", "tls_inspection": False}])
def test_url_path_without_tls_inspection_widens_to_host(
    tmp_path: Path, catalogue: Catalogue, firewall: dict[str, Any] | None
) -> None:
    d = compile_entries(tmp_path, catalogue, ep("u", "url_path", URL, ["Http:80", "Https:443"]),
                        ep("host", "fqdn", "raw.githubusercontent.com", ["Https:443"]), firewall=firewall)
    (rule,) = app_rules(d)  # the widened URL merges with the plain host entry
    assert rule.target_fqdns == {"raw.githubusercontent.com"}
    assert not rule.target_urls
    assert not rule.terminate_tls
    assert {str(p) for p in rule.protocols} == {"Http:80", "Https:443"}
    assert origins(d)[rule.name] == ("host", "u")
    assert warning_codes(d) == {("url-widened", "u")}
    assert not d.requirements.premium


# ------------------------------------------------------------------------------------------------ names


def _assert_names_valid(d: DesiredTarget) -> None:
    for c in d.group.rule_collections:
        assert AZURE_NAME.match(c.name), c.name
        names = [r.name for r in c.rules]
        assert len(names) == len({n.lower() for n in names}), f"duplicate rule names in {c.name}"
        for n in names:
            assert AZURE_NAME.match(n), n
            assert 1 <= len(n) <= 80
    for r in d.routes:
        assert AZURE_NAME.match(r.name), r.name


def test_names_are_valid_unique_and_distinct_when_long_or_colliding(tmp_path: Path, catalogue: Catalogue) -> None:
    long_a = ".".join(["a" * 40, "b" * 40, "c" * 40, "example.com"])
    long_b = ".".join(["a" * 40, "b" * 40, "c" * 40, "example.org"])
    d = compile_entries(
        tmp_path, catalogue,
        ep("long-a", "fqdn", long_a, ["Https:443"]),
        ep("long-b", "fqdn", long_b, ["Https:443"]),
        ep("star", "wildcard_fqdn", "*.x.example.com", ["Https:443"]),
        ep("literal-star", "fqdn", "star.x.example.com", ["Https:443"]),  # `*` sanitises to "star": a collision
        ep("tag", "service_tag", "Storage.{region}", ["TCP:443", "UDP:443"]),
        ep("smb", "fqdn", long_a, ["TCP:445"]),
    )
    _assert_names_valid(d)
    assert len(app_rules(d)) == 4
    assert len({r.name for r in app_rules(d)}) == 4
    assert len(net_rules(d)) == 3


@pytest.mark.parametrize("raw", ["*", "-x-", "a" * 200, "*.*.example.com", "ü.example.com", ".", "_x_"])
def test_safe_name(raw: str) -> None:
    name = safe_name(raw)
    assert AZURE_NAME.match(name), name
    assert safe_name(raw) == name


@pytest.mark.parametrize("allow_by", ["fqdns", "both"])
def test_names_are_stable_and_independent_of_other_entries(tmp_path: Path, catalogue_store: CatalogueStore,
                                                            examples_dir: Path, allow_by: str) -> None:
    """A destination keeps its rule name whatever else is selected: the plan never sees spurious renames.

    (Under allow_by: fqdns and both. Under service_tags a host rule is meant to disappear when a selected
    feature brings a tag that covers it; test_service_tags_drop_covered_hosts checks that.)"""
    cat = catalogue_store.get()
    doc = yaml.safe_load((examples_dir / "public.yaml").read_text(encoding="utf-8"))
    doc["allow_by"] = allow_by
    small_doc = {**doc, "workspaces": [{**doc["workspaces"][0], "features": ["compute"]}]}
    big = compile_doc(tmp_path, cat, doc)
    small = compile_doc(tmp_path, cat, small_doc)
    assert compile_doc(tmp_path, cat, doc) == big
    big_names = {(c.name, r.name): r for c, r in all_rules(big)}
    for c, r in all_rules(small):
        assert (c.name, r.name) in big_names
        other = big_names[(c.name, r.name)]
        if isinstance(r, NetworkRule):
            assert isinstance(other, NetworkRule)
            assert (r.destination_addresses | r.destination_fqdns) == (
                other.destination_addresses | other.destination_fqdns)
        else:
            assert isinstance(other, ApplicationRule)
            assert (r.target_fqdns | r.target_urls) == (other.target_fqdns | other.target_urls)


# ------------------------------------------------------------------------------------------------ merging


def test_duplicates_merge_and_keep_every_entry_id(tmp_path: Path, catalogue: Catalogue) -> None:
    d = compile_entries(
        tmp_path, catalogue,
        ep("b.mcr", "fqdn", "mcr.microsoft.com", ["Https:443"], features=["g"]),
        ep("a.mcr", "fqdn", "MCR.microsoft.com", ["TCP:443", "TCP:80"]),
        ep("z.mcr", "fqdn", "mcr.microsoft.com", ["Https:443"], features=["g"], clouds=["AzureUSGovernment"]),
        ep("tag1", "service_tag", "Storage.{region}", ["TCP:443"]),
        ep("tag2", "service_tag", "Storage.{region}", ["TCP:445", "TCP:443"], features=["g"]),
        features=["f", "g"],
    )
    (app,) = app_rules(d)
    assert app.target_fqdns == {"mcr.microsoft.com"}
    assert {str(p) for p in app.protocols} == {"Http:80", "Https:443"}
    assert origins(d)[app.name] == ("a.mcr", "b.mcr")  # z.mcr is not for AzureCloud
    assert app.description == "amlfw: a.mcr, b.mcr"
    (net,) = net_rules(d)
    assert net.destination_ports == {"443", "445"}
    assert origins(d)[net.name] == ("tag1", "tag2")


def test_baseline_is_always_in_and_unselected_features_are_out(tmp_path: Path, catalogue: Catalogue) -> None:
    d = compile_entries(tmp_path, catalogue, ep("base", "fqdn", "base.example.com", features=["baseline"]),
                        ep("f", "fqdn", "f.example.com"), ep("g", "fqdn", "g.example.com", features=["g"]),
                        ep("h", "fqdn", "h.example.com", features=["h"]), features=["h"])
    assert {next(iter(r.target_fqdns)) for r in app_rules(d)} == {"base.example.com", "g.example.com",
                                                                   "h.example.com"}  # h implies g


def test_workspaces_get_their_own_collections(tmp_path: Path, catalogue: Catalogue) -> None:
    ws = [
        {"name": "zeta", "region": "westus2", "source_addresses": ["10.1.0.0/24"], "features": ["f"]},
        {"name": "alpha", "region": "eastus", "source_ip_groups": [
            f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network/ipGroups/ipg-alpha"],
         "features": ["f", "g"]},
        {"name": "pinned", "region": "westus2", "source_addresses": ["10.2.0.0/24"], "features": ["g"],
         "priority": 5000},
    ]
    cat = make_catalogue(catalogue, ep("tag", "service_tag", "Storage.{region}"),
                         ep("host", "fqdn", "example.com", features=["g"]))
    d = compile_doc(tmp_path, cat, target_doc(workspaces=ws))
    prios = {c.name: c.priority for c in d.group.rule_collections}
    # ordered by name: alpha first; pinned keeps its own priority; empty collections are left out
    assert prios == {"ws-alpha-net": 1000, "ws-alpha-app": 1001, "ws-pinned-app": 5001, "ws-zeta-net": 1020}
    assert [c.priority for c in d.group.rule_collections] == sorted(prios.values())
    alpha = d.group.collection("ws-alpha-net")
    assert alpha is not None
    (rule,) = alpha.rules
    assert rule.destination_addresses == {"Storage.EastUS"}  # type: ignore[union-attr]
    assert rule.source_ip_groups
    assert not rule.source_addresses
    assert d.requirements.source_ip_groups == {ws[1]["source_ip_groups"][0]}
    assert {o.workspace for o in d.origins} == {"alpha", "pinned", "zeta"}


def test_priority_collisions_are_config_errors(tmp_path: Path, catalogue: Catalogue) -> None:
    ws = [{"name": n, "region": "westus2", "source_addresses": [SRC], "features": ["f"], "priority": p}
          for n, p in (("one", 2000), ("two", 2001))]
    cat = make_catalogue(catalogue, ep("tag", "service_tag", "Storage.{region}"), ep("h", "fqdn", "example.com"))
    with pytest.raises(ConfigError) as info:
        compile_doc(tmp_path, cat, target_doc(workspaces=ws))
    assert info.value.key == "workspaces[1].priority"
    assert "2001 is already used by ws-one-app" in info.value.reason
    top = [{"name": "one", "region": "westus2", "source_addresses": [SRC], "features": ["f"], "priority": 65000}]
    with pytest.raises(ConfigError, match="65001 would exceed 65000"):
        compile_doc(tmp_path, cat, target_doc(workspaces=top))


def test_storage_placeholder_needs_storage_account(tmp_path: Path, catalogue: Catalogue) -> None:
    entries = (ep("blob", "fqdn", "{storage}.blob.core.windows.net", features=["g"]), ep("x", "fqdn", "example.com"))
    d = compile_entries(tmp_path, catalogue, *entries, storage=None)  # not selected: no storage needed
    assert len(app_rules(d)) == 1
    with pytest.raises(ConfigError) as info:
        compile_entries(tmp_path, catalogue, *entries, features=["g"], storage=None)
    assert info.value.key == "workspaces[0].storage_account"
    assert "required by feature g" in info.value.reason
    assert "blob" in info.value.reason


# ------------------------------------------------------------------------------------------------ inbound

ROUTE_ENTRIES = (
    ep("udr.aml", "service_tag", "AzureMachineLearning", ["TCP:44224"], direction="inbound", apply_as="route"),
    ep("udr.batch", "service_tag", "BatchNodeManagement.{region}", ["TCP:29876-29877"], direction="inbound",
       apply_as="route"),
    ep("nsg.aml", "service_tag", "AzureMachineLearning", ["TCP:44224"], direction="inbound", apply_as="nsg"),
)


def test_inbound_udr_routes_go_to_the_internet(tmp_path: Path, catalogue: Catalogue) -> None:
    ws = [{"name": n, "region": r, "source_addresses": [SRC], "features": ["f"]}
          for n, r in (("ws-a", "westus2"), ("ws-b", "westus2"), ("ws-c", "eastus"))]
    d = compile_doc(tmp_path, make_catalogue(catalogue, *ROUTE_ENTRIES),
                    target_doc(workspaces=ws, route_table={"resource_group": "rg", "name": "rt"}))
    assert [(r.name, r.address_prefix, r.next_hop_type, r.next_hop_ip_address) for r in d.routes] == [
        ("amlfw-AzureMachineLearning", "AzureMachineLearning", "Internet", None),
        ("amlfw-BatchNodeManagement.EastUS", "BatchNodeManagement.EastUS", "Internet", None),
        ("amlfw-BatchNodeManagement.WestUS2", "BatchNodeManagement.WestUS2", "Internet", None),
    ]
    assert all_rules(d) == []  # inbound entries are never firewall rules
    assert {w.code for w in d.warnings} == {"nsg-only"}
    assert {r.enforced_as for r in d.allow_list} == {"route", "nsg"}
    assert {r.direction for r in d.allow_list} == {"inbound"}


@pytest.mark.parametrize("prefix", ["aml_", "aml--fw.", "x" * 40])
def test_route_names_keep_the_owning_prefix_verbatim(tmp_path: Path, catalogue: Catalogue, prefix: str) -> None:
    """Routes are owned by name prefix: a route whose name lost its prefix would never be managed again."""
    d = compile_entries(tmp_path, catalogue, *ROUTE_ENTRIES[:2],
                        route_table={"resource_group": "rg", "name": "rt", "route_prefix": prefix})
    assert [r.address_prefix for r in d.routes] == ["AzureMachineLearning", "BatchNodeManagement.WestUS2"]
    for r in d.routes:
        assert r.name.startswith(prefix)
        assert AZURE_NAME.match(r.name)
        assert len(r.name) <= 80


def test_route_prefix_and_missing_route_table(tmp_path: Path, catalogue: Catalogue) -> None:
    cat_entries = ROUTE_ENTRIES[:2]
    d = compile_entries(tmp_path, catalogue, *cat_entries,
                        route_table={"resource_group": "rg", "name": "rt", "route_prefix": "aml_"})
    assert [r.name for r in d.routes] == ["aml_AzureMachineLearning", "aml_BatchNodeManagement.WestUS2"]
    d = compile_entries(tmp_path, catalogue, *cat_entries)
    assert d.routes == ()
    assert warning_codes(d) == {("route-table-missing", "udr.aml"), ("route-table-missing", "udr.batch")}


# ------------------------------------------------------------------------------------ shipped catalogue


def _compile_example(tmp_path: Path, store: CatalogueStore, path: Path) -> list[DesiredTarget]:
    config = load_config(path, store.get)
    return [compile_target(t, store.get(t.catalogue_version)) for t in config.targets]


def _destinations(d: DesiredTarget) -> set[str]:
    out = {r.address_prefix for r in d.routes}
    for r in net_rules(d):
        out |= r.destination_addresses | r.destination_fqdns
    for a in app_rules(d):
        out |= a.target_fqdns | a.target_urls
    return out


def test_public_example_uses_azure_regional_casing(tmp_path: Path, catalogue_store: CatalogueStore,
                                                   examples_dir: Path) -> None:
    (d,) = _compile_example(tmp_path, catalogue_store, examples_dir / "public.yaml")
    tags = {a for r in net_rules(d) for a in r.destination_addresses}
    assert {"Storage.WestUS2", "AzureKeyVault.WestUS2", "AzureCloud.westus2"} <= tags
    assert d.requirements.dns_proxy  # SMB to the workspace's file share
    assert any("mlwsprodsa.file.core.windows.net" in r.destination_fqdns and "445" in r.destination_ports
               for r in net_rules(d))
    _assert_names_valid(d)


@pytest.mark.parametrize("example", ["public", "usgov", "china", "fleet"])
def test_every_tag_is_spelt_as_azure_spells_it(tmp_path: Path, catalogue_store: CatalogueStore,
                                               examples_dir: Path, example: str) -> None:
    """Service tags in rules and routes exist, with this exact spelling, in the cloud's service-tag list."""
    names = catalogue_store.service_tag_names()
    config = load_config(examples_dir / f"{example}.yaml", catalogue_store.get)
    for t, d in zip(config.targets, _compile_example(tmp_path, catalogue_store, examples_dir / f"{example}.yaml"),
                    strict=True):
        _assert_names_valid(d)
        if t.cloud not in names:
            continue  # no tag list for China
        tags = {a for r in net_rules(d) for a in r.destination_addresses} | {r.address_prefix for r in d.routes}
        unknown = sorted(tags - names[t.cloud])
        assert not unknown, f"{t.name}: not Azure service tags in {t.cloud}: {unknown}"


def test_china_has_no_front_door(tmp_path: Path, catalogue_store: CatalogueStore, examples_dir: Path) -> None:
    (d,) = _compile_example(tmp_path, catalogue_store, examples_dir / "china.yaml")
    assert all_rules(d)
    assert not [x for x in _destinations(d) if "frontdoor" in x.lower()]
    assert not [r.destination for r in d.allow_list if "frontdoor" in r.destination.lower()]


@pytest.mark.parametrize("with_route_table", [True, False], ids=["route-table", "no-route-table"])
@pytest.mark.parametrize("example", ["public", "usgov", "china"])
def test_all_features_cover_every_entry_of_the_cloud(
    tmp_path: Path, catalogue_store: CatalogueStore, examples_dir: Path, example: str, with_route_table: bool
) -> None:
    doc = yaml.safe_load((examples_dir / f"{example}.yaml").read_text(encoding="utf-8"))
    assert doc["workspaces"][0]["features"] == ["all"]
    if not with_route_table:
        doc.pop("route_table", None)
    doc["allow_by"] = "both"  # the union of the two strategies: every entry of the cloud
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    (d,) = _compile_example(tmp_path, catalogue_store, path)
    cat = catalogue_store.get(d.catalogue_version)
    wanted = {e.id for e in cat.entries if doc["cloud"] in e.clouds}
    seen = {i for o in d.origins for i in o.entry_ids} | {r.entry_id for r in d.allow_list} | {
        w.entry_id for w in d.warnings if w.entry_id}
    assert wanted - seen == set()
    assert seen - wanted == set()  # and nothing from another cloud


def test_compile_is_a_pure_function_of_its_inputs(tmp_path: Path, catalogue_store: CatalogueStore,
                                                  examples_dir: Path) -> None:
    first = _compile_example(tmp_path, catalogue_store, examples_dir / "fleet.yaml")
    again = _compile_example(tmp_path, catalogue_store, examples_dir / "fleet.yaml")
    assert first == again
    config = load_config(examples_dir / "fleet.yaml", catalogue_store.get)
    cat = catalogue_store.get(config.targets[0].catalogue_version)
    reversed_cat = replace(cat, entries=tuple(reversed(cat.entries)))
    assert [compile_target(t, reversed_cat) for t in config.targets] == first


def test_application_protocol_ordering() -> None:
    """Protocols sort by port then type, so ARM bodies are stable."""
    assert sorted([ApplicationProtocol("https", 443), ApplicationProtocol("Http", 80)]) == [
        ApplicationProtocol("Http", 80), ApplicationProtocol("Https", 443)]


def test_an_unpinned_catalogue_is_a_warning(tmp_path: Path, catalogue: Catalogue) -> None:
    doc = target_doc(features=["compute"])
    path = tmp_path / "amlfw.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    (target,) = load_config(path, lambda _version: catalogue).targets
    codes = [w.code for w in compile_target(target, catalogue).warnings]
    assert codes.count("catalogue-unpinned") == 1


def test_tags_microsoft_does_not_mark_usable_are_flagged(catalogue_store: CatalogueStore, examples_dir: Path) -> None:
    config = load_config(examples_dir / "public.yaml", catalogue_store.get)
    (target,) = config.targets
    desired = compile_target(target, catalogue_store.get(target.catalogue_version))
    flagged = {(w.code, w.entry_id) for w in desired.warnings if "usable" in w.code}
    assert flagged == {("tag-not-firewall-usable", "aks.net.azurecloud-region"),
                       ("tag-not-route-usable", "inbound.udr.batch-node-management-region")}
    cat = catalogue_store.get(target.catalogue_version)
    assert cat.tag_unusable("AzureCloud", "BatchNodeManagement.WestUS2", route=True)
    assert not cat.tag_unusable("AzureCloud", "BatchNodeManagement", route=True)
    assert not cat.tag_unusable("AzureCloud", "Storage.WestUS2", route=False)
    assert not cat.tag_unusable("AzureChinaCloud", "AzureCloud.chinaeast2", route=False)  # no data: no claim
