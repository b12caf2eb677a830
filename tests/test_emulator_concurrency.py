"""One write at a time per policy: 409 (or 429) while an operation runs, the foreign writer, the request log."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from azure.core.exceptions import HttpResponseError, ResourceExistsError
from azure.mgmt.network import NetworkManagementClient

from tests.emulator import Emulator
from tests.emulator.pytest_plugin import *  # noqa: F403 - the emulator fixtures
from tests.emulator.samples import LOCATION, POLICY, RG, SUB, group_body, policy_body, route_body

NetworkFactory = Callable[..., NetworkManagementClient]


@pytest.fixture
def policy(emulator: Emulator) -> str:
    emulator.add_resource_group(SUB, RG, LOCATION)
    emulator.put_policy(SUB, RG, POLICY, policy_body())
    return POLICY


def put_with_retry(net: NetworkManagementClient, policy: str, name: str, attempts: int = 200) -> None:
    """What a serialising client does on AnotherOperationInProgress: wait and try again."""
    for _ in range(attempts):
        try:
            net.firewall_policy_rule_collection_groups.begin_create_or_update(RG, policy, name, group_body()).result()
        except ResourceExistsError:
            time.sleep(0.02)
        else:
            return
    raise AssertionError(f"{name} was never written")


def test_second_write_gets_409_while_an_operation_runs(
    emulator: Emulator, network_client: NetworkFactory, policy: str
) -> None:
    emulator.set_operation_duration(0.3)
    with network_client(SUB, retry_total=0) as net:
        groups = net.firewall_policy_rule_collection_groups
        first = groups.begin_create_or_update(RG, policy, "first", group_body())
        with pytest.raises(ResourceExistsError) as put_conflict:
            groups.begin_create_or_update(RG, policy, "second", group_body())
        with pytest.raises(ResourceExistsError) as delete_conflict:
            groups.begin_delete(RG, policy, "first")
        with pytest.raises(ResourceExistsError):
            net.firewall_policies.begin_create_or_update(RG, policy, policy_body())
        assert put_conflict.value.error is not None
        assert put_conflict.value.error.code == "AnotherOperationInProgress"
        assert "/operations/" in put_conflict.value.error.message
        # The group being written is itself Updating: Azure names that case (Azure/deployment-stacks#211).
        assert delete_conflict.value.error is not None
        assert delete_conflict.value.error.code == (
            "FirewallPolicyRuleCollectionGroupDeleteNotAllowedWhenUpdatingOrDeleting"
        )
        first.result()
        groups.begin_create_or_update(RG, policy, "second", group_body()).result()
    assert emulator.get_rule_collection_group(SUB, RG, policy, "second") is not None
    pairs = emulator.overlapping_writes(SUB, RG, policy)
    assert len(pairs) == 3
    assert all(a.path.endswith("/first") and a.status == 201 for a, _ in pairs)
    assert [b.status for _, b in pairs] == [409, 409, 409]


def test_writes_to_another_policy_are_not_blocked(
    emulator: Emulator, network_client: NetworkFactory, policy: str
) -> None:
    emulator.put_policy(SUB, RG, "fwp-other", policy_body())
    emulator.set_operation_duration(0.3)
    with network_client(SUB, retry_total=0) as net:
        groups = net.firewall_policy_rule_collection_groups
        first = groups.begin_create_or_update(RG, policy, "first", group_body())
        groups.begin_create_or_update(RG, "fwp-other", "first", group_body()).result()
        first.result()
    assert emulator.overlapping_writes(SUB, RG, policy) == []
    assert emulator.overlapping_writes(SUB, RG, "fwp-other") == []


def test_route_table_writes_are_serialised_too(emulator: Emulator, network_client: NetworkFactory) -> None:
    emulator.put_route_table(SUB, RG, "udr", {"location": LOCATION})
    emulator.set_operation_duration(0.3)
    with network_client(SUB, retry_total=0) as net:
        first = net.routes.begin_create_or_update(RG, "udr", "a", route_body())
        with pytest.raises(ResourceExistsError):
            net.routes.begin_create_or_update(RG, "udr", "b", route_body("10.0.0.0/8"))
        first.result()


@pytest.mark.parametrize("emulator_options", [{"conflict_status": 429, "retry_after": 0.1}])
def test_429_variant(emulator: Emulator, network_client: NetworkFactory, policy: str) -> None:
    emulator.start_foreign_writer(SUB, RG, policy, hold_seconds=0.25)
    with network_client(SUB, retry_total=0) as net, pytest.raises(HttpResponseError) as error:
        net.firewall_policy_rule_collection_groups.begin_create_or_update(RG, policy, "aml", group_body())
    assert error.value.status_code == 429
    assert error.value.error is not None
    assert error.value.error.code == "RetryableErrorDueToAnotherOperation"
    assert error.value.response is not None
    assert error.value.response.headers["Retry-After"] == "1"  # whole seconds; the SDK parses it as an int
    assert error.value.response.headers["retry-after-ms"] == "100"
    # With its default policy azure-core retries a 429 itself, honouring Retry-After (up to 3 status retries).
    with network_client(SUB) as net:
        net.firewall_policy_rule_collection_groups.begin_create_or_update(RG, policy, "aml", group_body()).result()
    puts = [r.status for r in emulator.requests() if r.method == "PUT"]
    assert puts[0] == 429
    assert puts[-1] == 201
    assert 2 <= len(puts) <= 5


def test_foreign_writer_blocks_our_writes_while_it_holds_the_lock(
    emulator: Emulator, network_client: NetworkFactory, policy: str
) -> None:
    emulator.start_foreign_writer(SUB, RG, policy, hold_seconds=0.3, group="ForeignRuleCollectionGroup")
    foreign = emulator.get_rule_collection_group(SUB, RG, policy, "ForeignRuleCollectionGroup")
    assert foreign is not None
    assert foreign["properties"]["provisioningState"] == "Updating"
    with network_client(SUB, retry_total=0) as net:
        with pytest.raises(ResourceExistsError):
            net.firewall_policy_rule_collection_groups.begin_create_or_update(RG, policy, "aml", group_body())
        time.sleep(0.35)
        net.firewall_policy_rule_collection_groups.begin_create_or_update(RG, policy, "aml", group_body()).result()
    foreign = emulator.get_rule_collection_group(SUB, RG, policy, "ForeignRuleCollectionGroup")
    assert foreign is not None
    assert foreign["properties"]["provisioningState"] == "Succeeded"
    assert emulator.requests()[0].status == 409  # the foreign writer itself is not in the ARM request log


def test_serial_client_with_retries_never_overlaps(
    emulator: Emulator, network_client: NetworkFactory, policy: str
) -> None:
    emulator.set_operation_duration(0.02)
    emulator.start_foreign_writer(SUB, RG, policy, hold_seconds=0.05, times=3, interval=0.03)
    with network_client(SUB, retry_total=0) as net:
        for index in range(4):
            put_with_retry(net, policy, f"rcg-{index}")
    emulator.stop_foreign_writer()
    assert len(emulator.list_rule_collection_groups(SUB, RG, policy)) == 4
    assert any(r.status == 409 for r in emulator.requests())
    assert emulator.overlapping_writes(SUB, RG, policy) == []


def test_parallel_clients_are_caught_by_overlapping_writes(
    emulator: Emulator, network_client: NetworkFactory, policy: str
) -> None:
    emulator.set_operation_duration(0.05)

    def writer(index: int) -> None:
        with network_client(SUB, retry_total=0) as net:
            put_with_retry(net, policy, f"rcg-{index}")

    with ThreadPoolExecutor(max_workers=4) as pool:
        list(pool.map(writer, range(4)))
    assert len(emulator.list_rule_collection_groups(SUB, RG, policy)) == 4
    pairs = emulator.overlapping_writes(SUB, RG, policy)
    assert pairs
    assert all(first.started <= second.started for first, second in pairs)


def test_stuck_updating_state_blocks_writes(emulator: Emulator, network_client: NetworkFactory, policy: str) -> None:
    emulator.put_rule_collection_group(SUB, RG, policy, "aml", group_body())
    with network_client(SUB, retry_total=0) as net:
        groups = net.firewall_policy_rule_collection_groups
        emulator.set_provisioning_state(SUB, RG, policy, "Updating", group="aml")
        with pytest.raises(ResourceExistsError) as group_busy:
            groups.begin_delete(RG, policy, "aml")
        assert group_busy.value.error is not None
        assert group_busy.value.error.code == "FirewallPolicyRuleCollectionGroupDeleteNotAllowedWhenUpdatingOrDeleting"
        emulator.set_provisioning_state(SUB, RG, policy, "Failed", group="aml")
        emulator.set_provisioning_state(SUB, RG, policy, "Updating")
        with pytest.raises(ResourceExistsError):
            groups.begin_create_or_update(RG, policy, "aml", group_body())
        emulator.set_provisioning_state(SUB, RG, policy, "Succeeded")
        assert groups.get(RG, policy, "aml").properties.provisioning_state == "Failed"
        groups.begin_create_or_update(RG, policy, "aml", group_body()).result()


def test_request_log_records(emulator: Emulator, network_client: NetworkFactory, policy: str) -> None:
    with network_client(SUB) as net:
        net.firewall_policy_rule_collection_groups.begin_create_or_update(RG, policy, "aml", group_body()).result()
        net.firewall_policies.get(RG, policy)
    emulator.inject("500")  # admin calls and faults configuration are not ARM requests: nothing logged for them
    records = emulator.requests()
    assert [(r.method, r.is_write) for r in records] == [("PUT", True), ("GET", False), ("GET", False), ("GET", False)]
    put = records[0]
    assert put.query == {"api-version": "2026-03-01"}
    assert put.status == 201
    assert put.started <= put.ended
    assert put.operation_id is not None
    assert put.operation_ended is not None
    assert len({r.request_id for r in records}) == len(records)
    emulator.clear_requests()
    assert emulator.requests() == []
