"""The write path against an Azure-strict emulator (issue 9, F1 and F3): nothing foreign is lost when an
outcome is unclear or If-Match is ignored, polls are retried on their own, and writes never overlap.

Real SDK over HTTPS; operations take 1 s, so the faults have room to happen while an operation runs.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.engine import reconcile_target
from reconciler.plan import Outcome
from tests.emulator import Emulator
from tests.engine_support import RG, SUB, compiled, group, seed_policy, unique, write_config

OWNED = "azureml-egress"
THEIRS: dict[str, Any] = {
    "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
    "name": "team-x-extra",
    "priority": 64000,
    "action": {"type": "Allow"},
    "rules": [{"ruleType": "NetworkRule", "name": "ntp", "ipProtocols": ["UDP"], "sourceAddresses": ["10.9.0.0/16"],
               "destinationAddresses": ["10.0.0.123"], "destinationPorts": ["123"]}],
}


@pytest.fixture
def emu() -> Iterator[Emulator]:
    with Emulator(op_duration=1.0, retry_after=0.2) as e:
        yield e


@pytest.fixture(autouse=True)
def _env(emu: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for k, v in emu.env().items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("AMLFW_LOCK_DIR", str(tmp_path / "locks"))


def run(path: Path) -> Outcome:
    target, desired = compiled(path)
    return reconcile_target(target, desired, dry_run=False)


def group_puts(emu: Emulator, policy: str) -> list[Any]:
    return [r for r in emu.requests() if r.method == "PUT" and f"/{policy}/rulecollectiongroups/{OWNED}"
            in r.path.lower()]


class ForeignEdit(threading.Thread):
    """Another tool: as soon as amlfw's first group PUT is in the log, it adds its own collection to the
    owned group (directly, as a portal edit racing our operation would land)."""

    def __init__(self, emu: Emulator, policy: str) -> None:
        super().__init__(daemon=True)
        self.emu, self.policy = emu, policy
        self.done = threading.Event()

    def run(self) -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not group_puts(self.emu, self.policy):
            time.sleep(0.005)
        body = group(self.emu, self.policy)
        assert body is not None, "the owned group should exist once our PUT was accepted"
        props = body["properties"]
        edited = {"properties": {"priority": props["priority"],
                                 "ruleCollections": [*props["ruleCollections"], copy.deepcopy(THEIRS)]}}
        self.emu.put_rule_collection_group(SUB, RG, self.policy, OWNED, edited, validate=False)
        self.done.set()


def theirs_in(emu: Emulator, policy: str) -> dict[str, Any] | None:
    body = group(emu, policy)
    assert body is not None
    return next((c for c in body["properties"]["ruleCollections"] if c["name"] == THEIRS["name"]), None)


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


AMBIGUOUS = {
    "operation ends Failed": ("lro_failed", "PUT", f"/ruleCollectionGroups/{OWNED}"),
    "poll lost": ("reset", "GET", "/operations/"),
    "response lost": ("lost_response", "PUT", f"/ruleCollectionGroups/{OWNED}"),
}


@pytest.mark.parametrize("case", list(AMBIGUOUS))
def test_ambiguous_create_keeps_a_collection_added_meanwhile(emu: Emulator, tmp_path: Path, case: str) -> None:
    policy = unique("fwpol")
    seed_policy(emu, policy)
    path = write_config(tmp_path, emu, policy)
    kind, method, where = AMBIGUOUS[case]
    emu.inject(kind, count=1 if kind != "reset" else 6, method=method, path_contains=where)
    other = ForeignEdit(emu, policy)
    other.start()
    out = run(path)
    other.join(5)
    assert other.done.is_set()
    assert out.status in ("applied", "error"), out.error
    found = theirs_in(emu, policy)
    assert found is not None, f"{case}: the foreign collection was overwritten ({out.status}: {out.error})"
    assert canonical(found) == canonical(THEIRS)
    assert group_puts(emu, policy)[0].method == "PUT"
    assert emu.overlapping_writes(SUB, RG, policy) == []


@pytest.mark.parametrize("case", list(AMBIGUOUS))
def test_update_with_if_match_ignored_keeps_a_collection_added_meanwhile(emu: Emulator, tmp_path: Path,
                                                                       case: str) -> None:
    policy = unique("fwpol")
    seed_policy(emu, policy)
    assert run(write_config(tmp_path, emu, policy, features=["compute"])).status == "applied"
    emu.configure(honor_if_match=False)
    emu.clear_requests()
    path = write_config(tmp_path, emu, policy, features=["compute", "notebooks", "python_packages"])
    kind, method, where = AMBIGUOUS[case]
    emu.inject(kind, count=1 if kind != "reset" else 6, method=method, path_contains=where)
    other = ForeignEdit(emu, policy)
    other.start()
    out = run(path)
    other.join(5)
    assert other.done.is_set()
    found = theirs_in(emu, policy)
    assert found is not None, f"{case}: the foreign collection was overwritten ({out.status}: {out.error})"
    assert canonical(found) == canonical(THEIRS)
    assert emu.overlapping_writes(SUB, RG, policy) == []


# ------------------------------------------------------------------------------------------------ F3


def op_polls(emu: Emulator) -> list[Any]:
    return [r for r in emu.requests() if r.method == "GET" and "/operations/" in r.path]


def test_poll_faults_resume_the_same_operation_with_one_put(emu: Emulator, tmp_path: Path) -> None:
    """Resets, 503 and 429 on the polls of a 2 s operation: one PUT, polls retried, no overlap, no 409."""
    emu.configure(op_duration=2.0)
    policy = unique("fwpol")
    seed_policy(emu, policy)
    path = write_config(tmp_path, emu, policy)
    emu.inject("reset", count=4, method="GET", path_contains="/operations/")
    emu.inject("503", count=3, method="GET", path_contains="/operations/", retry_after=0.1)
    emu.inject("429", count=3, method="GET", path_contains="/operations/", retry_after=0.1)
    out = run(path)
    assert out.status == "applied", out.error
    puts = group_puts(emu, policy)
    assert [p.status for p in puts] == [201]
    statuses = [r.status for r in op_polls(emu)]
    assert statuses.count(0) == 4 and statuses.count(503) == 3 and statuses.count(429) == 3
    assert statuses[-1] == 200
    assert all(r.path.lower().endswith(puts[0].operation_id or "?") for r in op_polls(emu))
    assert emu.overlapping_writes(SUB, RG, policy) == []
    assert theirs_in(emu, policy) is None  # (nothing foreign here; the group is exactly ours)


def test_writes_are_sent_once_and_polls_are_retried(emu: Emulator, tmp_path: Path) -> None:
    """From the request log: a 503 on the PUT is not retried by azure-core (the next request re-reads the
    group), a reset on a poll is (the next request is the same poll)."""
    policy = unique("fwpol")
    seed_policy(emu, policy)
    path = write_config(tmp_path, emu, policy)
    emu.inject("503", count=1, method="PUT", path_contains=f"/ruleCollectionGroups/{OWNED}")
    emu.inject("reset", count=1, method="GET", path_contains="/operations/")
    out = run(path)
    assert out.status == "applied", out.error
    log = [r for r in emu.requests() if policy in r.path]
    first_put = next(i for i, r in enumerate(log) if r.method == "PUT")
    assert log[first_put].status == 503
    nxt = log[first_put + 1]
    assert nxt.method == "GET" and "/operations/" not in nxt.path  # re-observe, not a re-sent PUT
    reset = next(i for i, r in enumerate(emu.requests()) if r.status == 0)
    after_reset = emu.requests()[reset + 1]
    assert after_reset.method == "GET" and after_reset.path == emu.requests()[reset].path
    assert [p.status for p in group_puts(emu, policy)] == [503, 201]


def test_two_processes_of_one_config_never_overlap_on_a_policy(emu: Emulator, tmp_path: Path) -> None:
    """Two `--once` processes write two groups of one policy at the same time: the flock file serialises
    them; the policy also stays Updating 1 s after each operation."""
    import os
    import subprocess
    import sys

    emu.configure(op_duration=1.5, policy_settle=1.0)
    policy = unique("fwpol")
    seed_policy(emu, policy)
    paths = []
    for index, name in enumerate(("azureml-a", "azureml-b")):
        folder = tmp_path / name
        folder.mkdir()
        paths.append(write_config(folder, emu, policy, extra={
            "rule_collection_group": {"name": name, "priority": 300 + 10 * index}}))
    # each process's read right before its PUT takes 1.5 s, so both are about to write at the same time
    emu.inject("slow", count=2, method="GET", path_contains="/ruleCollectionGroups/azureml-", seconds=1.5)
    env = {**os.environ, **emu.env(), "AMLFW_LOCK_DIR": str(tmp_path / "locks")}
    procs = [subprocess.Popen([sys.executable, "-m", "reconciler", "reconcile", "--config", str(p), "--once"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for p in paths]
    results = [p.communicate(timeout=120) for p in procs]
    for proc, (out, err) in zip(procs, results, strict=True):
        assert proc.returncode == 0, out + err
        assert "Traceback" not in err
    puts = [r for r in emu.requests() if r.method == "PUT" and policy in r.path]
    assert sorted(r.status for r in puts) == [201, 201]
    assert emu.overlapping_writes(SUB, RG, policy) == []


# ------------------------------------------------------------------------------------------------ F4


@pytest.mark.parametrize("fault", ["409", "lro_failed", "reset"])
def test_a_lease_lost_mid_pass_stops_every_further_put(emu: Emulator, tmp_path: Path, fault: str) -> None:
    from reconciler.engine import Hooks

    policy = unique("fwpol")
    seed_policy(emu, policy)
    path = write_config(tmp_path, emu, policy)
    emu.inject(fault, count=3, method="PUT" if fault != "reset" else "GET",
               path_contains=f"/ruleCollectionGroups/{OWNED}" if fault != "reset" else "/operations/")
    checks: list[bool] = []

    def may_write() -> bool:  # the lease is lost as soon as the first PUT went out
        checks.append(not group_puts(emu, policy))
        return checks[-1]

    target, desired = compiled(path)
    out = reconcile_target(target, desired, dry_run=False, hooks=Hooks(may_write=may_write))
    assert len(group_puts(emu, policy)) == 1
    if fault != "reset":  # a lost poll is retried to the operation's end; a re-PUT needs the lease again
        assert out.status == "error" and out.error is not None and "lease" in out.error
        assert checks.count(False) >= 1


# ------------------------------------------------------------------------------------------------ F5


def test_write_timeout_bounds_an_operation_that_never_ends(emu: Emulator, tmp_path: Path) -> None:
    """`--once` with write_timeout 4 against an operation that runs for an hour: exit 1 with a clear error
    (the subprocess timeout is only a hang guard)."""
    import os
    import subprocess
    import sys

    from tests.engine_support import FAST_AZURE

    emu.configure(op_duration=3600.0, retry_after=1.0)
    policy = unique("fwpol")
    seed_policy(emu, policy)
    path = write_config(tmp_path, emu, policy, extra={"azure": {**FAST_AZURE, "write_timeout": 4}})
    env = {**os.environ, **emu.env(), "AMLFW_LOCK_DIR": str(tmp_path / "locks")}
    done = subprocess.run([sys.executable, "-m", "reconciler", "reconcile", "--config", str(path), "--once"],
                          env=env, capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "write_timeout" in done.stdout
    assert "Traceback" not in done.stderr
    assert len(group_puts(emu, policy)) == 1


def test_an_operation_url_on_another_origin_is_refused_unsent(emu: Emulator, tmp_path: Path) -> None:
    from reconciler.azure.write import AzureWriter
    from reconciler.errors import AzureError
    from reconciler.execute import WriteOperation

    policy = unique("fwpol")
    seed_policy(emu, policy)
    target, _ = compiled(write_config(tmp_path, emu, policy))
    writer = AzureWriter(target, clients=None)  # type: ignore[arg-type]  # any request would crash
    for url in ("https://evil.example/operations/1", emu.base_url.replace("https://", "http://") + "/op",
                emu.base_url.rsplit(":", 1)[0] + ":1/operations/1"):
        with pytest.raises(AzureError, match="origin"):
            writer.poll_group_put(WriteOperation("PUT rule collection group g", 201, url))


def test_route_writes_are_sent_once_and_their_polls_retried(emu: Emulator, tmp_path: Path) -> None:
    """Route PUTs/DELETEs of 1 s operations with resets and 503s on their polls: each route is written once,
    no 409 (a route PUT re-sent while our own route-table operation runs would get one)."""
    policy, table = unique("fwpol"), unique("rt")
    seed_policy(emu, policy, route_table=table)
    path = write_config(tmp_path, emu, policy, features=["compute", "inbound_udr"], route_table=table)
    assert run(path).status == "applied"
    rt = emu.get_route_table(SUB, "rg-spoke", table)
    assert rt is not None
    ours = [r["name"] for r in rt["properties"]["routes"] if r["name"].startswith("amlfw-")]
    for name in ours[:2]:
        emu.delete_route(SUB, "rg-spoke", table, name)  # route drift only: every operation polled is a route's
    emu.clear_requests()
    emu.inject("reset", count=3, method="GET", path_contains="/operations/")
    emu.inject("503", count=2, method="GET", path_contains="/operations/")
    out = run(path)
    assert out.status == "applied", out.error
    route_writes = [r for r in emu.requests() if r.method in ("PUT", "DELETE") and "/routes/" in r.path]
    assert route_writes and out.routes_written == len(route_writes)
    assert all(r.status in (200, 201) for r in route_writes), [r.status for r in route_writes]
    assert [r.status for r in op_polls(emu)].count(0) == 3
