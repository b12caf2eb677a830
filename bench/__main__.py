"""`make bench`: plan speed and memory on large groups, and ARM calls per pass against the emulator.

Prints Markdown tables. Targets (issue 4): plan of a 10k-rule group with 1% drift under 100 ms on a 2-core
machine, 50k no more than 6x the 10k time; a no-op pass at most 2 reads and 0 writes per policy; a drift
pass exactly one PUT per changed group. Nothing here asserts: the table is the result.
"""

from __future__ import annotations

import os
import platform
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

from reconciler.arm import group_from_arm, group_to_arm
from reconciler.compile import compile_target
from reconciler.config import load_config
from reconciler.model import (
    ApplicationProtocol,
    ApplicationRule,
    CompileWarning,
    DesiredTarget,
    NetworkRule,
    Requirements,
    Rule,
    RuleCollection,
    RuleCollectionGroup,
)
from reconciler.plan import ObservedGroup, ObservedPolicy, PlanInput, plan

SIZES = (1_000, 10_000, 50_000)
RUNS = 5
PER_COLLECTION = 500


def synthetic_group(n: int, seed: int = 7) -> RuleCollectionGroup:
    rnd = random.Random(seed)
    rules: list[Rule] = []
    for i in range(n):
        src = frozenset({f"10.{i % 250}.{(i // 250) % 250}.0/24"})
        if i % 3 == 0:
            rules.append(NetworkRule(f"tag-rule-{i:06d}", frozenset({"TCP"}), source_addresses=src,
                                     destination_addresses=frozenset({f"Storage.Region{i % 60}"}),
                                     destination_ports=frozenset({"443", str(8000 + rnd.randrange(1000))}),
                                     description=f"amlfw: entry.{i}"))
        else:
            web = frozenset({ApplicationProtocol("Https", 443), ApplicationProtocol("Http", 80)})
            rules.append(ApplicationRule(f"app-host-{i:06d}.example.com", web,
                                         source_addresses=src, target_fqdns=frozenset({f"host-{i}.example.com"}),
                                         description=f"amlfw: entry.{i}"))
    collections = []
    for c in range(0, n, PER_COLLECTION):
        chunk = rules[c:c + PER_COLLECTION]
        net = tuple(r for r in chunk if isinstance(r, NetworkRule))
        app = tuple(r for r in chunk if isinstance(r, ApplicationRule))
        k = c // PER_COLLECTION
        collections.append(RuleCollection(f"ws-w{k:04d}-net", 1000 + 10 * k, rules=net))
        collections.append(RuleCollection(f"ws-w{k:04d}-app", 1001 + 10 * k, rules=app))
    return RuleCollectionGroup("azureml-egress", 300, tuple(collections))


def drifted_wire(group: RuleCollectionGroup, fraction: float, seed: int = 11) -> dict[str, object]:
    """The group as Azure would return it (wire JSON, server defaults, shuffled lists) with `fraction` drift."""
    body = group_to_arm(group)
    rnd = random.Random(seed)
    all_rules = [(c, r) for c in body["properties"]["ruleCollections"] for r in c["rules"]]
    for c, r in rnd.sample(all_rules, max(1, int(len(all_rules) * fraction))):
        action = rnd.choice(("port", "remove", "fqdn"))
        if action == "remove":
            c["rules"].remove(r)
        elif action == "port" and r["ruleType"] == "NetworkRule":
            r["destinationPorts"] = ["1234"]
        else:
            r["description"] = "edited by hand"
    for c in body["properties"]["ruleCollections"]:
        rnd.shuffle(c["rules"])
        for r in c["rules"]:
            r.setdefault("sourceIpGroups", [])
            r.setdefault("destinationIpGroups" if r["ruleType"] == "NetworkRule" else "fqdnTags", [])
            if r["ruleType"] == "ApplicationRule":
                r.setdefault("terminateTLS", False)
    body["etag"] = "W/\"x\""
    body["properties"]["provisioningState"] = "Succeeded"
    body["properties"]["size"] = "1.2 MB"
    return body


def bench_plan() -> list[tuple[int, float, float, float, int]]:
    rows = []
    for n in SIZES:
        desired_group = synthetic_group(n)
        desired = DesiredTarget("bench", desired_group, (), Requirements(), (), (), (CompileWarning("x", None, "y"),),
                                "bench")
        wire = drifted_wire(desired_group, 0.01)
        parse_times, plan_times = [], []
        changes = 0
        for _ in range(RUNS):
            t0 = time.perf_counter()
            observed_group = group_from_arm(wire)
            t1 = time.perf_counter()
            observed = ObservedPolicy(exists=True, owned=ObservedGroup(observed_group, etag="x"), dns_proxy=True)
            p = plan(PlanInput("bench", "/subscriptions/x", "amlfw-", desired, observed))
            t2 = time.perf_counter()
            parse_times.append(t1 - t0)
            plan_times.append(t2 - t1)
            changes = sum(len(c.rules) for c in p.collections)
        tracemalloc.start()
        observed_group = group_from_arm(wire)
        plan(PlanInput("bench", "/subscriptions/x", "amlfw-", desired,
                       ObservedPolicy(exists=True, owned=ObservedGroup(observed_group), dns_proxy=True)))
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        rows.append((n, statistics.median(plan_times) * 1000, statistics.median(parse_times) * 1000,
                     peak / 1e6, changes))
    return rows


def bench_calls() -> dict[str, tuple[int, int, int, int]]:
    """(policies, reads, writes, PUTs of groups) for a no-op and a drift pass over a small fleet."""
    from reconciler.catalogue import CatalogueStore
    from reconciler.engine import reconcile_all
    from tests.emulator import Emulator
    from tests.engine_support import SUB, seed_policy, write_config

    policies = [f"fwpol-bench-{i}" for i in range(4)]
    store = CatalogueStore()
    results: dict[str, tuple[int, int, int, int]] = {}
    with Emulator(op_duration=0.0, observed_defaults=True) as emu, tempfile.TemporaryDirectory() as tmp:
        os.environ.update(emu.env())
        pairs = []
        for name in policies:
            seed_policy(emu, name)
            config = load_config(write_config(Path(tmp), emu, name), store.get)
            t = config.targets[0]
            pairs.append((t, compile_target(t, store.get(t.catalogue_version))))
        reconcile_all(pairs, dry_run=False, max_workers=4)  # converge first

        def count(label: str) -> None:
            reqs = emu.requests()
            reads = sum(r.method == "GET" and "/operations/" not in r.path for r in reqs)
            writes = sum(r.method in ("PUT", "DELETE") for r in reqs)
            puts = sum(r.method == "PUT" and "/ruleCollectionGroups/" in r.path for r in reqs)
            results[label] = (len(policies), reads, writes, puts)

        emu.clear_requests()
        reconcile_all(pairs, dry_run=False, max_workers=4)
        count("no-op pass")
        for name in policies[:2]:  # drift two of the four policies
            body = emu.get_rule_collection_group(SUB, "rg-hub", name, "azureml-egress")
            assert body is not None
            body["properties"]["ruleCollections"][0]["rules"].pop()
            emu.put_rule_collection_group(SUB, "rg-hub", name, "azureml-egress", body)
        emu.clear_requests()
        reconcile_all(pairs, dry_run=False, max_workers=4)
        count("drift pass (2 of 4 groups changed)")
    return results


def main() -> int:
    from reconciler import logs

    logs.configure(level="WARNING")
    print(f"# amlfw bench ({platform.python_implementation()} {platform.python_version()}, "
          f"{os.cpu_count()} CPUs, {platform.machine()})\n")
    rows = bench_plan()
    print(f"## Plan of the owned group against an observed state with 1% drift (median of {RUNS})\n")
    print("| rules | plan (ms) | parse ARM JSON (ms) | peak memory, parse + plan (MB) | rule changes found |")
    print("|---:|---:|---:|---:|---:|")
    for n, plan_ms, parse_ms, mem, changes in rows:
        print(f"| {n:,} | {plan_ms:.1f} | {parse_ms:.1f} | {mem:.1f} | {changes} |")
    t10 = next(r[1] for r in rows if r[0] == 10_000)
    t50 = next(r[1] for r in rows if r[0] == 50_000)
    print(f"\nTargets: 10k plan < 100 ms: **{'met' if t10 < 100 else 'NOT met'}** ({t10:.1f} ms); "
          f"50k <= 6x 10k: **{'met' if t50 <= 6 * t10 else 'NOT met'}** ({t50 / t10:.1f}x).\n")
    calls = bench_calls()
    print("## ARM calls per pass against the emulator (4 policies, real SDK over HTTPS)\n")
    print("| pass | policies | reads | writes | group PUTs | minimum |")
    print("|---|---:|---:|---:|---:|---|")
    for label, (n, reads, writes, puts) in calls.items():
        minimum = (f"<= {2 * n} reads, 0 writes" if label.startswith("no-op")
                   else "1 PUT per changed group (2), + reads")
        print(f"| {label} | {n} | {reads} | {writes} | {puts} | {minimum} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())


