"""`make soak` (`python -m tests.soak`): many reconcile passes over a fleet against an Azure-strict emulator
with random faults of every kind and a foreign writer, checking after every pass that nothing foreign was
lost or changed, that no two of amlfw's writes to a policy overlapped, that no exception escaped and that
every outcome is typed. After the faults stop, one pass must converge every target.

The fleet: several firewall policies, two targets sharing one of them (two owned groups in one policy).
The emulator: operations last `--op-min`..`--op-max` seconds (uniform), `Retry-After: 1` on 201/202 and polls,
the policy stays `Updating` `--settle` s after each child operation, service-rule errors end operations
Failed, and a fraction `--fault-rate` of ARM requests fail at random (TCP reset, lost response, 500, 503,
429 with Retry-After, 409 on writes, resets of polls, operations ending Failed). `If-Match` is ignored in a
random half of the passes. The foreign writer, a thread, edits foreign groups, adds/changes/removes its own
collections inside amlfw's groups and sometimes deletes one of amlfw's rules (drift to repair); each of its
edits is a real operation holding the policy's write lock for 0.3-1.5 s, as another tool's PUT would.

Prints the figures; exit 0 when lost = overlaps = tracebacks = untyped = 0 and the final pass converged.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from reconciler.engine import reconcile_all
from reconciler.plan import Outcome
from tests.emulator import Emulator
from tests.engine_support import RG, SUB, compiled, seed_policy, write_config

TYPED = frozenset({"in_sync", "drift", "applied", "partial", "error"})
SOAK_AZURE = {"polling_interval": 1, "retry_total": 2, "retry_backoff_max": 0.5, "write_backoff_initial": 0.1,
              "write_backoff_max": 1.0, "settle_poll": 0.2, "write_timeout": 90, "write_attempts": 8}


@dataclass
class Fleet:
    policies: list[str]
    targets: list[tuple[str, str]]  # (policy, owned group)
    paths: list[Path]


@dataclass
class Figures:
    passes: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    retries: int = 0
    writes: int = 0
    lost: int = 0
    overlaps: int = 0
    tracebacks: int = 0
    untyped: int = 0
    foreign_edits: int = 0
    foreign_skipped: int = 0
    if_match_ignored_passes: int = 0
    problems: list[str] = field(default_factory=list)


def build_fleet(emu: Emulator, root: Path, policies: int) -> Fleet:
    names = [f"fwpol-soak-{i}" for i in range(policies)]
    targets: list[tuple[str, str]] = []
    paths: list[Path] = []
    for i, policy in enumerate(names):
        seed_policy(emu, policy)
        groups = ["azureml-a", "azureml-b"] if i == 0 else ["azureml-egress"]
        for j, group in enumerate(groups):
            folder = root / f"{policy}-{group}"
            folder.mkdir(parents=True)
            paths.append(write_config(folder, emu, policy, extra={
                "rule_collection_group": {"name": group, "priority": 300 + 10 * j}, "azure": SOAK_AZURE}))
            targets.append((policy, group))
    return Fleet(names, targets, paths)


class ForeignWriter(threading.Thread):
    """Another tool. Keeps `truth`: the foreign content as it last wrote it (what must never be lost)."""

    def __init__(self, emu: Emulator, fleet: Fleet, rng: random.Random, interval: float) -> None:
        super().__init__(name="soak-foreign-writer", daemon=True)
        self.emu, self.fleet, self.rng, self.interval = emu, fleet, rng, interval
        self.stop_event = threading.Event()
        self.paused = threading.Event()
        self.idle = threading.Event()
        self.edits = self.skipped = 0
        # (policy, group) -> properties of a foreign group; (policy, group, collection) -> collection JSON
        self.truth_groups: dict[tuple[str, str], Any] = {}
        self.truth_collections: dict[tuple[str, str, str], Any] = {}
        for policy in fleet.policies:
            found = emu.get_rule_collection_group(SUB, RG, policy, "platform-baseline")
            assert found is not None
            self.truth_groups[(policy, "platform-baseline")] = found["properties"]["ruleCollections"]

    def run(self) -> None:
        while not self.stop_event.is_set():
            if self.paused.is_set():
                self.idle.set()
                self.stop_event.wait(0.02)
                continue
            self.idle.clear()
            self.edit_once()
            self.stop_event.wait(self.rng.uniform(0.5, 1.5) * self.interval)
        self.idle.set()

    def edit_once(self) -> None:
        policy, group = self.rng.choice(self.fleet.targets)
        roll = self.rng.random()
        state = self.emu.state
        with state.lock:  # read-modify-write as one step, as a tool holding the policy's lock would
            if roll < 0.25:
                target_group = "platform-baseline"
                current = self.emu.get_rule_collection_group(SUB, RG, policy, target_group)
                assert current is not None
                props = copy.deepcopy(current["properties"])
                rule = props["ruleCollections"][0]["rules"][0]
                rule["destinationPorts"] = [str(self.rng.randrange(1, 65000))]
            else:
                target_group = group
                current = self.emu.get_rule_collection_group(SUB, RG, policy, target_group)
                if current is None:
                    self.skipped += 1
                    return
                props = copy.deepcopy(current["properties"])
                cols = props["ruleCollections"]
                mine = [c for c in cols if c["name"].startswith("team-")]
                ours = [c for c in cols if c["name"].startswith("ws-")]
                if roll < 0.45 and ours and ours[0]["rules"]:
                    ours[0]["rules"].pop(self.rng.randrange(len(ours[0]["rules"])))  # drift for amlfw
                elif roll < 0.55 and mine:
                    cols.remove(self.rng.choice(mine))
                elif roll < 0.75 and mine:
                    self.rng.choice(mine)["rules"][0]["destinationPorts"] = [str(self.rng.randrange(1, 65000))]
                else:
                    cols.append(self.collection(len(mine)))
            body = {"priority": props["priority"], "ruleCollections": props["ruleCollections"]}
            started = state.begin_foreign_write(SUB, RG, policy, self.rng.uniform(0.3, 1.5), target_group, body)
            if started is None:  # the policy is busy (amlfw or its settling): another tool would get 409 too
                self.skipped += 1
                return
            self.edits += 1
            self.record(policy, target_group, body)

    def collection(self, index: int) -> dict[str, Any]:
        name = f"team-{self.rng.randrange(10**6):06d}"
        return {"ruleCollectionType": "FirewallPolicyFilterRuleCollection", "name": name,
                "priority": 60000 + index, "action": {"type": "Allow"},
                "rules": [{"ruleType": "NetworkRule", "name": "r1", "ipProtocols": ["TCP"],
                           "sourceAddresses": ["10.200.0.0/16"], "destinationAddresses": ["10.201.0.1"],
                           "destinationPorts": [str(self.rng.randrange(1, 65000))]}]}

    def record(self, policy: str, group: str, body: dict[str, Any]) -> None:
        if group == "platform-baseline":
            self.truth_groups[(policy, group)] = copy.deepcopy(body["ruleCollections"])
            return
        for key in [k for k in self.truth_collections if k[:2] == (policy, group)]:
            del self.truth_collections[key]
        for c in body["ruleCollections"]:
            if c["name"].startswith("team-"):
                self.truth_collections[(policy, group, c["name"])] = copy.deepcopy(c)

    def pause(self) -> None:
        self.paused.set()
        self.idle.wait(10)

    def resume(self) -> None:
        self.paused.clear()


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def wait_settled(emu: Emulator, fleet: Fleet, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        busy = False
        for policy in fleet.policies:
            found = emu.get_policy(SUB, RG, policy)
            busy = busy or (found is not None and found["properties"]["provisioningState"] in ("Updating", "Deleting"))
            for g in emu.list_rule_collection_groups(SUB, RG, policy):
                busy = busy or g["properties"]["provisioningState"] in ("Updating", "Deleting")
        if not busy:
            return
        time.sleep(0.05)
    raise TimeoutError("the fleet did not settle")


def check_foreign(emu: Emulator, writer: ForeignWriter) -> list[str]:
    problems = []
    for (policy, group), cols in writer.truth_groups.items():
        found = emu.get_rule_collection_group(SUB, RG, policy, group)
        if found is None or canonical(found["properties"]["ruleCollections"]) != canonical(cols):
            problems.append(f"foreign group {policy}/{group} changed")
    for (policy, group, name), col in writer.truth_collections.items():
        found = emu.get_rule_collection_group(SUB, RG, policy, group)
        live = next((c for c in (found or {}).get("properties", {}).get("ruleCollections", []) if c["name"] == name),
                    None)
        if live is None:
            problems.append(f"foreign collection {policy}/{group}/{name} lost")
        elif canonical(live) != canonical(col):
            problems.append(f"foreign collection {policy}/{group}/{name} changed")
    return problems


def error_kind(error: str) -> str:
    """A short label for an error outcome: what failed and why, without ids."""
    for marker in ("write_timeout", "HA lease", "kept changing", "lost track", "ended Failed", "after amlfw's write",
                   "connection failed", "AnotherOperationInProgress", "Another operation", "Too Many", "exceeded",
                   "ServiceUnavailable", "unable to handle", "An error occurred", "stayed"):
        if marker in error:
            return f"{error.split(':')[0][:40]}: {marker}"
    return error[:70]


def run_pass(pairs: list[Any], figures: Figures, *, dry_run: bool = False) -> list[Outcome]:
    try:
        outcomes = reconcile_all(pairs, dry_run=dry_run, max_workers=len(pairs))
    except Exception as exc:  # the soak counts what escapes
        figures.tracebacks += 1
        figures.problems.append(f"exception escaped: {type(exc).__name__}: {exc}")
        return []
    for o in outcomes:
        figures.outcomes[o.status] += 1
        figures.retries += o.retries
        if o.status == "error" and o.error:
            figures.errors[error_kind(o.error)] += 1
        if o.status not in TYPED or (o.status == "error" and (not o.error or o.error.startswith("internal error"))):
            figures.untyped += 1
            figures.problems.append(f"untyped outcome {o.target}: {o.status} {o.error}")
    return outcomes


def soak(args: argparse.Namespace) -> tuple[Figures, bool]:
    rng = random.Random(args.seed)
    figures = Figures()
    root = Path(tempfile.mkdtemp(prefix="amlfw-soak-"))
    os.environ["AMLFW_LOCK_DIR"] = str(root / "locks")
    with Emulator(op_duration=args.op_min, retry_after=1.0, policy_settle=args.settle) as emu:
        emu.configure(op_duration_max=args.op_max)
        for key, value in emu.env().items():
            os.environ[key] = value
        fleet = build_fleet(emu, root, args.policies)
        pairs = [compiled(p) for p in fleet.paths]
        run_pass(pairs, Figures())  # the first pass creates the groups, fault-free
        wait_settled(emu, fleet)
        writer = ForeignWriter(emu, fleet, rng, args.foreign_interval)
        writer.start()
        emu.set_chaos(args.fault_rate, seed=args.seed, params={"429": {"retry_after": 1}, "503": {"retry_after": 1}})
        seen = len(emu.requests())
        started = time.monotonic()
        for index in range(args.passes):
            ignore = rng.random() < 0.5
            emu.configure(honor_if_match=not ignore)
            figures.if_match_ignored_passes += int(ignore)
            run_pass(pairs, figures)
            figures.passes += 1
            writer.pause()
            emu.set_chaos(0.0)
            wait_settled(emu, fleet)
            problems = check_foreign(emu, writer)
            records = emu.requests()
            fresh = records[seen:]
            figures.writes += sum(1 for r in fresh if r.method == "PUT")
            for policy in fleet.policies:
                # this pass's writes against each other and against the previous pass's last ones
                pairs_overlapping = emu_overlaps(records[max(0, seen - 200):], policy)
                figures.overlaps += len(pairs_overlapping)
                problems += [f"overlap on {policy}: {a.method} {a.path} / {b.method} {b.path}"
                             for a, b in pairs_overlapping]
            if len(records) > 20000:  # keep the overlap checks cheap; nothing is in flight between passes
                emu.clear_requests()
                seen = 0
            else:
                seen = len(records)
            figures.lost += sum(1 for p in problems if " lost" in p or " changed" in p)
            figures.problems += problems
            if args.verbose or problems or (index + 1) % 50 == 0:
                print(f"pass {index + 1}: {dict(Counter(figures.outcomes))} problems={problems[:3]}", flush=True)
            emu.set_chaos(args.fault_rate, params={"429": {"retry_after": 1}, "503": {"retry_after": 1}})
            writer.resume()
        writer.stop_event.set()
        writer.join(10)
        emu.set_chaos(0.0)
        emu.configure(honor_if_match=True)
        wait_settled(emu, fleet)
        elapsed = time.monotonic() - started
        final = run_pass(pairs, Figures())
        converged = bool(final) and all(o.status in ("applied", "in_sync") for o in final)
        check = run_pass(pairs, Figures(), dry_run=True)
        converged = converged and bool(check) and all(o.status == "in_sync" for o in check)
        if not converged:
            figures.problems.append("final pass did not converge: "
                                    + "; ".join(f"{o.target}: {o.status} {o.error}" for o in [*final, *check]))
        figures.foreign_edits, figures.foreign_skipped = writer.edits, writer.skipped
        lost_final = check_foreign(emu, writer)
        figures.lost += len(lost_final)
        figures.problems += lost_final
        faults = dict(sorted(emu.faults.chaos_counts.items()))
    print_figures(figures, faults, elapsed, converged, args)
    ok = converged and figures.lost == 0 and figures.overlaps == 0 and figures.tracebacks == 0 \
        and figures.untyped == 0
    return figures, ok


def emu_overlaps(records: list[Any], policy: str) -> list[Any]:
    from tests.emulator.requestlog import overlapping_writes

    return overlapping_writes(records, SUB, RG, policy)


def print_figures(f: Figures, faults: dict[str, int], elapsed: float, converged: bool,
                  args: argparse.Namespace) -> None:
    print(f"soak: {f.passes} passes x {len(args_targets(args))} targets over {args.policies} policies, "
          f"operations {args.op_min:g}-{args.op_max:g} s, fault rate {args.fault_rate:.0%}, seed {args.seed}, "
          f"{elapsed:.0f} s")
    print(f"  passes              {f.passes} (If-Match ignored in {f.if_match_ignored_passes})")
    print(f"  outcomes            {dict(sorted(f.outcomes.items()))}")
    for kind, count in f.errors.most_common(8):
        print(f"    error x{count:<4} {kind}")
    print(f"  faults injected     {sum(faults.values())}: {faults}")
    print(f"  foreign edits       {f.foreign_edits} (skipped while the policy was busy: {f.foreign_skipped})")
    print(f"  retries (amlfw's)   {f.retries}")
    print(f"  writes (PUTs)       {f.writes}")
    print(f"  lost                {f.lost}")
    print(f"  overlaps            {f.overlaps}")
    print(f"  tracebacks          {f.tracebacks}")
    print(f"  untyped outcomes    {f.untyped}")
    print(f"  converged after     {'yes' if converged else 'NO'}")
    for problem in f.problems[:20]:
        print(f"  ! {problem}")


def args_targets(args: argparse.Namespace) -> list[int]:
    return list(range(args.policies + 1))


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--passes", type=int, default=300)
    parser.add_argument("--policies", type=int, default=4, help="firewall policies (targets: one more)")
    parser.add_argument("--fault-rate", type=float, default=0.2)
    parser.add_argument("--op-min", type=float, default=1.0, help="shortest operation, seconds")
    parser.add_argument("--op-max", type=float, default=5.0, help="longest operation, seconds")
    parser.add_argument("--settle", type=float, default=0.5, help="seconds the policy stays Updating after")
    parser.add_argument("--foreign-interval", type=float, default=0.3, help="mean seconds between foreign edits")
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--verbose", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    import logging

    import structlog

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.CRITICAL))
    args = parse_args(sys.argv[1:] if argv is None else argv)
    _, ok = soak(args)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
