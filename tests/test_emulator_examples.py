"""Replay the official REST examples through the real SDK and compare what the emulator answers with them.

Ignored in every comparison: ``id`` and ``etag`` values (the examples' ids are partly wrong, their etags use
two formats) and the value of ``size``. Fields the emulator adds that an example leaves out are allowed only
if they are read-only fields Azure is known to return (``type``, ``etag``, ``size``, ``resourceGuid``).
Known defects of the examples are repaired or noted where they matter.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import requests
from azure.identity import DefaultAzureCredential
from azure.mgmt.network import NetworkManagementClient

from tests.emulator import Emulator
from tests.emulator.examples import EXAMPLE_POLICY, EXAMPLE_SUB, fix_ip_group_ids, ip_group_body
from tests.emulator.pytest_plugin import *  # noqa: F403 - the emulator fixtures
from tests.emulator.reference import ReferenceData, load_json

REFERENCE = ReferenceData.at()
VALUE_IGNORED = frozenset({"id", "etag", "size"})
ALLOWED_EXTRA = frozenset({"type", "etag", "size", "resourceGuid"})
SENDABLE_VERSIONS = frozenset({"2026-03-01", "2026-01-01"})
READ_ONLY_PROPERTIES = frozenset(
    {"provisioningState", "size", "ruleCollectionGroups", "firewalls", "childPolicies", "afcManaged", "resourceGuid"}
)


def assert_matches(actual: Any, expected: Any, where: str = "$") -> None:
    if isinstance(expected, dict):
        assert isinstance(actual, dict), where
        for key, value in expected.items():
            assert key in actual, f"{where}.{key} missing"
            if key not in VALUE_IGNORED:
                assert_matches(actual[key], value, f"{where}.{key}")
        extra = set(actual) - set(expected)
        assert extra <= ALLOWED_EXTRA, f"{where}: unexpected fields {sorted(extra)}"
    elif isinstance(expected, list):
        assert isinstance(actual, list), where
        assert len(actual) == len(expected), f"{where}: {len(actual)} items, expected {len(expected)}"
        for index, (got, want) in enumerate(zip(actual, expected, strict=True)):
            assert_matches(got, want, f"{where}[{index}]")
    else:
        assert actual == expected, f"{where}: {actual!r} != {expected!r}"


def writable(resource: dict[str, Any]) -> dict[str, Any]:
    """A resource as returned, reduced to what a client would PUT (read-only fields removed)."""
    body = {key: value for key, value in resource.items() if key not in ("id", "type", "etag")}
    if "properties" in body:
        properties = {key: value for key, value in body["properties"].items() if key not in READ_ONLY_PROPERTIES}
        if "routes" in properties:
            properties["routes"] = [writable(route) for route in properties["routes"]]
        body["properties"] = properties
    return body


def api_version_kwargs(example: dict[str, Any]) -> dict[str, str]:
    """Send the example's own api-version when the emulator (like the 33.x SDK) supports it."""
    version = example["parameters"]["api-version"]
    return {"api_version": version} if version in SENDABLE_VERSIONS else {}


def seed_policy(emulator: Emulator, sub: str) -> None:
    emulator.add_resource_group(sub, "rg1", "westus")
    policy = REFERENCE.example("2026-03-01", "FirewallPolicyPut")["parameters"]["parameters"]
    emulator.put_policy(sub, "rg1", EXAMPLE_POLICY, policy)
    for name in ("ipGroups1", "ipGroups2"):
        emulator.put_ip_group(sub, "rg1", name, ip_group_body())


RCG_PUT_EXAMPLES = [
    ("2026-03-01", "FirewallPolicyRuleCollectionGroupPut"),
    ("2026-01-01", "FirewallPolicyNatRuleCollectionGroupPut"),
    ("2026-03-01", "FirewallPolicyRuleCollectionGroupWithWebCategoriesPut"),
    ("2025-07-01", "FirewallPolicyRuleCollectionGroupWithIpGroupsPut"),
    ("2025-09-01", "FirewallPolicyRuleCollectionGroupWithHttpHeadersToInsert"),
]


@pytest.mark.parametrize(("version", "name"), RCG_PUT_EXAMPLES)
def test_rule_collection_group_put_examples(
    emulator: Emulator, network_client: Callable[..., NetworkManagementClient], version: str, name: str
) -> None:
    raw = REFERENCE.example(version, name)
    sub = raw["parameters"]["subscriptionId"]
    example = fix_ip_group_ids(raw, sub, "rg1")
    params = example["parameters"]
    seed_policy(emulator, sub)
    # The 201 bodies carry the policy's name and id (a known defect); the 200 body is the group as Azure shows it.
    expected = example["responses"]["200"]["body"]
    with network_client(sub) as net:
        operations = net.firewall_policy_rule_collection_groups
        created = operations.begin_create_or_update(
            "rg1",
            EXAMPLE_POLICY,
            params["ruleCollectionGroupName"],
            params["parameters"],
            **api_version_kwargs(example),
        ).result()
        assert_matches(created.as_dict(), expected)
        fetched = operations.get("rg1", EXAMPLE_POLICY, params["ruleCollectionGroupName"])
        assert_matches(fetched.as_dict(), expected)
        updated = operations.begin_create_or_update(
            "rg1", EXAMPLE_POLICY, params["ruleCollectionGroupName"], params["parameters"]
        ).result()
        assert_matches(updated.as_dict(), expected)
    puts = [r.status for r in emulator.requests() if r.method == "PUT"]
    assert puts == [201, 200]


RCG_GET_EXAMPLES = [
    ("2026-03-01", "FirewallPolicyRuleCollectionGroupGet"),
    ("2026-01-01", "FirewallPolicyNatRuleCollectionGroupGet"),
    ("2026-03-01", "FirewallPolicyRuleCollectionGroupWithIpGroupsGet"),  # its id says /ruleGroups/: ids are ignored
    ("2025-07-01", "FirewallPolicyRuleCollectionGroupWithWebCategoriesGet"),
]


@pytest.mark.parametrize(("version", "name"), RCG_GET_EXAMPLES)
def test_rule_collection_group_get_examples(
    emulator: Emulator, network_client: Callable[..., NetworkManagementClient], version: str, name: str
) -> None:
    raw = REFERENCE.example(version, name)
    sub = raw["parameters"]["subscriptionId"]
    example = fix_ip_group_ids(raw, sub, "rg1")
    seed_policy(emulator, sub)
    expected = example["responses"]["200"]["body"]
    group = example["parameters"]["ruleCollectionGroupName"]
    with network_client(sub) as net:
        operations = net.firewall_policy_rule_collection_groups
        operations.begin_create_or_update("rg1", EXAMPLE_POLICY, group, writable(expected)).result()
        assert_matches(operations.get("rg1", EXAMPLE_POLICY, group, **api_version_kwargs(example)).as_dict(), expected)


RCG_LIST_EXAMPLES = [
    ("2026-01-01", "FirewallPolicyRuleCollectionGroupList"),
    ("2026-01-01", "FirewallPolicyRuleCollectionGroupWithIpGroupsList"),
    ("2026-03-01", "FirewallPolicyRuleCollectionGroupWithWebCategoriesList"),
]


@pytest.mark.parametrize(("version", "name"), RCG_LIST_EXAMPLES)
def test_rule_collection_group_list_examples(
    emulator: Emulator, network_client: Callable[..., NetworkManagementClient], version: str, name: str
) -> None:
    raw = REFERENCE.example(version, name)
    sub = raw["parameters"]["subscriptionId"]
    example = fix_ip_group_ids(raw, sub, "rg1")
    seed_policy(emulator, sub)
    expected = example["responses"]["200"]["body"]["value"]
    for item in expected:
        emulator.put_rule_collection_group(sub, "rg1", EXAMPLE_POLICY, item["name"], writable(item))
    with network_client(sub) as net:
        listed = net.firewall_policy_rule_collection_groups.list("rg1", EXAMPLE_POLICY, **api_version_kwargs(example))
        assert_matches([group.as_dict() for group in listed], expected)


def _small_group(priority: int) -> dict[str, Any]:
    return {"properties": {"priority": priority, "ruleCollections": []}}


def test_firewall_policy_put_example(
    emulator: Emulator, network_client: Callable[..., NetworkManagementClient]
) -> None:
    example = REFERENCE.example("2026-03-01", "FirewallPolicyPut")
    params = example["parameters"]
    emulator.add_resource_group(params["subscriptionId"], "rg1", "westus")
    with network_client(params["subscriptionId"]) as net:
        first = net.firewall_policies.begin_create_or_update(
            "rg1", EXAMPLE_POLICY, params["parameters"], afc_managed_sync=params["afcManagedSync"]
        ).result()
        assert first.as_dict()["properties"]["ruleCollectionGroups"] == []
        # The example's answer lists two existing groups: create them, then PUT the policy again.
        for index, group in enumerate(("ruleCollectionGroup1", "ruleCollectionGroup2")):
            emulator.put_rule_collection_group(
                params["subscriptionId"], "rg1", EXAMPLE_POLICY, group, _small_group(100 + index)
            )
        again = net.firewall_policies.begin_create_or_update(
            "rg1", EXAMPLE_POLICY, params["parameters"], afc_managed_sync=params["afcManagedSync"]
        ).result()
    assert_matches(again.as_dict(), example["responses"]["200"]["body"])
    assert [r.status for r in emulator.requests() if r.method == "PUT"] == [201, 200]


def test_firewall_policy_get_example(
    emulator: Emulator, network_client: Callable[..., NetworkManagementClient]
) -> None:
    example = REFERENCE.example("2026-03-01", "FirewallPolicyGet")
    sub = example["parameters"]["subscriptionId"]
    expected = example["responses"]["200"]["body"]
    emulator.add_resource_group(sub, "rg1", "westus")
    with network_client(sub) as net:
        net.firewall_policies.begin_create_or_update(
            "rg1", EXAMPLE_POLICY, writable(expected), afc_managed_sync=True
        ).result()
        emulator.put_rule_collection_group(sub, "rg1", EXAMPLE_POLICY, "ruleCollectionGroup1", _small_group(100))
        assert_matches(net.firewall_policies.get("rg1", EXAMPLE_POLICY).as_dict(), expected)


def test_firewall_policy_list_by_resource_group_example(
    emulator: Emulator, network_client: Callable[..., NetworkManagementClient]
) -> None:
    example = REFERENCE.example("2026-07-01", "FirewallPolicyListByResourceGroup")  # a 2026-07-01 gap-filler
    sub = example["parameters"]["subscriptionId"]
    expected = example["responses"]["200"]["body"]["value"]
    emulator.add_resource_group(sub, "rg1", "westus")
    with network_client(sub) as net:
        for item in expected:
            net.firewall_policies.begin_create_or_update(
                "rg1", item["name"], writable(item), afc_managed_sync=True
            ).result()
            emulator.put_rule_collection_group(sub, "rg1", item["name"], "ruleCollectionGroup1", _small_group(100))
        assert_matches([p.as_dict() for p in net.firewall_policies.list("rg1")], expected)


def test_rule_collection_group_delete_example(
    emulator: Emulator, network_client: Callable[..., NetworkManagementClient]
) -> None:
    """200/202 + Location/204: 202 (with Location and Azure-AsyncOperation) when it exists, 204 when it does not."""
    example = REFERENCE.example("2026-07-01", "FirewallPolicyRuleCollectionGroupDelete")
    assert set(example["responses"]) == {"200", "202", "204"}
    emulator.seed_examples()
    with network_client() as net:
        operations = net.firewall_policy_rule_collection_groups
        assert operations.begin_delete("rg1", EXAMPLE_POLICY, "ruleCollectionGroup1").result() is None
        assert operations.begin_delete("rg1", EXAMPLE_POLICY, "ruleCollectionGroup1").result() is None
    assert [r.status for r in emulator.requests() if r.method == "DELETE"] == [202, 204]
    assert emulator.get_rule_collection_group(EXAMPLE_SUB, "rg1", EXAMPLE_POLICY, "ruleCollectionGroup1") is None


def test_route_table_create_with_route_example(
    emulator: Emulator, network_client: Callable[..., NetworkManagementClient]
) -> None:
    example = REFERENCE.example("2026-03-01", "RouteTableCreateWithRoute")
    params = example["parameters"]
    emulator.add_resource_group(params["subscriptionId"], "rg1", "westus")
    with network_client(params["subscriptionId"]) as net:
        created = net.route_tables.begin_create_or_update(
            "rg1", params["routeTableName"], params["parameters"]
        ).result()
        fetched = net.route_tables.get("rg1", params["routeTableName"])
    # The example's 201 body omits disableBgpRoutePropagation although the request set it; its 200 body has it.
    assert_matches(created.as_dict(), example["responses"]["200"]["body"])
    assert_matches(fetched.as_dict(), example["responses"]["200"]["body"])


def test_route_table_create_example(emulator: Emulator, network_client: Callable[..., NetworkManagementClient]) -> None:
    example = REFERENCE.example("2026-01-01", "RouteTableCreate")
    params = example["parameters"]
    emulator.add_resource_group(params["subscriptionId"], "rg1", "westus")
    with network_client(params["subscriptionId"]) as net:
        created = net.route_tables.begin_create_or_update(
            "rg1", params["routeTableName"], params["parameters"], api_version="2026-01-01"
        ).result()
    expected = copy.deepcopy(example["responses"]["201"]["body"])
    # Known inconsistency: this example answers disableBgpRoutePropagation=true to a PUT that did not set it,
    # while RouteTableListAll shows a table without the field. The emulator echoes what was sent (nothing here).
    assert expected["properties"].pop("disableBgpRoutePropagation") is True
    got = created.as_dict()
    assert "disableBgpRoutePropagation" not in got["properties"]
    assert_matches(got, expected)


@pytest.mark.parametrize(
    ("version", "name", "scope"),
    [
        ("2026-01-01", "RouteTableGet", "get"),
        ("2026-01-01", "RouteTableList", "rg"),
        ("2026-03-01", "RouteTableListAll", "subscription"),
    ],
)
def test_route_table_read_examples(
    emulator: Emulator, network_client: Callable[..., NetworkManagementClient], version: str, name: str, scope: str
) -> None:
    example = REFERENCE.example(version, name)
    sub = example["parameters"]["subscriptionId"]
    body = example["responses"]["200"]["body"]
    tables = [body] if scope == "get" else body["value"]
    for table in tables:
        rg = table["id"].split("/")[4]
        emulator.put_route_table(sub, rg, table["name"], writable(table))
    with network_client(sub) as net:
        if scope == "get":
            assert_matches(net.route_tables.get("rg1", body["name"], api_version=version).as_dict(), body)
        elif scope == "rg":
            assert_matches([t.as_dict() for t in net.route_tables.list("rg1", api_version=version)], body["value"])
        else:
            assert_matches([t.as_dict() for t in net.route_tables.list_all()], body["value"])


def test_service_tags_list_example(emulator: Emulator, network_client: Callable[..., NetworkManagementClient]) -> None:
    example = REFERENCE.example("2026-01-01", "ServiceTagsList")
    expected = example["responses"]["200"]["body"]
    with network_client(example["parameters"]["subscriptionId"]) as net:
        result = net.service_tags.list(example["parameters"]["location"], api_version="2026-01-01").as_dict()
    # The example's nextLink names api-version 2020-06-01 (a known defect); the API does not page, so none is sent.
    assert set(result) == set(expected) - {"nextLink"}
    for key in ("name", "type", "cloud"):
        assert result[key] == expected[key]
    assert result["id"] == expected["id"]
    assert isinstance(result["changeNumber"], str)
    by_name = {value["name"]: value for value in result["values"]}
    for want in expected["values"]:
        got = by_name[want["name"]]
        assert set(got) == set(want)
        assert set(got["properties"]) == set(want["properties"])
        assert isinstance(got["properties"]["changeNumber"], str)
        assert got["properties"]["region"] == want["properties"]["region"]
        assert got["properties"]["systemService"] == want["properties"]["systemService"]


def test_azureml_outbound_dependencies_example(emulator: Emulator, credential: DefaultAzureCredential) -> None:
    params = load_json(REFERENCE.path("azureml", "outboundNetworkDependenciesEndpoints.get.json"))["parameters"]
    emulator.seed_workspace_dependencies(params["subscriptionId"], params["resourceGroupName"], params["workspaceName"])
    url = (
        f"{emulator.base_url}/subscriptions/{params['subscriptionId']}/resourceGroups/{params['resourceGroupName']}"
        f"/providers/Microsoft.MachineLearningServices/workspaces/{params['workspaceName']}"
        f"/outboundNetworkDependenciesEndpoints?api-version={params['api-version']}"
    )
    token = credential.get_token("https://management.azure.com/.default").token
    with requests.Session() as session:
        response = session.get(url, headers={"Authorization": f"Bearer {token}"}, verify=emulator.ca_bundle)
    assert response.status_code == 200
    assert response.json() == REFERENCE.azureml_dependencies()
