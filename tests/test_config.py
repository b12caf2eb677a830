"""`reconciler.config`: every mistake names the file, the key and the reason; valid files normalise.

In-process and table-driven; `test_cli_offline.py` drives the same mistakes through the real command line.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.catalogue import CatalogueStore
from reconciler.config import Config, load_config
from reconciler.errors import ConfigError

SUB = "00000000-0000-0000-0000-000000000001"
BASE: dict[str, Any] = {
    "cloud": "AzureCloud",
    "subscription_id": SUB,
    "firewall_policy": {"resource_group": "rg-hub", "name": "fwpol-hub"},
    "rule_collection_group": {"name": "azureml-egress", "priority": 300},
    "workspaces": [
        {"name": "mlws", "region": "westus2", "storage_account": "mlwssa", "source_addresses": ["10.0.0.0/24"],
         "features": ["compute"]},
    ],
}


def _write(tmp_path: Path, doc: object, name: str = "amlfw.yaml") -> Path:
    path = tmp_path / name
    path.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def _load(store: CatalogueStore, path: Path) -> Config:
    return load_config(path, store.get)


def _mutated(fn: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    doc = copy.deepcopy(BASE)
    fn(doc)
    return doc


def _ws(**changes: Any) -> Callable[[dict[str, Any]], None]:
    def fn(doc: dict[str, Any]) -> None:
        for k, v in changes.items():
            if v is None:
                doc["workspaces"][0].pop(k, None)
            else:
                doc["workspaces"][0][k] = v
    return fn


def _top(**changes: Any) -> Callable[[dict[str, Any]], None]:
    def fn(doc: dict[str, Any]) -> None:
        for k, v in changes.items():
            if v is None:
                doc.pop(k, None)
            else:
                doc[k] = v
    return fn


def _second_ws(name: str) -> Callable[[dict[str, Any]], None]:
    def fn(doc: dict[str, Any]) -> None:
        doc["workspaces"].append({**doc["workspaces"][0], "name": name})
    return fn


# (id, mutation, key, part of the reason)
BAD_TARGETS: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    ("unknown-cloud", _top(cloud="AzureMars"), "cloud", "unknown cloud 'AzureMars'"),
    ("missing-cloud", _top(cloud=None), "cloud", "is required"),
    ("unknown-region", _ws(region="marsnorth"), "workspaces[0].region", "unknown region 'marsnorth'"),
    ("region-of-other-cloud", _ws(region="chinaeast2"), "workspaces[0].region", "for cloud AzureCloud"),
    ("unknown-feature", _ws(features=["compute", "teleport"]), "workspaces[0].features[1]",
     "unknown feature 'teleport'"),
    ("baseline-is-not-selectable", _ws(features=["baseline"]), "workspaces[0].features[0]", "unknown feature"),
    ("empty-features", _ws(features=[]), "workspaces[0].features", "non-empty list"),
    ("cidr-host-bits", _ws(source_addresses=["10.0.0.1/24"]), "workspaces[0].source_addresses[0]",
     "malformed address or CIDR '10.0.0.1/24'"),
    ("cidr-garbage", _ws(source_addresses=["10.0.0.0/24", "10.0.0.300/24"]), "workspaces[0].source_addresses[1]",
     "malformed"),
    ("cidr-ipv6", _ws(source_addresses=["2001:db8::/64"]), "workspaces[0].source_addresses[0]", "IPv6"),
    ("no-sources", _ws(source_addresses=None), "workspaces[0].source_addresses", "source_ip_groups"),
    ("bad-ip-group", _ws(source_ip_groups=["ipg-1"]), "workspaces[0].source_ip_groups[0]", "invalid IP group id"),
    ("group-priority-low", _top(rule_collection_group={"name": "g", "priority": 99}),
     "rule_collection_group.priority", "outside 100-65000"),
    ("group-priority-high", _top(rule_collection_group={"name": "g", "priority": 65001}),
     "rule_collection_group.priority", "outside 100-65000"),
    ("group-priority-text", _top(rule_collection_group={"name": "g", "priority": "high"}),
     "rule_collection_group.priority", "expected an integer"),
    ("group-priority-bool", _top(rule_collection_group={"name": "g", "priority": True}),
     "rule_collection_group.priority", "expected an integer"),
    ("workspace-priority-low", _ws(priority=99), "workspaces[0].priority", "outside 100-65000"),
    ("workspace-priority-high", _ws(priority=65001), "workspaces[0].priority", "outside 100-65000"),
    ("unknown-top-key", _top(colour="red"), "colour", "unknown key"),
    ("unknown-workspace-key", _ws(colour="red"), "workspaces[0].colour", "unknown key"),
    ("unknown-nested-key", _top(firewall_policy={"resource_group": "rg", "name": "p", "location": "x"}),
     "firewall_policy.location", "unknown key"),
    ("duplicate-workspace", _second_ws("MLWS"), "workspaces[1].name", "duplicate workspace name 'MLWS'"),
    ("bad-subscription", _top(subscription_id="not-a-guid"), "subscription_id", "expected a GUID"),
    ("bad-group-name", _top(rule_collection_group={"name": "-bad-", "priority": 300}),
     "rule_collection_group.name", "invalid rule collection group name"),
    ("group-name-too-long", _top(rule_collection_group={"name": "g" * 81, "priority": 300}),
     "rule_collection_group.name", "1-80"),
    ("bad-policy-name", _top(firewall_policy={"resource_group": "rg", "name": "fw pol"}),
     "firewall_policy.name", "invalid firewall policy name"),
    ("missing-policy", _top(firewall_policy=None), "firewall_policy", "is required"),
    ("tls-needs-premium", _top(firewall={"tier": "Standard", "tls_inspection": True}), "firewall.tls_inspection",
     "Premium"),
    ("unknown-tier", _top(firewall={"tier": "Gold"}), "firewall.tier", "unknown tier"),
    ("http-endpoint", _top(arm_endpoint="http://localhost:8080"), "arm_endpoint", "https://"),
    ("custom-endpoint", _top(arm_endpoint="https://management.example.test"), "arm_endpoint",
     "set allow_custom_arm_endpoint: true"),
    ("endpoint-lookalike", _top(arm_endpoint="https://management.azure.com.evil.test"), "arm_endpoint",
     "would receive the bearer token"),
    ("endpoint-other-port", _top(arm_endpoint="https://management.azure.com:8443"), "arm_endpoint",
     "not AzureCloud's Resource Manager endpoint"),
    ("endpoint-other-cloud", _top(arm_endpoint="https://management.chinacloudapi.cn"), "arm_endpoint",
     "of AzureChinaCloud, but cloud is AzureCloud"),
    ("allow-custom-not-bool", _top(allow_custom_arm_endpoint="yes"), "allow_custom_arm_endpoint",
     "expected true or false"),
    ("bad-storage", _ws(storage_account="My_Storage"), "workspaces[0].storage_account", "invalid storage account"),
    ("bad-workspace-name", _ws(name="x"), "workspaces[0].name", "invalid workspace name"),
    ("no-workspaces", _top(workspaces=[]), "workspaces", "non-empty list"),
    ("workspace-not-mapping", _top(workspaces=["mlws"]), "workspaces[0]", "expected a mapping"),
    ("unknown-catalogue", _top(catalogue="azureml-1999.01"), "catalogue", "unknown catalogue version"),
    ("bad-credential", _top(credential={"kind": "password"}), "credential.kind", "unknown credential kind"),
    ("azure-out-of-range", _top(azure={"retry_total": 99}), "azure.retry_total", "outside"),
    ("bad-route-prefix", _top(route_table={"resource_group": "rg", "name": "rt", "route_prefix": "-x"}),
     "route_table.route_prefix", "invalid route name prefix"),
]


@pytest.mark.parametrize(("mutate", "key", "reason"), [c[1:] for c in BAD_TARGETS], ids=[c[0] for c in BAD_TARGETS])
def test_bad_target_names_file_key_and_reason(
    tmp_path: Path, catalogue_store: CatalogueStore, mutate: Callable[[dict[str, Any]], None], key: str, reason: str
) -> None:
    path = _write(tmp_path, _mutated(mutate))
    with pytest.raises(ConfigError) as info:
        _load(catalogue_store, path)
    err = info.value
    assert (err.file, err.key) == (str(path), key), str(err)
    assert reason in err.reason
    assert str(err) == f"{path}:{key}: {err.reason}"
    assert "\n" not in str(err)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        ("", "the file is empty"),
        ("- a\n- b\n", "expected a mapping at the top level, got a list"),
        ("cloud: [AzureCloud\n", "YAML syntax error at line 2"),
        ("cloud: AzureCloud\n  bad: indent\n", "YAML syntax error"),
        (b"cloud: \xff\xfe\n", "not UTF-8"),
        ("cloud: AzureCloud\nworkspaces: []\ncloud: AzureChinaCloud\n", "line 3, column 1: duplicate key 'cloud'"),
    ],
    ids=["empty", "list", "unclosed-flow", "bad-indent", "binary", "duplicate-key"],
)
def test_unparseable_file(tmp_path: Path, catalogue_store: CatalogueStore, content: str | bytes, reason: str) -> None:
    path = tmp_path / "amlfw.yaml"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        _load(catalogue_store, path)
    assert info.value.file == str(path)
    assert info.value.key == ""
    assert reason in info.value.reason


def test_unreadable_file(tmp_path: Path, catalogue_store: CatalogueStore) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        _load(catalogue_store, tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="is a directory"):
        _load(catalogue_store, tmp_path)


def test_yaml_anchors_and_merge_keys_work(tmp_path: Path, catalogue_store: CatalogueStore) -> None:
    """Merge keys may override what they merge; only a key written twice in one mapping is an error."""
    doc = {k: v for k, v in BASE.items() if k != "workspaces"}
    body = yaml.safe_dump(doc, sort_keys=False) + (
        "workspaces:\n"
        "  - &first {name: mlws-a, region: westus2, storage_account: mlwssa, source_addresses: [10.0.0.0/24],"
        " features: [compute]}\n"
        "  - <<: *first\n    name: mlws-b\n    features: [notebooks]\n"
    )
    config = _load(catalogue_store, _write(tmp_path, body))
    a, b = config.targets[0].workspaces
    assert (a.name, b.name) == ("mlws-a", "mlws-b")
    assert (b.region, b.storage_account, b.features) == ("westus2", "mlwssa", frozenset({"notebooks"}))


def test_valid_target_is_normalised(tmp_path: Path, catalogue_store: CatalogueStore) -> None:
    doc = _mutated(_ws(region="West US 2", features=["custom_images", "arc_inference"]))
    doc["catalogue"] = "azureml-2021.11"  # where custom_images implies microsoft_images
    doc["subscription_id"] = SUB.upper().replace("0", "A")
    doc["arm_endpoint"] = "https://management.example.test/"
    doc["allow_custom_arm_endpoint"] = True
    config = _load(catalogue_store, _write(tmp_path, doc))
    (t,) = config.targets
    (ws,) = t.workspaces
    assert ws.region == "westus2"
    # implied features are expanded transitively; baseline is never listed (it is always in)
    assert ws.features == {"custom_images", "microsoft_images", "arc_inference", "arc_training", "arc_extension"}
    assert t.subscription_id == t.subscription_id.lower()
    assert t.arm_endpoint == "https://management.example.test"
    assert t.name == f"{t.subscription_id}/rg-hub/fwpol-hub/azureml-egress"
    assert (t.tier, t.tls_inspection, t.route_table) == ("Standard", False, None)


@pytest.mark.parametrize(("cloud", "endpoint"), [
    ("AzureCloud", "https://management.azure.com/"), ("AzureCloud", "https://MANAGEMENT.azure.com:443"),
    ("AzureUSGovernment", "https://management.usgovcloudapi.net"), ("AzureChinaCloud", "https://management.chinacloudapi.cn"),
])
def test_known_arm_endpoint_needs_no_opt_in(tmp_path: Path, catalogue_store: CatalogueStore, cloud: str,
                                            endpoint: str) -> None:
    doc = _mutated(_ws())
    doc["cloud"] = cloud
    doc["arm_endpoint"] = endpoint
    doc["workspaces"][0]["region"] = {"AzureCloud": "westus2", "AzureUSGovernment": "usgovvirginia",
                                      "AzureChinaCloud": "chinaeast2"}[cloud]
    (t,) = _load(catalogue_store, _write(tmp_path, doc)).targets
    assert t.arm_endpoint == endpoint.rstrip("/")


def test_all_features(tmp_path: Path, catalogue_store: CatalogueStore) -> None:
    config = _load(catalogue_store, _write(tmp_path, _mutated(_ws(features=["all"]))))
    catalogue = catalogue_store.get()
    assert config.targets[0].workspaces[0].features == catalogue.feature_names - {"baseline"}


def test_examples_load(examples_dir: Path, catalogue_store: CatalogueStore) -> None:
    loaded = {p.stem: _load(catalogue_store, p) for p in sorted(examples_dir.glob("*.yaml"))}
    assert {"public", "usgov", "china", "fleet"} <= set(loaded)
    assert loaded["usgov"].targets[0].tier == "Premium"
    assert loaded["usgov"].targets[0].tls_inspection is True
    fleet = loaded["fleet"]
    assert [t.name for t in fleet.targets] == ["prod-westeurope", "prod-eastus", "gov-virginia"]
    # defaults are merged into every target
    assert {(t.group_name, t.group_priority) for t in fleet.targets} == {("azureml-egress", 300)}
    assert [t.key for t in fleet.targets] == ["targets[0]", "targets[1]", "targets[2]"]


# ------------------------------------------------------------------------------------------------ fleets


def _fleet(*targets: dict[str, Any], defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"defaults": defaults if defaults is not None else {
        "cloud": "AzureCloud", "subscription_id": SUB, "rule_collection_group": {"name": "azureml-egress",
                                                                                "priority": 300},
        "workspaces": BASE["workspaces"]}, "targets": list(targets)}


def _policy(name: str, rg: str = "rg-hub") -> dict[str, Any]:
    return {"firewall_policy": {"resource_group": rg, "name": name}}


BAD_FLEETS: list[tuple[str, dict[str, Any], str, str]] = [
    ("duplicate-group-name", _fleet({"name": "a", **_policy("fw")},
                                    {"name": "b", **_policy("FW"),
                                     "rule_collection_group": {"name": "AzureML-Egress", "priority": 400}}),
     "targets[1].rule_collection_group.name", "already owned by targets[0]"),
    ("duplicate-group-priority", _fleet({"name": "a", **_policy("fw")},
                                        {"name": "b", **_policy("fw"),
                                         "rule_collection_group": {"name": "other", "priority": 300}}),
     "targets[1].rule_collection_group.priority", "priority 300 on policy 'fw' is already used by targets[0]"),
    ("duplicate-target-name", _fleet({"name": "a", **_policy("fw1")}, {"name": "a", **_policy("fw2")}),
     "targets[1].name", "duplicate target name"),
    ("error-inside-a-target", _fleet({"name": "a", **_policy("fw1")}, {"name": "b", **_policy("fw2"), "cloud": "Mars"}),
     "targets[1].cloud", "unknown cloud"),
    ("shared-route-table", _fleet(
        {"name": "a", **_policy("fw"), "route_table": {"resource_group": "rg", "name": "rt"}},
        {"name": "b", **_policy("fw"), "rule_collection_group": {"name": "g2", "priority": 400},
         "route_table": {"resource_group": "RG", "name": "RT", "route_prefix": "amlfw-b-"}}),
     "targets[1].route_table.route_prefix", "already managed by targets[0] (prefix 'amlfw-')"),
    ("targets-not-a-list", {"targets": {"a": 1}}, "targets", "non-empty list"),
    ("targets-empty", {"targets": []}, "targets", "non-empty list"),
    ("key-beside-targets", {"targets": [{}], "cloud": "AzureCloud"}, "cloud", "unknown key beside 'targets'"),
    ("defaults-not-a-mapping", {"targets": [{}], "defaults": [1]}, "defaults", "expected a mapping"),
    ("target-not-a-mapping", {"targets": ["a"]}, "targets[0]", "expected a mapping"),
]


@pytest.mark.parametrize(("doc", "key", "reason"), [c[1:] for c in BAD_FLEETS], ids=[c[0] for c in BAD_FLEETS])
def test_bad_fleet(tmp_path: Path, catalogue_store: CatalogueStore, doc: dict[str, Any], key: str,
                   reason: str) -> None:
    path = _write(tmp_path, doc)
    with pytest.raises(ConfigError) as info:
        _load(catalogue_store, path)
    assert (info.value.file, info.value.key) == (str(path), key), str(info.value)
    assert reason in info.value.reason


def test_fleet_same_group_on_different_policies_is_fine(tmp_path: Path, catalogue_store: CatalogueStore) -> None:
    doc = _fleet({"name": "a", **_policy("fw")}, {"name": "b", **_policy("fw", rg="rg-other")},
                 {"name": "c", **_policy("fw"), "subscription_id": "00000000-0000-0000-0000-000000000002"})
    config = _load(catalogue_store, _write(tmp_path, doc))
    assert [t.name for t in config.targets] == ["a", "b", "c"]
    assert config.targets[2].policy.subscription_id.endswith("0002")


def test_fleet_targets_share_a_route_table_with_distinct_prefixes(tmp_path: Path,
                                                                   catalogue_store: CatalogueStore) -> None:
    """Workspaces split across two groups of one policy (the size-limit advice) can share the spoke's route table."""
    rt = {"resource_group": "rg", "name": "rt"}
    doc = _fleet({"name": "a", **_policy("fw"), "route_table": {**rt, "route_prefix": "amlfw-a-"}},
                 {"name": "b", **_policy("fw"), "rule_collection_group": {"name": "g2", "priority": 400},
                  "route_table": {**rt, "route_prefix": "amlfw-b-"}},
                 {"name": "c", **_policy("fw2"), "route_table": {**rt, "name": "rt-other"}})
    config = _load(catalogue_store, _write(tmp_path, doc))
    assert [t.route_prefix for t in config.targets] == ["amlfw-a-", "amlfw-b-", "amlfw-"]
