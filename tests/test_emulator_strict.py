"""The emulator's strict, Azure-like write modes: validation that ends Failed, non-zero Retry-After, a policy
that stays Updating after a child operation, If-None-Match, and the If-Match-ignoring mode."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.network import NetworkManagementClient

from tests.emulator import Emulator
from tests.emulator.admin import AdminClient
from tests.emulator.pytest_plugin import *  # noqa: F403 - the emulator fixtures
from tests.emulator.rawarm import ArmHttp
from tests.emulator.samples import LOCATION, POLICY, RG, SUB, filter_collection, group_body, network_rule, policy_body
from tests.test_emulator_process import start

NetworkFactory = Callable[..., NetworkManagementClient]
GROUP_PATH = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network/firewallPolicies/{POLICY}"
INVALID = group_body([filter_collection(rules=[network_rule(destinationAddresses=[], destinationPorts=["53"])])])


@pytest.fixture
def policy(emulator: Emulator) -> str:
    emulator.add_resource_group(SUB, RG, LOCATION)
    emulator.put_policy(SUB, RG, POLICY, policy_body())
    return POLICY


def wait_for(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def test_rule_error_on_an_update_ends_failed_keeps_content_and_moves_etag(
    emulator: Emulator, network_client: NetworkFactory, policy: str
) -> None:
    before = emulator.put_rule_collection_group(SUB, RG, policy, "aml", group_body())
    with network_client(SUB, retry_total=0) as net, pytest.raises(HttpResponseError) as error:
        net.firewall_policy_rule_collection_groups.begin_create_or_update(RG, policy, "aml", INVALID).result()
    assert error.value.status_code == 200  # the poll: the PUT itself was accepted
    assert error.value.error is not None
    assert error.value.error.code == "FirewallPolicyNetworkRuleMustHaveDestination"
    assert [r.status for r in emulator.requests() if r.method == "PUT"] == [200]
    after = emulator.get_rule_collection_group(SUB, RG, policy, "aml")
    assert after is not None
    assert after["properties"]["ruleCollections"] == before["properties"]["ruleCollections"]
    assert after["properties"]["provisioningState"] == "Failed"
    assert after["etag"] != before["etag"]


@pytest.mark.parametrize("emulator_options", [{"retry_after": 1, "op_duration": 0.05}])
def test_retry_after_is_sent_on_201_202_and_polls(emulator: Emulator, arm_http: ArmHttp, policy: str) -> None:
    created = arm_http.request("PUT", f"{GROUP_PATH}/ruleCollectionGroups/aml", body=group_body())
    assert created.status_code == 201
    assert created.headers["Retry-After"] == "1"
    poll = arm_http.request("GET", created.headers["Azure-AsyncOperation"])
    assert poll.json() == {"status": "InProgress"}
    assert poll.headers["Retry-After"] == "1"
    wait_for(lambda: arm_http.request("GET", created.headers["Azure-AsyncOperation"]).json()["status"] == "Succeeded")
    deleted = arm_http.request("DELETE", f"{GROUP_PATH}/ruleCollectionGroups/aml")
    assert deleted.status_code == 202
    assert deleted.headers["Retry-After"] == "1"


@pytest.mark.parametrize("emulator_options", [{"policy_settle": 2.0}])
def test_policy_stays_updating_after_a_child_operation(
    emulator: Emulator, network_client: NetworkFactory, policy: str
) -> None:
    with network_client(SUB, retry_total=0) as net:
        groups = net.firewall_policy_rule_collection_groups
        groups.begin_create_or_update(RG, policy, "aml", group_body()).result()
        group = emulator.get_rule_collection_group(SUB, RG, policy, "aml")
        assert group is not None and group["properties"]["provisioningState"] == "Succeeded"
        state = emulator.get_policy(SUB, RG, policy)
        assert state is not None and state["properties"]["provisioningState"] == "Updating"
        with pytest.raises(HttpResponseError) as busy:
            groups.begin_create_or_update(RG, policy, "other", group_body(priority=400))
        assert busy.value.status_code == 409
        assert busy.value.error is not None and busy.value.error.code == "AnotherOperationInProgress"

        def settled() -> bool:
            found = emulator.get_policy(SUB, RG, policy)
            return found is not None and found["properties"]["provisioningState"] == "Succeeded"

        wait_for(settled)
        groups.begin_create_or_update(RG, policy, "other", group_body(priority=400)).result()


def test_if_none_match_star_refuses_to_overwrite(emulator: Emulator, arm_http: ArmHttp, policy: str) -> None:
    emulator.put_rule_collection_group(SUB, RG, policy, "aml", group_body())
    refused = arm_http.request(
        "PUT", f"{GROUP_PATH}/ruleCollectionGroups/aml", body=group_body(priority=500), headers={"If-None-Match": "*"}
    )
    assert refused.status_code == 412
    assert refused.json()["error"]["code"] == "PreconditionFailed"
    created = arm_http.request(
        "PUT", f"{GROUP_PATH}/ruleCollectionGroups/new", body=group_body(priority=500), headers={"If-None-Match": "*"}
    )
    assert created.status_code == 201


@pytest.mark.parametrize("emulator_options", [{"honor_if_match": False}])
def test_conditions_ignored_mode(emulator: Emulator, arm_http: ArmHttp, policy: str) -> None:
    emulator.put_rule_collection_group(SUB, RG, policy, "aml", group_body())
    for headers in ({"If-None-Match": "*"}, {"If-Match": '"stale"'}):
        answer = arm_http.request("PUT", f"{GROUP_PATH}/ruleCollectionGroups/aml", body=group_body(), headers=headers)
        assert answer.status_code == 200


def test_settings_change_at_run_time(emulator: Emulator) -> None:
    settings = emulator.configure(retry_after=1, policy_settle=0.5, honor_if_match=False, sync_validation=True)
    assert settings["retry_after"] == 1.0 and settings["policy_settle"] == 0.5
    assert settings["honor_if_match"] is False and settings["sync_validation"] is True
    with pytest.raises(ValueError, match="unknown setting"):
        emulator.configure(nonsense=1)
    with pytest.raises(ValueError, match="true or false"):
        emulator.configure(honor_if_match="no")


def test_process_flags_and_admin_config(tmp_path: Path) -> None:
    running = start(tmp_path / "state", "--retry-after", "2", "--policy-settle", "0.5", "--ignore-if-match",
                    "--sync-validation")
    try:
        admin = AdminClient.from_state_dir(running.state_dir)
        settings: dict[str, Any] = admin.configure()
        assert (settings["retry_after"], settings["policy_settle"]) == (2.0, 0.5)
        assert (settings["honor_if_match"], settings["sync_validation"]) == (False, True)
        assert admin.configure(honor_if_match=True, retry_after=1)["honor_if_match"] is True
    finally:
        assert running.stop() == 0
        assert running.process.stderr is not None
        running.process.stderr.close()
