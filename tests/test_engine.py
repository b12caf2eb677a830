"""The engine end to end: the real Azure SDK over HTTPS against the emulator (issue 4)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.azure import write as azure_write
from reconciler.engine import reconcile_target
from reconciler.plan import Outcome
from tests.emulator import Emulator
from tests.engine_support import RG, RT_RG, SUB, compiled, group, seed_policy, unique, write_config, writes


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(op_duration=0.0, observed_defaults=True) as e:
        yield e


@pytest.fixture(autouse=True)
def _env(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in emu.env().items():
        monkeypatch.setenv(k, v)


def run(path: Path, *, dry_run: bool) -> Outcome:
    target, desired = compiled(path)
    return reconcile_target(target, desired, dry_run=dry_run)


def edit(emu: Emulator, policy: str, fn: Any) -> None:
    body = group(emu, policy)
    assert body is not None
    fn(body)
    emu.put_rule_collection_group(SUB, RG, policy, "azureml-egress", body)


def collection(body: dict[str, Any], suffix: str) -> dict[str, Any]:
    return next(c for c in body["properties"]["ruleCollections"] if c["name"].endswith(suffix))


def test_first_apply_creates_then_second_apply_writes_nothing(emu: Emulator, tmp_path: Path) -> None:
    policy = unique("fwpol")
    seed_policy(emu, policy)
    path = write_config(tmp_path, emu, policy)
    foreign = emu.get_rule_collection_group(SUB, RG, policy, "platform-baseline")

    first = run(path, dry_run=False)
    assert first.status == "applied", first.error
    assert first.plan is not None and first.plan.group_action == "create" and first.group_written
    created = group(emu, policy)
    assert created is not None
    _, desired = compiled(path)
    assert {c["name"] for c in created["properties"]["ruleCollections"]} == {
        c.name for c in desired.group.rule_collections}

    emu.clear_requests()
    second = run(path, dry_run=False)
    assert second.status == "in_sync" and not second.group_written
    assert writes(emu) == []
    reads = [r for r in emu.requests() if policy in r.path]
    assert len(reads) <= 2, [f"{r.method} {r.path}" for r in reads]  # policy GET + group LIST
    assert emu.get_rule_collection_group(SUB, RG, policy, "platform-baseline") == foreign


def test_dry_run_sends_only_gets_and_never_builds_a_writer(emu: Emulator, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    policy = unique("fwpol")
    seed_policy(emu, policy)
    path = write_config(tmp_path, emu, policy)

    def boom(*_: object, **__: object) -> None:
        raise AssertionError("the dry-run constructed a writer")

    monkeypatch.setattr(azure_write.AzureWriter, "__init__", boom)
    emu.clear_requests()
    out = run(path, dry_run=True)
    assert out.status == "drift" and out.plan is not None and out.plan.group_action == "create"
    assert {r.method for r in emu.requests()} == {"GET"}
    assert group(emu, policy) is None


@pytest.mark.parametrize("kind", ["rule-removed", "port-changed", "extra-rule", "collection-priority",
                                  "group-deleted"])
def test_manual_edits_show_as_exact_drift_and_are_repaired(emu: Emulator, tmp_path: Path, kind: str) -> None:
    policy = unique("fwpol")
    seed_policy(emu, policy)
    path = write_config(tmp_path, emu, policy)
    assert run(path, dry_run=False).status == "applied"
    foreign = emu.get_rule_collection_group(SUB, RG, policy, "platform-baseline")
    desired_body = group(emu, policy)

    if kind == "rule-removed":
        edit(emu, policy, lambda b: collection(b, "-app")["rules"].pop(0))
    elif kind == "port-changed":
        def change(b: dict[str, Any]) -> None:
            rule = next(r for r in collection(b, "-net")["rules"] if r["name"] == "tag-AzureResourceManager-tcp")
            rule["destinationPorts"] = ["8443"]
        edit(emu, policy, change)
    elif kind == "extra-rule":
        edit(emu, policy, lambda b: collection(b, "-app")["rules"].append(
            {"ruleType": "ApplicationRule", "name": "sneaky", "protocols": [{"protocolType": "Https", "port": 443}],
             "sourceAddresses": ["*"], "targetFqdns": ["example.com"]}))
    elif kind == "collection-priority":
        edit(emu, policy, lambda b: collection(b, "-net").__setitem__("priority", 4000))
    else:
        emu.delete_rule_collection_group(SUB, RG, policy, "azureml-egress")

    drift = run(path, dry_run=True)
    assert drift.status == "drift"
    p = drift.plan
    assert p is not None
    rule_changes = [(r.action, r.rule) for c in p.collections for r in c.rules]
    if kind == "rule-removed":
        assert p.group_action == "update" and len(rule_changes) == 1 and rule_changes[0][0] == "add"
    elif kind == "port-changed":
        (ch,) = [r for c in p.collections for r in c.rules]
        assert (ch.action, ch.rule) == ("change", "tag-AzureResourceManager-tcp")
        assert [(f.field, f.before, f.after) for f in ch.fields] == [("destinationPorts", ("8443",), ("443",))]
    elif kind == "extra-rule":
        assert rule_changes == [("remove", "sneaky")]
    elif kind == "collection-priority":
        (cc,) = p.collections
        assert [(f.field, f.before, f.after) for f in cc.fields] == [("priority", 4000, 1000)] and not cc.rules
    else:
        assert p.group_action == "create"

    assert run(path, dry_run=False).status == "applied"
    assert run(path, dry_run=True).status == "in_sync"
    repaired = group(emu, policy)
    assert repaired is not None and desired_body is not None
    assert repaired["properties"]["ruleCollections"] == desired_body["properties"]["ruleCollections"]
    assert emu.get_rule_collection_group(SUB, RG, policy, "platform-baseline") == foreign


def test_foreign_collection_inside_owned_group_is_carried_through(emu: Emulator, tmp_path: Path) -> None:
    policy = unique("fwpol")
    seed_policy(emu, policy)
    path = write_config(tmp_path, emu, policy)
    assert run(path, dry_run=False).status == "applied"
    ntp = {"ruleType": "NetworkRule", "name": "ntp", "ipProtocols": ["UDP"], "sourceAddresses": ["10.1.0.0/16"],
           "destinationAddresses": ["10.0.0.4"], "destinationPorts": ["123"]}
    theirs = {"ruleCollectionType": "FirewallPolicyFilterRuleCollection", "name": "team-x-extra", "priority": 5000,
              "action": {"type": "Allow"}, "rules": [ntp]}
    edit(emu, policy, lambda b: b["properties"]["ruleCollections"].append(theirs))
    edit(emu, policy, lambda b: collection(b, "-app")["rules"].pop())  # drift, so that a PUT happens
    before = group(emu, policy)
    assert before is not None
    observed = next(c for c in before["properties"]["ruleCollections"] if c["name"] == "team-x-extra")
    emu.clear_requests()
    out = run(path, dry_run=False)
    assert out.status == "applied" and out.plan is not None and out.group_written
    assert len([w for w in writes(emu, policy) if w.method == "PUT"]) == 1
    assert out.plan.foreign_collections == ("team-x-extra",)
    after = group(emu, policy)
    assert after is not None
    kept = next(c for c in after["properties"]["ruleCollections"] if c["name"] == "team-x-extra")
    assert json.dumps(kept, sort_keys=True) == json.dumps(observed, sort_keys=True)  # the whole collection


def test_dns_proxy_off_is_a_preflight_error_before_any_write(emu: Emulator, tmp_path: Path) -> None:
    policy = unique("fwpol")
    seed_policy(emu, policy, dns_proxy=False)
    path = write_config(tmp_path, emu, policy, features=["notebooks"])  # <storage>.file.core...:445
    emu.clear_requests()
    out = run(path, dry_run=False)
    assert out.status == "error" and out.plan is not None
    assert [e.code for e in out.plan.errors] == ["dns-proxy-disabled"]
    assert "enable-dns-proxy" in (out.error or "")
    assert writes(emu) == [] and group(emu, policy) is None


def test_policy_missing_names_the_fix(emu: Emulator, tmp_path: Path) -> None:
    seed_policy(emu, unique("other"))
    path = write_config(tmp_path, emu, unique("absent"))
    out = run(path, dry_run=True)
    assert out.status == "error" and out.plan is not None
    assert out.plan.errors[0].code == "policy-not-found" and "create it first" in out.plan.errors[0].message


def test_foreign_group_with_our_priority_is_a_plan_error(emu: Emulator, tmp_path: Path) -> None:
    policy = unique("fwpol")
    seed_policy(emu, policy)
    clash = json.loads(json.dumps(emu.get_rule_collection_group(SUB, RG, policy, "platform-baseline")))
    clash["properties"]["priority"] = 300
    emu.put_rule_collection_group(SUB, RG, policy, "someone-else", clash)
    out = run(write_config(tmp_path, emu, policy), dry_run=False)
    assert out.status == "error" and out.plan is not None
    assert "foreign-group-priority" in [e.code for e in out.plan.errors]
    assert group(emu, policy) is None


def test_group_with_our_name_but_not_ours_is_never_overwritten(emu: Emulator, tmp_path: Path) -> None:
    policy = unique("fwpol")
    seed_policy(emu, policy)
    theirs = json.loads(json.dumps(emu.get_rule_collection_group(SUB, RG, policy, "platform-baseline")))
    theirs["properties"]["priority"] = 310
    emu.put_rule_collection_group(SUB, RG, policy, "azureml-egress", theirs)
    before = group(emu, policy)
    out = run(write_config(tmp_path, emu, policy), dry_run=False)
    assert out.status == "error" and out.plan is not None
    assert "foreign-group-name" in [e.code for e in out.plan.errors]
    assert group(emu, policy) == before


@pytest.mark.parametrize("fault", ["429", "500", "503", "lro_failed", "reset", "lost_response", "409",
                                   "poll reset", "poll 503"])
def test_injected_faults_converge(emu: Emulator, tmp_path: Path, fault: str) -> None:
    """With 1 s operations, so that a retry sent while our own operation runs would show as an overlap."""
    policy = unique("fwpol")
    seed_policy(emu, policy)
    path = write_config(tmp_path, emu, policy)
    if fault.startswith("poll "):
        emu.inject(fault.split()[1], count=2, method="GET", path_contains="/operations/")
    else:
        emu.inject(fault, count=2, method="PUT", path_contains=policy)
    emu.set_operation_duration(1.0)
    try:
        out = run(path, dry_run=False)
    finally:
        emu.set_operation_duration(0.0)
    assert out.status == "applied", out.error
    assert run(path, dry_run=True).status == "in_sync"
    assert emu.overlapping_writes(SUB, RG, policy) == []


def test_concurrent_foreign_writer_is_survived(emu: Emulator, tmp_path: Path) -> None:
    policy = unique("fwpol")
    seed_policy(emu, policy)
    path = write_config(tmp_path, emu, policy)
    foreign = emu.get_rule_collection_group(SUB, RG, policy, "platform-baseline")
    emu.start_foreign_writer(SUB, RG, policy, hold_seconds=0.4, times=1)
    try:
        out = run(path, dry_run=False)
    finally:
        emu.stop_foreign_writer()
    assert out.status == "applied", out.error
    assert run(path, dry_run=True).status == "in_sync"
    assert emu.get_rule_collection_group(SUB, RG, policy, "platform-baseline") == foreign


def test_failed_policy_is_repaired_by_a_re_put(emu: Emulator, tmp_path: Path) -> None:
    policy = unique("fwpol")
    seed_policy(emu, policy)
    path = write_config(tmp_path, emu, policy)
    assert run(path, dry_run=False).status == "applied"
    emu.set_provisioning_state(SUB, RG, policy, "Failed")
    drift = run(path, dry_run=True)
    assert drift.status == "drift" and drift.plan is not None and drift.plan.group_action == "repair"
    emu.clear_requests()
    assert run(path, dry_run=False).status == "applied"
    assert len([w for w in writes(emu, policy) if w.method == "PUT"]) == 1
    assert run(path, dry_run=True).status == "in_sync"


def test_routes_are_owned_by_prefix(emu: Emulator, tmp_path: Path) -> None:
    policy, table = unique("fwpol"), unique("rt")
    seed_policy(emu, policy, route_table=table)
    path = write_config(tmp_path, emu, policy, features=["compute", "inbound_udr"], route_table=table)
    out = run(path, dry_run=False)
    assert out.status == "applied", out.error
    rt = emu.get_route_table(SUB, RT_RG, table)
    assert rt is not None
    routes = {r["name"]: r["properties"] for r in rt["properties"]["routes"]}
    assert routes["default-to-firewall"]["nextHopType"] == "VirtualAppliance"
    ours = {n: p for n, p in routes.items() if n.startswith("amlfw-")}
    assert ours and all(p["nextHopType"] == "Internet" for p in ours.values())

    name = sorted(ours)[0]
    emu.put_route(SUB, RT_RG, table, name, {"properties": {"addressPrefix": ours[name]["addressPrefix"],
                                                           "nextHopType": "None"}})
    emu.put_route(SUB, RT_RG, table, "amlfw-stale", {"properties": {"addressPrefix": "10.9.0.0/16",
                                                                     "nextHopType": "Internet"}})
    drift = run(path, dry_run=True)
    assert drift.plan is not None
    assert sorted((r.action, r.route) for r in drift.plan.routes) == [("change", name), ("remove", "amlfw-stale")]
    assert run(path, dry_run=False).status == "applied"
    assert run(path, dry_run=True).status == "in_sync"
    rt = emu.get_route_table(SUB, RT_RG, table)
    assert rt is not None
    assert "default-to-firewall" in {r["name"] for r in rt["properties"]["routes"]}


def cli(path: Path, emu: Emulator, *args: str) -> subprocess.CompletedProcess[str]:
    import os

    env = {**os.environ, **emu.env()}
    return subprocess.run([sys.executable, "-m", "reconciler", "reconcile", "--config", str(path), "--once", *args],
                          env=env, capture_output=True, text=True, timeout=120, check=False)


def test_cli_exit_codes_and_reports(emu: Emulator, tmp_path: Path) -> None:
    policy = unique("fwpol")
    seed_policy(emu, policy)
    path = write_config(tmp_path, emu, policy)

    drift = cli(path, emu, "--dry-run", "--output", "json")
    assert drift.returncode == 2, drift.stderr
    doc = json.loads(drift.stdout)
    assert doc["format_version"] == 2 and doc["mode"] == "dry-run"
    (t,) = doc["targets"]
    assert t["status"] == "drift" and t["group"]["action"] == "create"
    assert [g["name"] for g in t["foreign"]["groups"]] == ["platform-baseline"]
    assert "Traceback" not in drift.stderr

    applied = cli(path, emu)
    assert applied.returncode == 0, applied.stderr
    clean = cli(path, emu, "--dry-run", "--output", "markdown")
    assert clean.returncode == 0 and "in sync" in clean.stdout

    bad = write_config(tmp_path, emu, unique("fwpol"), extra={"cloud": "Mars"})
    err = cli(bad, emu, "--dry-run")
    assert err.returncode == 1 and err.stderr.strip().splitlines()[-1].startswith(f"error: {bad}:cloud:")

    usage = cli(path, emu, "--no-such-flag")
    assert usage.returncode == 1
