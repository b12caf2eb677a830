"""apply_plan with fake readers and writers: retries, Retry-After, 412 re-plans, stale etags, serial writes,
polls retried on their own, read-back verification, fencing and write_timeout."""

from __future__ import annotations

import copy
import threading
import time
from dataclasses import replace
from typing import Any

import pytest

from reconciler.arm import collection_from_arm, group_from_arm, group_to_arm
from reconciler.config import ResourceRef
from reconciler.errors import (
    AuthError,
    ConcurrentModificationError,
    FencedError,
    LostUpdateError,
    OperationFailedError,
    PlanError,
    TransientAzureError,
    WriteTimeoutError,
)
from reconciler.execute import GroupRead, PollResult, RetrySettings, WriteOperation, apply_plan, with_retries
from reconciler.model import NetworkRule, Route, RuleCollection, RuleCollectionGroup
from reconciler.plan import ObservedGroup, PreflightIssue, RouteChange, TargetPlan

FAST = RetrySettings(attempts=5, initial_delay=0.0, max_delay=0.0, total_seconds=30, settle_poll=0.0,
                     settle_timeout=1.0)
GROUP = RuleCollectionGroup("azureml-egress", 300, (
    RuleCollection("ws-a-net", 1000, rules=(NetworkRule("tag-Storage-tcp", frozenset({"TCP"}),
                                                        destination_addresses=frozenset({"Storage"}),
                                                        destination_ports=frozenset({"443"})),)),
))
TABLE = ResourceRef("00000000-0000-0000-0000-000000000001", "rg", "rt")


def a_plan(**kw: Any) -> TargetPlan:
    base = TargetPlan(target="t", policy_id="/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/"
                      "firewallPolicies/p", group_name="azureml-egress", group_action="update", body=GROUP,
                      observed_etag="e1")
    return replace(base, **kw)


class FakeReader:
    def __init__(self, etags: list[str | None], states: list[str | None] | None = None,
                 raw: dict[str, Any] | None = None) -> None:
        self.etags = etags
        self.states = states or []
        self.gets = 0
        self.raw = raw if raw is not None else group_to_arm(GROUP)
        self.after: list[dict[str, Any]] = []  # raw answers for later reads (read-backs), in order

    def read_group(self) -> GroupRead:
        etag = self.etags[min(self.gets, len(self.etags) - 1)]
        self.gets += 1
        if etag is None:
            return GroupRead(None, None)
        raw = self.after.pop(0) if self.after and self.gets > 1 else self.raw
        return GroupRead(ObservedGroup(group_from_arm(raw), etag=etag), raw)

    def policy_state(self) -> str | None:
        return self.states.pop(0) if self.states else "Succeeded"


class FakeWriter:
    def __init__(self, failures: list[BaseException] | None = None, hold: float = 0.0,
                 polls: list[PollResult | BaseException] | None = None) -> None:
        self.failures = failures or []
        self.polls = polls
        self.puts: list[tuple[dict[str, Any], str | None]] = []
        self.conditions: list[str | None] = []
        self.poll_calls = 0
        self.routes: list[tuple[str, str]] = []
        self.hold = hold
        self.active = 0
        self.max_active = 0
        self.lock = threading.Lock()

    def start_group_put(self, body: dict[str, Any], *, if_match: str | None,
                        if_none_match: str | None) -> WriteOperation:
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        try:
            time.sleep(self.hold)
            if self.failures:
                raise self.failures.pop(0)
            self.puts.append((body, if_match))
            self.conditions.append(if_none_match)
            if self.polls is None:
                return WriteOperation("PUT", 200, None, done=True)
            return WriteOperation("PUT", 201, "https://arm.example/operations/1", retry_after=1.0)
        finally:
            with self.lock:
                self.active -= 1

    def poll_group_put(self, operation: WriteOperation) -> PollResult:
        self.poll_calls += 1
        assert self.polls is not None
        step = self.polls.pop(0) if len(self.polls) > 1 else self.polls[0]
        if isinstance(step, BaseException):
            raise step
        return step

    def put_route(self, table: ResourceRef, body: dict[str, Any]) -> None:
        self.routes.append(("put", body["name"]))

    def delete_route(self, table: ResourceRef, name: str) -> None:
        self.routes.append(("delete", name))


def same_plan(live: ObservedGroup | None) -> TargetPlan:
    return a_plan(observed_etag=live.etag if live else None, group_action="update" if live else "create")


def no_replan(_: ObservedGroup | None) -> TargetPlan:  # pragma: no cover - fails the test if called
    raise AssertionError("re-planned unexpectedly")


def test_one_put_with_if_match_when_etag_unchanged() -> None:
    writer = FakeWriter()
    res = apply_plan(a_plan(), reader=FakeReader(["e1"]), writer=writer, replan=no_replan, route_table=None,
                     settings=FAST)
    assert res.group_written and len(writer.puts) == 1
    body, if_match = writer.puts[0]
    assert if_match == "e1"
    assert body["name"] == "azureml-egress" and body["properties"]["priority"] == 300


def test_create_sends_if_none_match_star_and_no_if_match() -> None:
    writer = FakeWriter()
    reader = FakeReader([None, "e9"])
    apply_plan(a_plan(group_action="create", observed_etag=None), reader=reader, writer=writer,
               replan=no_replan, route_table=None, settings=FAST)
    assert writer.puts[0][1] is None and writer.conditions == ["*"]


def test_transient_errors_retry_whole_write_and_honour_retry_after() -> None:
    sleeps: list[float] = []
    writer = FakeWriter([TransientAzureError("busy", status=409, code="AnotherOperationInProgress"),
                         TransientAzureError("throttled", status=429, retry_after=7.0),
                         TransientAzureError("lro failed")])
    res = apply_plan(a_plan(), reader=FakeReader(["e1"]), writer=writer, replan=same_plan, route_table=None,
                     settings=FAST, sleep=sleeps.append)
    assert len(writer.puts) == 1 and res.retries == 3
    assert sleeps[1] == 7.0  # Retry-After wins over the (zero) backoff


def test_gives_up_after_attempts() -> None:
    writer = FakeWriter([TransientAzureError(f"x{i}", status=503) for i in range(10)])
    with pytest.raises(TransientAzureError):
        apply_plan(a_plan(), reader=FakeReader(["e1"]), writer=writer, replan=same_plan, route_table=None,
                   settings=FAST, sleep=lambda _: None)
    assert writer.puts == []


def test_auth_errors_are_not_retried() -> None:
    writer = FakeWriter([AuthError("denied", status=403)])
    with pytest.raises(AuthError):
        apply_plan(a_plan(), reader=FakeReader(["e1"]), writer=writer, replan=no_replan, route_table=None,
                   settings=FAST, sleep=lambda _: None)


def test_moved_etag_replans_before_writing() -> None:
    replans: list[ObservedGroup | None] = []

    def replan(live: ObservedGroup | None) -> TargetPlan:
        replans.append(live)
        return a_plan(observed_etag=live.etag if live else None)

    writer = FakeWriter()
    res = apply_plan(a_plan(), reader=FakeReader(["e2"]), writer=writer, replan=replan, route_table=None,
                     settings=FAST)
    assert res.replanned and len(replans) == 1 and writer.puts[0][1] == "e2"


def test_replan_to_nothing_skips_the_write() -> None:
    writer = FakeWriter()
    res = apply_plan(a_plan(), reader=FakeReader(["e2"]), writer=writer,
                     replan=lambda live: a_plan(group_action="none", body=None, observed_etag="e2"),
                     route_table=None, settings=FAST)
    assert not res.group_written and writer.puts == []


def test_412_reobserves_and_replans() -> None:
    calls: list[str | None] = []

    def replan(live: ObservedGroup | None) -> TargetPlan:
        calls.append(live.etag if live else None)
        return a_plan(observed_etag=live.etag if live else None)

    writer = FakeWriter([ConcurrentModificationError("precondition failed", status=412)])
    res = apply_plan(a_plan(), reader=FakeReader(["e1", "e3"]), writer=writer, replan=replan, route_table=None,
                     settings=FAST, sleep=lambda _: None)
    assert res.group_written and calls == ["e3"] and writer.puts[0][1] == "e3"


def test_blocking_plan_errors_never_write() -> None:
    writer = FakeWriter()
    with pytest.raises(PlanError, match="enable DNS proxy"):
        apply_plan(a_plan(errors=(PreflightIssue("dns-proxy-disabled", "enable DNS proxy"),)),
                   reader=FakeReader(["e1"]), writer=writer, replan=no_replan, route_table=None, settings=FAST)
    assert writer.puts == []


def test_busy_policy_waits_until_settled() -> None:
    reader = FakeReader(["e1"], states=["Updating", "Updating", "Succeeded"])
    sleeps: list[float] = []
    apply_plan(a_plan(), reader=reader, writer=FakeWriter(), replan=no_replan, route_table=None,
               settings=replace(FAST, settle_poll=0.25), policy_busy=True, sleep=sleeps.append)
    assert sleeps == [0.25, 0.25]


def test_routes_written_one_by_one() -> None:
    writer = FakeWriter()
    p = a_plan(group_action="none", body=None,
               routes=(RouteChange("add", "amlfw-AzureMachineLearning"), RouteChange("remove", "amlfw-old")),
               desired_routes=(Route("amlfw-AzureMachineLearning", "AzureMachineLearning"),))
    res = apply_plan(p, reader=FakeReader(["e1"]), writer=writer, replan=no_replan, route_table=TABLE,
                     settings=FAST)
    assert writer.routes == [("put", "amlfw-AzureMachineLearning"), ("delete", "amlfw-old")]
    assert res.routes_written == 2 and writer.puts == []


def test_writes_to_one_policy_are_serial_and_different_policies_concurrent() -> None:
    writer = FakeWriter(hold=0.05)
    plans = [a_plan(target=f"t{i}") for i in range(4)]
    threads = [threading.Thread(target=apply_plan, args=(p,), kwargs={
        "reader": FakeReader(["e1"]), "writer": writer, "replan": no_replan, "route_table": None,
        "settings": FAST}) for p in plans]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(writer.puts) == 4 and writer.max_active == 1

    other = FakeWriter(hold=0.1)
    plans = [a_plan(target=f"u{i}", policy_id=f"/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/"
                    f"firewallPolicies/p{i}") for i in range(3)]
    threads = [threading.Thread(target=apply_plan, args=(p,), kwargs={
        "reader": FakeReader(["e1"]), "writer": other, "replan": no_replan, "route_table": None,
        "settings": FAST}) for p in plans]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert other.max_active > 1


def test_with_retries_only_retries_transient() -> None:
    attempts = []

    def fn() -> int:
        attempts.append(1)
        if len(attempts) < 3:
            raise TransientAzureError("again")
        return 42

    assert with_retries(fn, FAST, "x", sleep=lambda _: None) == 42
    assert len(attempts) == 3


def test_an_operation_that_ends_failed_reobserves_and_replans_before_the_next_put() -> None:
    replans: list[str | None] = []

    def replan(live: ObservedGroup | None) -> TargetPlan:
        replans.append(live.etag if live else None)
        return same_plan(live)

    writer = FakeWriter(polls=[OperationFailedError("ended Failed"), PollResult("Succeeded")])
    reader = FakeReader(["e1", "e2", "e3"])
    res = apply_plan(a_plan(), reader=reader, writer=writer, replan=replan, route_table=None, settings=FAST,
                     sleep=lambda _: None)
    # e2 is the settle check's read; the second PUT carries the etag read right before it
    assert [m for _, m in writer.puts] == ["e1", "e3"]
    assert replans and res.group_written


def test_failed_polls_resume_the_same_operation_without_a_second_put() -> None:
    writer = FakeWriter(polls=[TransientAzureError("reset"), TransientAzureError("503", status=503, retry_after=3.0),
                               PollResult("InProgress", 2.0), PollResult("Succeeded")])
    sleeps: list[float] = []
    res = apply_plan(a_plan(), reader=FakeReader(["e1"]), writer=writer, replan=same_plan, route_table=None,
                     settings=FAST, sleep=sleeps.append)
    assert len(writer.puts) == 1 and writer.poll_calls == 4 and res.group_written
    assert sleeps[:4] == [1.0, 0.0, 3.0, 2.0]  # Retry-After of the PUT, backoff, the 503's Retry-After, the poll's


FOREIGN_RAW = {"ruleCollectionType": "FirewallPolicyFilterRuleCollection", "name": "theirs", "priority": 200,
               "action": {"type": "Allow"},
               "rules": [{"ruleType": "NetworkRule", "name": "r", "ipProtocols": ["TCP"],
                          "destinationAddresses": ["10.0.0.1"], "destinationPorts": ["443", "80"]}]}


def plan_with_theirs() -> TargetPlan:
    body = replace(GROUP, rule_collections=(*GROUP.rule_collections, collection_from_arm(FOREIGN_RAW)))
    return a_plan(body=body)


def test_a_foreign_collection_our_write_did_not_carry_through_as_it_was_is_a_lost_update() -> None:
    before = group_to_arm(GROUP)
    before["properties"]["ruleCollections"].append(FOREIGN_RAW)
    # a body that does not carry theirs through as read (foreign content is kept as raw JSON, so this stands
    # for any bug that would change it): the ports re-ordered
    changed = copy.deepcopy(FOREIGN_RAW)
    changed["rules"][0]["destinationPorts"] = ["80", "443"]
    the_plan = a_plan(body=replace(GROUP, rule_collections=(*GROUP.rule_collections, collection_from_arm(changed))))
    assert the_plan.body is not None
    reader = FakeReader(["e1"], raw=before)
    reader.after = [group_to_arm(the_plan.body)]  # read-back: what we sent
    with pytest.raises(LostUpdateError, match="'theirs' changed"):
        apply_plan(the_plan, reader=reader, writer=FakeWriter(), replan=lambda live: the_plan, route_table=None,
                   settings=FAST)


def test_a_foreign_collection_edited_or_removed_after_our_write_replans_instead() -> None:
    before = group_to_arm(GROUP)
    before["properties"]["ruleCollections"].append(FOREIGN_RAW)
    reader = FakeReader(["e1", "e2"], raw=before)
    reader.after = [group_to_arm(GROUP), group_to_arm(GROUP)]  # read-back: theirs is gone; re-read: same
    writer = FakeWriter()
    res = apply_plan(plan_with_theirs(), reader=reader, writer=writer, route_table=None, settings=FAST,
                     replan=lambda live: a_plan(group_action="none", body=None, observed_etag="e2"))
    assert res.group_written and res.replanned and len(writer.puts) == 1


def test_a_lost_lease_stops_before_the_put() -> None:
    writer = FakeWriter()
    with pytest.raises(FencedError):
        apply_plan(a_plan(), reader=FakeReader(["e1"]), writer=writer, replan=same_plan, route_table=None,
                   settings=FAST, fence=lambda: False)
    assert writer.puts == []


def test_write_timeout_bounds_an_operation_that_never_ends() -> None:
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += seconds

    writer = FakeWriter(polls=[PollResult("InProgress", 5.0)])
    with pytest.raises(WriteTimeoutError, match="polling"):
        apply_plan(a_plan(), reader=FakeReader(["e1"]), writer=writer, replan=same_plan, route_table=None,
                   settings=replace(FAST, total_seconds=60), sleep=sleep, clock=lambda: now[0])
    assert len(writer.puts) == 1 and now[0] == 60.0


def test_a_put_whose_answer_was_lost_and_that_landed_counts_as_written() -> None:
    writer = FakeWriter([TransientAzureError("connection failed: reset")])  # no status: it may have landed
    res = apply_plan(a_plan(), reader=FakeReader(["e1", "e2"]), writer=writer,
                     replan=lambda live: a_plan(group_action="none", body=None, observed_etag="e2"),
                     route_table=None, settings=FAST, sleep=lambda _: None)
    assert res.group_written and writer.puts == []
