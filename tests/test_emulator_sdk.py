"""The real SDKs (azure-mgmt-network 33.x, azure-mgmt-resource 26, azure-identity) against the emulator."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import requests
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient

from tests.emulator import Emulator
from tests.emulator.pytest_plugin import *  # noqa: F403 - the emulator fixtures
from tests.emulator.rawarm import ArmHttp
from tests.emulator.samples import (
    LOCATION,
    POLICY,
    RG,
    SUB,
    application_rule,
    filter_collection,
    group_body,
    network_rule,
    policy_body,
    route_body,
)

NetworkFactory = Callable[..., NetworkManagementClient]
GROUP_PATH = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network/firewallPolicies/{POLICY}"


@pytest.fixture
def policy(emulator: Emulator) -> str:
    emulator.add_resource_group(SUB, RG, LOCATION)
    emulator.put_policy(SUB, RG, POLICY, policy_body())
    return POLICY


def test_groups_create_list_with_paging_update_delete(
    emulator: Emulator, network_client: NetworkFactory, policy: str
) -> None:
    with network_client(SUB) as net:
        groups = net.firewall_policy_rule_collection_groups
        for index in range(5):
            result = groups.begin_create_or_update(
                RG, policy, f"rcg-{index}", group_body(priority=200 + index)
            ).result()
            assert result.properties.provisioning_state == "Succeeded"
        emulator.clear_requests()
        names = [group.name for group in groups.list(RG, policy)]
        assert names == [f"rcg-{index}" for index in range(5)]
        pages = [r for r in emulator.requests() if r.path.endswith("/ruleCollectionGroups")]
        assert [r.query.get("$skipToken") for r in pages] == [None, "2", "4"]
        assert all(r.query["api-version"] == "2026-03-01" for r in pages)

        before = groups.get(RG, policy, "rcg-1")
        changed = group_body([filter_collection(rules=[network_rule(destinationPorts=["8787"])])], priority=201)
        after = groups.begin_create_or_update(RG, policy, "rcg-1", changed).result()
        assert after.etag != before.etag
        assert after.as_dict()["properties"]["ruleCollections"][0]["rules"][0]["destinationPorts"] == ["8787"]

        assert groups.begin_delete(RG, policy, "rcg-0").result() is None
        with pytest.raises(ResourceNotFoundError) as missing:
            groups.get(RG, policy, "rcg-0")
        assert missing.value.error is not None
        assert missing.value.error.code == "NotFound"
        assert len(list(groups.list(RG, policy))) == 4
        references = net.firewall_policies.get(RG, policy).as_dict()["properties"]["ruleCollectionGroups"]
        assert [ref["id"].rsplit("/", 1)[1] for ref in references] == ["rcg-1", "rcg-2", "rcg-3", "rcg-4"]
    writes = [(r.method, r.status) for r in emulator.requests() if r.is_write]
    assert writes == [("PUT", 200), ("DELETE", 202)]


def test_long_running_put_shows_updating_until_the_operation_ends(
    emulator: Emulator, network_client: NetworkFactory, arm_http: ArmHttp, policy: str
) -> None:
    emulator.set_operation_duration(0.3)
    with network_client(SUB) as net:
        poller = net.firewall_policy_rule_collection_groups.begin_create_or_update(RG, policy, "aml", group_body())
        group = emulator.get_rule_collection_group(SUB, RG, policy, "aml")
        assert group is not None
        assert group["properties"]["provisioningState"] == "Updating"
        assert emulator.get_policy(SUB, RG, policy)["properties"]["provisioningState"] == "Updating"  # type: ignore[index]
        first_etag = group["etag"]
        result = poller.result()
    assert result.properties.provisioning_state == "Succeeded"
    assert result.etag != first_etag
    assert emulator.get_policy(SUB, RG, policy)["properties"]["provisioningState"] == "Succeeded"  # type: ignore[index]
    polls = [r for r in emulator.requests() if "/operations/" in r.path]
    assert len(polls) >= 2  # InProgress at least once, then Succeeded
    put = next(r for r in emulator.requests() if r.method == "PUT")
    assert put.operation_ended is not None
    assert put.operation_ended - put.started == pytest.approx(0.3, abs=0.05)


def test_lro_wire_protocol(emulator: Emulator, arm_http: ArmHttp, policy: str) -> None:
    """201/200 + Azure-AsyncOperation + Retry-After on PUT; 202 + Location on DELETE; no resourceLocation."""
    emulator.set_operation_duration(0.2)
    created = arm_http.request("PUT", f"{GROUP_PATH}/ruleCollectionGroups/aml", body=group_body())
    assert created.status_code == 201
    assert created.json()["properties"]["provisioningState"] == "Updating"
    operation_url = created.headers["Azure-AsyncOperation"]
    assert "api-version=2026-03-01" in operation_url
    assert f"/subscriptions/{SUB}/providers/Microsoft.Network/locations/{LOCATION}/operations/" in operation_url
    assert created.headers["Retry-After"] == "0"
    assert "Location" not in created.headers
    assert arm_http.request("GET", operation_url).json() == {"status": "InProgress"}
    conflict = arm_http.request("PUT", f"{GROUP_PATH}/ruleCollectionGroups/aml", body=group_body())
    assert conflict.status_code == 409
    time.sleep(0.25)
    assert arm_http.request("GET", operation_url).json() == {"status": "Succeeded"}

    updated = arm_http.request("PUT", f"{GROUP_PATH}/ruleCollectionGroups/aml", body=group_body())
    assert updated.status_code == 200
    assert "Azure-AsyncOperation" in updated.headers
    time.sleep(0.25)

    deleted = arm_http.request("DELETE", f"{GROUP_PATH}/ruleCollectionGroups/aml")
    assert deleted.status_code == 202
    assert deleted.content == b""
    location = deleted.headers["Location"]
    assert arm_http.request("GET", location).status_code == 202
    status = arm_http.request("GET", deleted.headers["Azure-AsyncOperation"]).json()
    assert "resourceLocation" not in status
    time.sleep(0.25)
    assert arm_http.request("GET", location).status_code == 204
    assert arm_http.request("GET", deleted.headers["Azure-AsyncOperation"]).json() == {"status": "Succeeded"}
    assert arm_http.request("DELETE", f"{GROUP_PATH}/ruleCollectionGroups/aml").status_code == 204


def test_every_arm_response_carries_request_ids_and_rate_limit_headers(
    emulator: Emulator, arm_http: ArmHttp, policy: str
) -> None:
    ok = arm_http.request("GET", GROUP_PATH, headers={"x-ms-correlation-request-id": "corr-1"})
    missing = arm_http.request("GET", f"{GROUP_PATH}/ruleCollectionGroups/none")
    for response in (ok, missing):
        assert response.headers["x-ms-request-id"]
        assert response.headers["x-ms-ratelimit-remaining-subscription-reads"] == "11999"
    assert ok.headers["x-ms-correlation-request-id"] == "corr-1"
    assert ok.headers["ETag"] == ok.json()["etag"].removeprefix("W/")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "NotFound"
    logged = emulator.requests()
    assert [r.request_id for r in logged] == [ok.headers["x-ms-request-id"], missing.headers["x-ms-request-id"]]


def test_if_match_is_honoured(emulator: Emulator, network_client: NetworkFactory, policy: str) -> None:
    """The spec defines no If-Match for these PUTs and the SDK sends none; if a client sends one, it is checked."""
    emulator.put_rule_collection_group(SUB, RG, policy, "aml", group_body())
    with network_client(SUB, retry_total=0) as net:
        groups = net.firewall_policy_rule_collection_groups
        current = groups.get(RG, policy, "aml")
        with pytest.raises(HttpResponseError) as stale:
            groups.begin_create_or_update(RG, policy, "aml", group_body(), headers={"If-Match": '"stale"'})
        assert stale.value.status_code == 412
        assert stale.value.error is not None
        assert stale.value.error.code == "PreconditionFailed"
        groups.begin_create_or_update(RG, policy, "aml", group_body(), headers={"If-Match": current.etag}).result()


@pytest.mark.parametrize("emulator_options", [{"honor_if_match": False}])
def test_if_match_can_be_ignored_like_nrp_may_do(
    emulator: Emulator, network_client: NetworkFactory, policy: str
) -> None:
    """azure-firewall-facts.md section 3: NRP has ignored ETags; ``honor_if_match=False`` models that."""
    emulator.put_rule_collection_group(SUB, RG, policy, "aml", group_body())
    with network_client(SUB) as net:
        net.firewall_policy_rule_collection_groups.begin_create_or_update(
            RG, policy, "aml", group_body(), headers={"If-Match": '"stale"'}
        ).result()


def test_route_tables_and_routes(emulator: Emulator, network_client: NetworkFactory) -> None:
    emulator.add_resource_group(SUB, RG, LOCATION)
    with network_client(SUB) as net:
        table = net.route_tables.begin_create_or_update(RG, "udr-aml", {"location": LOCATION}).result()
        assert table.as_dict()["properties"]["routes"] == []
        for index, prefix in enumerate(["AzureMachineLearning", "BatchNodeManagement.WestUS2", "0.0.0.0/0"]):
            hop = ("VirtualAppliance", "10.0.1.4") if prefix == "0.0.0.0/0" else ("Internet", None)
            route = net.routes.begin_create_or_update(RG, "udr-aml", f"r{index}", route_body(prefix, *hop)).result()
            assert route.properties.provisioning_state == "Succeeded"
        assert [r.name for r in net.routes.list(RG, "udr-aml")] == ["r0", "r1", "r2"]
        inline = net.route_tables.get(RG, "udr-aml").as_dict()["properties"]["routes"]
        assert [r["properties"]["addressPrefix"] for r in inline] == [
            "AzureMachineLearning",
            "BatchNodeManagement.WestUS2",
            "0.0.0.0/0",
        ]
        assert inline[2]["properties"]["nextHopIpAddress"] == "10.0.1.4"
        net.routes.begin_delete(RG, "udr-aml", "r1").result()
        assert [r.name for r in net.routes.list(RG, "udr-aml")] == ["r0", "r2"]
        # A route table PUT replaces the inline set of routes.
        net.route_tables.begin_create_or_update(
            RG, "udr-aml", {"location": LOCATION, "properties": {"routes": [{"name": "only", **route_body()}]}}
        ).result()
        assert [r.name for r in net.routes.list(RG, "udr-aml")] == ["only"]


def test_resource_manager_preflight(
    emulator: Emulator, resource_client: Callable[..., ResourceManagementClient]
) -> None:
    emulator.add_resource_group(SUB, RG, LOCATION)
    emulator.register_provider(SUB, "Microsoft.MachineLearningServices", "NotRegistered")
    with resource_client(SUB) as resources:
        assert resources.resource_groups.check_existence(RG) is True
        assert resources.resource_groups.check_existence(RG.upper()) is True
        assert resources.resource_groups.check_existence("missing") is False
        assert resources.resource_groups.get(RG).location == LOCATION
        network = resources.providers.get("Microsoft.Network")
        assert network.registration_state == "Registered"
        assert (
            "2026-03-01"
            in next(t for t in network.resource_types if t.resource_type == "firewallPolicies").api_versions
        )
        assert resources.providers.get("Microsoft.MachineLearningServices").registration_state == "NotRegistered"
        with pytest.raises(ResourceNotFoundError):
            resources.resource_groups.get("missing")
    versions = {r.query["api-version"] for r in emulator.requests()}
    assert versions == {"2025-04-01"}


def test_paths_are_case_insensitive(emulator: Emulator, arm_http: ArmHttp, policy: str) -> None:
    emulator.put_rule_collection_group(SUB, RG, policy, "aml", group_body())
    lower = GROUP_PATH.lower().replace(POLICY.lower(), POLICY.upper()) + "/RULECOLLECTIONGROUPS/AML"
    response = arm_http.request("GET", lower)
    assert response.status_code == 200
    assert response.json()["name"] == "aml"


def test_tls_is_verified_against_the_emulator_ca(emulator: Emulator) -> None:
    with requests.Session() as session:
        session.trust_env = False  # ignore REQUESTS_CA_BUNDLE: use the default trust store
        with pytest.raises(requests.exceptions.SSLError):
            session.get(f"{emulator.base_url}/_admin/health", timeout=5)
        health = session.get(f"{emulator.base_url}/_admin/health", verify=emulator.ca_bundle, timeout=5)
    assert health.json() == {"ok": True}
    assert health.headers["x-ms-request-id"]


def test_authentication(emulator: Emulator, arm_http: ArmHttp, arm_env: dict[str, str], policy: str) -> None:
    anonymous = arm_http.request("GET", GROUP_PATH, authenticated=False)
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "AuthenticationFailed"
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer authorization_uri=")
    forged = arm_http.request("GET", GROUP_PATH, authenticated=False, headers={"Authorization": "Bearer forged"})
    assert forged.status_code == 401
    assert forged.json()["error"]["code"] == "InvalidAuthenticationToken"
    token_url = arm_env["IDENTITY_ENDPOINT"]
    wrong_secret = arm_http.session.get(
        token_url,
        params={"api-version": "2019-08-01", "resource": "https://management.azure.com"},
        headers={"X-IDENTITY-HEADER": "wrong"},
        verify=emulator.ca_bundle,
    )
    assert wrong_secret.status_code == 401


class _ForgedCredential:
    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("not-issued-by-the-emulator", int(time.time()) + 3600)


def test_sdk_with_an_unknown_token_gets_401(emulator: Emulator, arm_env: dict[str, str], policy: str) -> None:
    with (
        NetworkManagementClient(_ForgedCredential(), SUB, base_url=emulator.base_url) as net,
        pytest.raises(ClientAuthenticationError) as error,
    ):
        net.firewall_policies.get(RG, policy)
    assert error.value.error is not None
    assert error.value.error.code == "InvalidAuthenticationToken"


def test_api_versions(emulator: Emulator, network_client: NetworkFactory, arm_http: ArmHttp, policy: str) -> None:
    with network_client(SUB) as net:
        assert net.firewall_policies.get(RG, policy, api_version="2026-01-01").name == policy
        with pytest.raises(HttpResponseError) as old:
            net.firewall_policies.get(RG, policy, api_version="2025-07-01")
    assert old.value.status_code == 400
    assert old.value.error is not None
    assert old.value.error.code == "NoRegisteredProviderFound"
    assert "2026-03-01, 2026-01-01" in old.value.error.message
    missing = arm_http.request("GET", GROUP_PATH, api_version=None)
    assert missing.json()["error"]["code"] == "MissingApiVersionParameter"
    malformed = arm_http.request("GET", GROUP_PATH, api_version="latest")
    assert malformed.json()["error"]["code"] == "InvalidApiVersionParameter"


def test_not_found_shapes(emulator: Emulator, network_client: NetworkFactory, policy: str) -> None:
    with network_client(SUB) as net:
        with pytest.raises(ResourceNotFoundError) as no_group:
            net.firewall_policies.get("rg-missing", policy)
        assert no_group.value.error is not None
        assert no_group.value.error.code == "ResourceGroupNotFound"
        with pytest.raises(ResourceNotFoundError) as no_policy:
            net.firewall_policies.get(RG, "missing")
        assert no_policy.value.error is not None
        assert no_policy.value.error.code == "ResourceNotFound"
        with pytest.raises(ResourceNotFoundError) as no_parent:
            net.firewall_policy_rule_collection_groups.begin_create_or_update(RG, "missing", "aml", group_body())
        assert no_parent.value.error is not None
        assert no_parent.value.error.code == "ParentResourceNotFound"


def test_policy_fields(emulator: Emulator, network_client: NetworkFactory) -> None:
    emulator.add_resource_group(SUB, RG, LOCATION)
    with network_client(SUB) as net:
        base = net.firewall_policies.begin_create_or_update(RG, "base", {"location": LOCATION}).result().as_dict()
        assert base["properties"]["sku"] == {"tier": "Standard"}  # Azure's default tier when none is sent
        assert base["properties"]["ruleCollectionGroups"] == []
        assert base["properties"]["firewalls"] == []
        child_body = policy_body("Premium", tls_ca=True)
        child_body["properties"]["basePolicy"] = {"id": base["id"]}
        child = net.firewall_policies.begin_create_or_update(RG, "child", child_body).result().as_dict()
        assert child["properties"]["basePolicy"] == {"id": base["id"]}
        assert child["properties"]["transportSecurity"] == child_body["properties"]["transportSecurity"]
        assert child["properties"]["dnsSettings"] == {"enableProxy": True}
        assert net.firewall_policies.get(RG, "base").as_dict()["properties"]["childPolicies"] == [{"id": child["id"]}]
        assert [p.name for p in net.firewall_policies.list(RG)] == ["base", "child"]


def test_service_tags_through_the_sdk(emulator: Emulator, network_client: NetworkFactory) -> None:
    with network_client(SUB) as net:
        tags = net.service_tags.list(LOCATION)
    assert tags.cloud == "Public"
    assert tags.change_number == "376"
    names = {value.name for value in tags.values_property}
    assert {"AzureMachineLearning", "Storage.WestUS2", "AzureFrontDoor.FirstParty"} <= names
    assert "Keyvault.WestUS2" not in names


@pytest.mark.parametrize("emulator_options", [{"observed_defaults": True}])
def test_observed_defaults_option_fills_empty_rule_fields(
    emulator: Emulator, network_client: NetworkFactory, policy: str
) -> None:
    body = group_body([filter_collection(rules=[application_rule()])])
    with network_client(SUB) as net:
        net.firewall_policy_rule_collection_groups.begin_create_or_update(RG, policy, "aml", body).result()
        group = net.firewall_policy_rule_collection_groups.get(RG, policy, "aml").as_dict()
    rule = group["properties"]["ruleCollections"][0]["rules"][0]
    assert rule["terminateTLS"] is False
    assert rule["fqdnTags"] == rule["webCategories"] == rule["targetUrls"] == rule["sourceIpGroups"] == []
    assert rule["targetFqdns"] == ["*.api.azureml.ms"]


def test_absent_and_empty_lists_are_kept_apart(emulator: Emulator, policy: str) -> None:
    """As in the official examples: what was not sent stays absent, an empty list stays empty."""
    rule = network_rule(sourceIpGroups=[])
    stored = emulator.put_rule_collection_group(SUB, RG, policy, "aml", group_body([filter_collection(rules=[rule])]))
    got = stored["properties"]["ruleCollections"][0]["rules"][0]
    assert got["sourceIpGroups"] == []
    assert "destinationIpGroups" not in got


def test_many_clients_at_once(emulator: Emulator, network_client: NetworkFactory, policy: str) -> None:
    for index in range(4):
        emulator.put_rule_collection_group(SUB, RG, policy, f"rcg-{index}", group_body(priority=300 + index))

    def reader(_: int) -> int:
        with network_client(SUB) as net:
            return sum(len(list(net.firewall_policy_rule_collection_groups.list(RG, policy))) for _ in range(3))

    with ThreadPoolExecutor(max_workers=8) as pool:
        assert list(pool.map(reader, range(8))) == [12] * 8
    assert {r.status for r in emulator.requests()} == {200}
