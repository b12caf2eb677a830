"""Injected faults, seen through the real SDK the way Azure surfaces them.

azure-core retries 408/429/500/502/503/504, any response with ``Retry-After``, and connection errors by
itself (``retry_total`` 10, but only 3 status retries; the first retry waits 0 s, later ones back off
exponentially from 0.8 s). Tests that want the raw error build the client with ``retry_total=0``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ServiceResponseError
from azure.mgmt.network import NetworkManagementClient

from tests.emulator import Emulator
from tests.emulator.pytest_plugin import *  # noqa: F403 - the emulator fixtures
from tests.emulator.rawarm import ArmHttp
from tests.emulator.samples import LOCATION, POLICY, RG, SUB, group_body, policy_body

NetworkFactory = Callable[..., NetworkManagementClient]


@pytest.fixture
def policy(emulator: Emulator) -> str:
    emulator.add_resource_group(SUB, RG, LOCATION)
    emulator.put_policy(SUB, RG, POLICY, policy_body())
    emulator.put_rule_collection_group(SUB, RG, POLICY, "existing", group_body())
    return POLICY


def statuses(emulator: Emulator) -> list[int]:
    return [record.status for record in emulator.requests()]


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("429", "SubscriptionRequestsThrottled"),
        ("500", "InternalServerError"),
        ("503", "ServiceUnavailable"),
    ],
)
def test_raw_error_without_sdk_retries(
    emulator: Emulator, network_client: NetworkFactory, policy: str, kind: str, code: str
) -> None:
    emulator.inject(kind, retry_after=7) if kind != "500" else emulator.inject(kind)
    with network_client(SUB, retry_total=0) as net, pytest.raises(HttpResponseError) as error:
        net.firewall_policies.get(RG, policy)
    assert error.value.status_code == int(kind)
    assert error.value.error is not None
    assert error.value.error.code == code
    assert error.value.response is not None
    if kind != "500":
        assert error.value.response.headers["Retry-After"] == "7"
    assert statuses(emulator) == [int(kind)]


@pytest.mark.parametrize("kind", ["503", "500", "429", "reset"])
def test_default_sdk_retries_absorb_a_single_fault(
    emulator: Emulator, network_client: NetworkFactory, policy: str, kind: str
) -> None:
    emulator.inject(kind)
    with network_client(SUB) as net:
        assert net.firewall_policies.get(RG, policy).name == policy
    assert statuses(emulator) == [0 if kind == "reset" else int(kind), 200]


def test_injected_409_surfaces_as_resource_exists_error(
    emulator: Emulator, network_client: NetworkFactory, policy: str
) -> None:
    """The SDK's error_map turns every 409 into ResourceExistsError, AnotherOperationInProgress included."""
    emulator.inject("409", method="PUT")
    with network_client(SUB) as net, pytest.raises(ResourceExistsError) as error:
        net.firewall_policy_rule_collection_groups.begin_create_or_update(RG, policy, "aml", group_body())
    assert error.value.error is not None
    assert error.value.error.code == "AnotherOperationInProgress"
    assert statuses(emulator) == [409]  # no Retry-After: azure-core does not retry a 409


def test_connection_reset_without_retries(emulator: Emulator, network_client: NetworkFactory, policy: str) -> None:
    emulator.inject("reset", method="PUT")
    with network_client(SUB, retry_total=0) as net, pytest.raises(ServiceResponseError):
        net.firewall_policy_rule_collection_groups.begin_create_or_update(RG, policy, "aml", group_body())
    assert statuses(emulator) == [0]
    assert emulator.get_rule_collection_group(SUB, RG, policy, "aml") is None


def test_slow_response(emulator: Emulator, network_client: NetworkFactory, policy: str) -> None:
    emulator.inject("slow", seconds=0.3)
    with network_client(SUB, retry_total=0) as net:
        with pytest.raises(ServiceResponseError):
            net.firewall_policies.get(RG, policy, read_timeout=0.1)
        emulator.inject("slow", seconds=0.2)
        started = time.monotonic()
        assert net.firewall_policies.get(RG, policy).name == policy
        assert time.monotonic() - started >= 0.2


def test_long_running_operation_ends_failed(emulator: Emulator, network_client: NetworkFactory, policy: str) -> None:
    emulator.inject("lro_failed", method="PUT", path_contains="/ruleCollectionGroups/aml")
    with network_client(SUB) as net:
        poller = net.firewall_policy_rule_collection_groups.begin_create_or_update(RG, policy, "aml", group_body())
        with pytest.raises(HttpResponseError) as error:
            poller.result()
        assert "failed" in str(error.value).lower()
        assert poller.status() == "Failed"
        group = net.firewall_policy_rule_collection_groups.get(RG, policy, "aml").as_dict()
        assert group["properties"]["provisioningState"] == "Failed"  # content kept as sent, state Failed
        assert net.firewall_policies.get(RG, policy).as_dict()["properties"]["provisioningState"] == "Failed"
        # Re-applying repairs it, as the Azure Firewall FAQ recommends.
        again = net.firewall_policy_rule_collection_groups.begin_create_or_update(RG, policy, "aml", group_body())
        assert again.result().properties.provisioning_state == "Succeeded"


def test_failed_operation_status_body(emulator: Emulator, arm_http: ArmHttp, policy: str) -> None:
    emulator.inject("lro_failed", code="FirewallPolicyUpdateFailed", message="Put on Firewall Policy failed.")
    path = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network/firewallPolicies/{policy}"
    deleted = arm_http.request("DELETE", f"{path}/ruleCollectionGroups/existing")
    status = arm_http.request("GET", deleted.headers["Azure-AsyncOperation"]).json()
    assert status == {
        "status": "Failed",
        "error": {"code": "FirewallPolicyUpdateFailed", "message": "Put on Firewall Policy failed."},
    }
    location = arm_http.request("GET", deleted.headers["Location"])
    assert location.status_code == 500
    assert location.json()["error"]["code"] == "FirewallPolicyUpdateFailed"
    group = emulator.get_rule_collection_group(SUB, RG, policy, "existing")
    assert group is not None
    assert group["properties"]["provisioningState"] == "Failed"


def test_throttle_headers(emulator: Emulator, network_client: NetworkFactory, policy: str) -> None:
    emulator.inject("throttle_headers", count=2, value=3)
    seen: list[dict[str, Any]] = []

    def capture(response: Any) -> None:
        seen.append(dict(response.http_response.headers))

    with network_client(SUB) as net:
        for _ in range(3):
            net.firewall_policies.get(RG, policy, raw_response_hook=capture)
        net.firewall_policy_rule_collection_groups.begin_create_or_update(
            RG, policy, "aml", group_body(), raw_response_hook=capture
        ).result()
    remaining = [headers.get("x-ms-ratelimit-remaining-subscription-reads") for headers in seen[:3]]
    assert remaining == ["3", "3", "11999"]
    assert seen[3]["x-ms-ratelimit-remaining-subscription-writes"] == "1199"


def test_faults_match_method_and_path(emulator: Emulator, network_client: NetworkFactory, policy: str) -> None:
    emulator.inject("503", count=2, method="PUT", path_contains="ruleCollectionGroups/target")
    with network_client(SUB, retry_total=0) as net:
        groups = net.firewall_policy_rule_collection_groups
        groups.get(RG, policy, "existing")
        groups.begin_create_or_update(RG, policy, "other", group_body()).result()
        for _ in range(2):
            with pytest.raises(HttpResponseError):
                groups.begin_create_or_update(RG, policy, "target", group_body())
        groups.begin_create_or_update(RG, policy, "target", group_body()).result()
    assert emulator.faults.pending() == []
    assert [(r.method, r.status) for r in emulator.requests() if r.is_write] == [
        ("PUT", 201),
        ("PUT", 503),
        ("PUT", 503),
        ("PUT", 201),
    ]


def test_unknown_fault_kind_is_rejected(emulator: Emulator) -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        emulator.inject("418")
    with pytest.raises(ValueError, match="no parameter"):
        emulator.inject("reset", seconds=1)
