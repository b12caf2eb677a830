"""Review before change: `amlfw plan`, saved plans, `amlfw apply`, confirmation and the CLI conventions.

Every case runs the real CLI as a subprocess with the real Azure SDK against the emulator, and checks what was
written from the emulator's request log.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import jsonschema
import pytest
import yaml

from reconciler.arm import group_from_arm
from tests.emulator import Emulator
from tests.engine_support import RG, SUB, group, seed_policy, unique, write_config, writes
from tests.test_report import outcomes as hand_built_outcomes

REPO = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((REPO / "docs" / "schemas" / "report-v2.schema.json").read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(op_duration=0.0, observed_defaults=True) as e:
        yield e


def amlfw(emu: Emulator, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, **emu.env(), "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "reconciler", *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False, input=stdin if stdin is not None else "")


def applied_once(emu: Emulator, tmp_path: Path) -> tuple[str, Path]:
    """A policy whose owned group amlfw has written, then someone deleted one of its rules by hand."""
    policy = unique("fwpol")
    seed_policy(emu, policy)
    config = write_config(tmp_path, emu, policy)
    first = amlfw(emu, "reconcile", "--config", str(config), "--once")
    assert first.returncode == 0, first.stdout + first.stderr
    body = group(emu, policy)
    assert body is not None
    app = next(c for c in body["properties"]["ruleCollections"] if c["name"].endswith("-app"))
    app["rules"] = [r for r in app["rules"] if r["name"] != "app-pypi.org"]
    emu.put_rule_collection_group(SUB, RG, policy, "azureml-egress", {"properties": body["properties"]})
    return policy, config


def test_plan_exit_codes_and_a_complete_text_plan(emu: Emulator, tmp_path: Path) -> None:
    policy, config = applied_once(emu, tmp_path)
    before = len(writes(emu, policy))
    drift = amlfw(emu, "plan", "--config", str(config))
    assert drift.returncode == 2, drift.stdout + drift.stderr
    lines = drift.stdout.splitlines()
    assert any(line.strip().startswith("+ rule app-pypi.org (ApplicationRule)  serves ") for line in lines)
    stripped = [line.strip() for line in lines]
    assert 'targetFqdns: ["pypi.org"]' in stripped
    assert 'sourceAddresses: ["10.20.0.0/24"]' in stripped
    assert "  Plan: 1 to add, 0 to change, 0 to destroy." in lines
    assert len(writes(emu, policy)) == before, "plan is read-only"
    assert amlfw(emu, "apply", "--config", str(config), "--auto-approve").returncode == 0
    clean = amlfw(emu, "plan", "--config", str(config))
    assert clean.returncode == 0, clean.stdout + clean.stderr


def test_a_saved_plan_applied_unchanged_writes_exactly_its_bodies(emu: Emulator, tmp_path: Path) -> None:
    policy, config = applied_once(emu, tmp_path)
    planfile = tmp_path / "change.plan.json"
    made = amlfw(emu, "plan", "--config", str(config), "--out", str(planfile))
    assert made.returncode == 2, made.stderr
    saved = json.loads(planfile.read_text(encoding="utf-8"))
    assert saved["kind"] == "amlfw-plan" and saved["amlfw_version"]
    jsonschema.validate(saved["report"], SCHEMA)
    (target,) = saved["targets"]
    body = target["group"]["body"]
    assert target["group"]["observed_etag"]
    before = len(writes(emu, policy))

    applied = amlfw(emu, "apply", "--config", str(config), str(planfile))
    assert applied.returncode == 0, applied.stdout + applied.stderr
    new_writes = writes(emu, policy)[before:]
    assert [(w.method, w.path.rsplit("/", 1)[-1]) for w in new_writes] == [("PUT", "azureml-egress")]
    live = group(emu, policy)
    assert live is not None

    # what Azure stores is the saved body, up to the defaults it adds to what it returns (sourceIpGroups: [] ...)
    assert group_from_arm({"name": "azureml-egress", **live}) == group_from_arm({"name": "azureml-egress", **body})


def test_a_saved_plan_is_refused_after_a_foreign_edit_and_nothing_is_written(emu: Emulator, tmp_path: Path) -> None:
    policy, config = applied_once(emu, tmp_path)
    planfile = tmp_path / "change.plan.json"
    assert amlfw(emu, "plan", "--config", str(config), "--out", str(planfile)).returncode == 2
    live = group(emu, policy)
    assert live is not None
    live["properties"]["ruleCollections"].append({  # another tool adds a collection inside our group
        "ruleCollectionType": "FirewallPolicyFilterRuleCollection", "name": "team-extra", "priority": 64000,
        "action": {"type": "Allow"}, "rules": [{"ruleType": "NetworkRule", "name": "x", "ipProtocols": ["TCP"],
                                                 "sourceAddresses": ["10.9.0.0/24"],
                                                 "destinationAddresses": ["10.8.0.1"], "destinationPorts": ["22"]}]})
    emu.put_rule_collection_group(SUB, RG, policy, "azureml-egress", {"properties": live["properties"]})
    before = len(writes(emu, policy))

    refused = amlfw(emu, "apply", "--config", str(config), str(planfile))
    assert refused.returncode == 1
    assert "stale plan: group azureml-egress changed since the plan was made" in refused.stderr
    assert "Nothing was written." in refused.stderr
    assert "Traceback" not in refused.stderr
    assert len(writes(emu, policy)) == before


def test_a_saved_plan_is_refused_with_another_config(emu: Emulator, tmp_path: Path) -> None:
    policy, config = applied_once(emu, tmp_path)
    planfile = tmp_path / "change.plan.json"
    assert amlfw(emu, "plan", "--config", str(config), "--out", str(planfile)).returncode == 2
    doc = yaml.safe_load(config.read_text(encoding="utf-8"))
    doc["workspaces"][0]["source_addresses"].append("10.21.0.0/24")
    config.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    before = len(writes(emu, policy))
    refused = amlfw(emu, "apply", "--config", str(config), str(planfile))
    assert refused.returncode == 1
    assert refused.stderr.strip().splitlines()[-1].startswith(f"error: {planfile}: the configuration changed")
    assert len(writes(emu, policy)) == before

    not_a_plan = tmp_path / "junk.json"
    not_a_plan.write_text('{"kind": "something else"}', encoding="utf-8")
    junk = amlfw(emu, "apply", "--config", str(config), str(not_a_plan))
    assert junk.returncode == 1
    assert junk.stderr.strip().splitlines()[-1] == (f"error: {not_a_plan}:kind: expected 'amlfw-plan': not a plan "
                                                    "file written by `amlfw plan --out`")


def test_apply_without_a_terminal_needs_auto_approve(emu: Emulator, tmp_path: Path) -> None:
    policy, config = applied_once(emu, tmp_path)
    before = len(writes(emu, policy))
    asked = amlfw(emu, "apply", "--config", str(config), stdin="yes\n")  # stdin is a pipe, not a terminal
    assert asked.returncode == 1
    assert "needs confirmation" in asked.stderr and "--auto-approve" in asked.stderr
    assert "+ rule app-pypi.org" in asked.stdout, "the plan is shown before anything else"
    assert len(writes(emu, policy)) == before
    approved = amlfw(emu, "apply", "--config", str(config), "--auto-approve")
    assert approved.returncode == 0, approved.stdout + approved.stderr
    assert "Applied: 1 added, 0 changed, 0 destroyed." in approved.stdout
    assert len(writes(emu, policy)) == before + 1


def test_apply_on_a_terminal_asks_and_only_yes_applies(emu: Emulator, tmp_path: Path) -> None:
    """A real pseudo-terminal: `no` cancels with nothing written, `yes` applies."""
    import pty

    policy, config = applied_once(emu, tmp_path)
    env = {**os.environ, **emu.env(), "PYTHONPATH": str(REPO), "NO_COLOR": "1"}

    def on_terminal(answer: str) -> tuple[int, str]:
        leader, follower = pty.openpty()
        process = subprocess.Popen([sys.executable, "-m", "reconciler", "apply", "--config", str(config)],
                                   stdin=follower, stdout=subprocess.PIPE, stderr=follower, env=env)
        os.close(follower)
        seen = b""
        while b"(yes/no)" not in seen:
            chunk = os.read(leader, 4096)
            assert chunk, seen.decode(errors="replace")
            seen += chunk
        os.write(leader, answer.encode() + b"\n")
        out, _ = process.communicate(timeout=120)
        try:
            while os.read(leader, 4096):
                pass
        except OSError:
            pass
        os.close(leader)
        return process.returncode, out.decode()

    before = len(writes(emu, policy))
    code, _ = on_terminal("no")
    assert code == 1
    assert len(writes(emu, policy)) == before
    code, out = on_terminal("yes")
    assert code == 0, out
    assert len(writes(emu, policy)) == before + 1


def test_the_json_report_validates_against_its_schema_for_every_kind_of_change(emu: Emulator,
                                                                                 tmp_path: Path) -> None:
    from reconciler.render.report import render_json

    hand_built = json.loads(render_json(hand_built_outcomes(), mode="dry-run", generated_at="2026-01-01T00:00:00Z"))
    jsonschema.validate(hand_built, SCHEMA)
    kinds = {(c["action"], r["action"]) for t in hand_built["targets"] for c in t.get("changes", [])
             for r in c["rules"]}
    assert kinds >= {("add", "add"), ("remove", "remove"), ("change", "change"), ("change", "add")}
    assert {r["action"] for t in hand_built["targets"] for r in t.get("routes", [])} == {"add", "remove"}

    _, config = applied_once(emu, tmp_path)
    real = amlfw(emu, "plan", "--config", str(config), "--format", "json")
    doc = json.loads(real.stdout)
    jsonschema.validate(doc, SCHEMA)
    (rule,) = [r for c in doc["targets"][0]["changes"] for r in c["rules"]]
    assert rule["attributes"]["targetFqdns"] == ["pypi.org"] and rule["entries"] and rule["features"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**doc, "format_version": 1}, SCHEMA)


def test_cli_conventions(emu: Emulator, tmp_path: Path) -> None:
    policy = unique("fwpol")
    seed_policy(emu, policy)
    config = write_config(tmp_path, emu, policy)
    # daemon flags with --once are a usage error, never silently ignored
    mixed = amlfw(emu, "reconcile", "--config", str(config), "--once", "--interval", "5")
    assert mixed.returncode == 1
    assert "--interval is a daemon flag" in mixed.stderr
    # the old spelling of --format still works (hidden), and --target selects
    old = amlfw(emu, "reconcile", "--config", str(config), "--once", "--dry-run", "--output", "json")
    assert old.returncode == 2, old.stderr
    assert json.loads(old.stdout)["mode"] == "dry-run"
    unknown = amlfw(emu, "plan", "--config", str(config), "--target", "nope")
    assert unknown.returncode == 1
    assert "error: --target: unknown target 'nope'" in unknown.stderr
    name = json.loads(old.stdout)["targets"][0]["target"]
    selected = amlfw(emu, "plan", "--config", str(config), "--target", name, "--format", "json")
    assert selected.returncode == 2, selected.stderr
    assert [t["target"] for t in json.loads(selected.stdout)["targets"]] == [name]
    # every flag of every command has help
    from reconciler.cli import build_parser

    parser = build_parser()
    stack = [parser]
    while stack:
        current = stack.pop()
        for action in current._actions:
            if action.help is None and action.option_strings:
                raise AssertionError(f"{current.prog} {action.option_strings} has no help")
            choices = getattr(action, "choices", None)
            if isinstance(choices, dict):
                stack.extend(choices.values())


def test_repeated_feature_flags_combine(emu: Emulator) -> None:
    one = json.loads(amlfw(emu, "catalogue", "list", "--version", "azureml-2021.11", "--feature", "r_packages",
                           "--format", "json").stdout)
    two = json.loads(amlfw(emu, "catalogue", "list", "--version", "azureml-2021.11", "--feature", "r_packages",
                           "--feature", "vscode", "--format", "json").stdout)
    ids_one, ids_two = {e["id"] for e in one["entries"]}, {e["id"] for e in two["entries"]}
    assert ids_one < ids_two
    assert any("vscode" in e["features"] for e in two["entries"])


def test_warnings_print_once_with_a_summary_and_can_be_accepted(emu: Emulator, tmp_path: Path) -> None:
    policy = unique("fwpol")
    seed_policy(emu, policy)
    workspaces = [{"name": f"mlws-{i}", "region": "westus2", "storage_account": f"mlws{i}sa",
                   "source_addresses": [f"10.{30 + i}.0.0/24"], "features": ["compute", "vscode"]}
                  for i in range(3)]
    config = write_config(tmp_path, emu, policy, workspaces=workspaces)
    plan = amlfw(emu, "plan", "--config", str(config))
    summary = [line for line in plan.stderr.splitlines() if line.startswith("compile warnings:")]
    assert len(summary) == 1, plan.stderr
    warning_lines = [line for line in plan.stderr.splitlines() if '"compile.warning"' in line]
    messages = [json.loads(line)["message"] for line in warning_lines]
    assert len(messages) == len(set(messages)), "each distinct warning once, not once per workspace"
    codes = sorted({json.loads(line)["code"] for line in warning_lines})
    assert codes
    doc = yaml.safe_load(config.read_text(encoding="utf-8"))
    doc["accept_warnings"] = codes
    config.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    quiet = amlfw(emu, "plan", "--config", str(config))
    assert '"compile.warning"' not in quiet.stderr
    (line,) = [x for x in quiet.stderr.splitlines() if x.startswith("compile warnings:")]
    assert line.startswith("compile warnings: 0 shown (none), ") and line.endswith(" accepted in the configuration")
    assert int(line.split(", ")[1].split()[0]) >= len(warning_lines)


def test_deps_exits_1_when_nothing_was_checked(emu: Emulator, tmp_path: Path) -> None:
    policy = unique("fwpol")
    seed_policy(emu, policy)
    config = write_config(tmp_path, emu, policy)  # no workspace has resource_group
    result = amlfw(emu, "deps", "--config", str(config))
    assert result.returncode == 1
    assert "nothing was checked" in result.stderr


def test_a_partial_apply_is_reported_exactly(emu: Emulator, tmp_path: Path) -> None:
    """A 500 on the second route PUT, after the group and the first route were written: status partial, exit 1,
    and the report says what was written and what was not."""
    from tests.engine_support import compiled

    policy, table = unique("fwpol"), unique("rt")
    seed_policy(emu, policy, route_table=table)
    config = write_config(tmp_path, emu, policy, route_table=table, features=["compute", "inbound_udr"])
    _, desired = compiled(config)
    names = sorted(r.name for r in desired.routes)
    assert len(names) >= 2
    fault = emu.inject("500", count=100, method="PUT", path_contains=f"/routes/{names[1]}")
    try:
        result = amlfw(emu, "reconcile", "--config", str(config), "--once", "--format", "json")
    finally:
        emu.clear_faults()
    del fault
    assert result.returncode == 1, result.stderr
    (target,) = json.loads(result.stdout)["targets"]
    assert target["status"] == "partial"
    assert target["applied"]["group_written"] is True
    assert target["applied"]["routes_done"] == [f"add {names[0]}"]
    assert "500" in (target["error"] or "") or "InternalServerError" in (target["error"] or "")
    text = amlfw(emu, "reconcile", "--config", str(config), "--once", "--dry-run")
    assert text.returncode == 2  # the rest is still to do
    again = amlfw(emu, "reconcile", "--config", str(config), "--once")
    assert again.returncode == 0, again.stdout + again.stderr


def test_partial_text_names_what_was_and_was_not_written() -> None:
    from reconciler.plan import FieldChange, Outcome, RouteChange, TargetPlan
    from reconciler.render.report import render_text

    plan = TargetPlan(target="t", policy_id="/p", group_name="azureml-egress", group_action="update",
                      routes=(RouteChange("add", "amlfw-A", (FieldChange("addressPrefix", None, "A"),)),
                              RouteChange("add", "amlfw-B", (FieldChange("addressPrefix", None, "B"),))))
    text = render_text([Outcome("t", "partial", plan, error="PUT route amlfw-B: 500", group_written=True,
                                routes_written=1, routes_done=("add amlfw-A",))], applied=True)
    assert ("  ! partial apply: written: group azureml-egress, route add amlfw-A; not written: route add amlfw-B"
            in text.splitlines())
    assert text.splitlines()[-1] == "1 target: 0 in sync, 0 drifted, 0 applied, 1 partially applied, 0 failed."


def test_progress_lines_appear_during_a_long_operation(tmp_path: Path) -> None:
    with Emulator(op_duration=3.5, observed_defaults=True, retry_after=1.0) as slow:
        policy = unique("fwpol")
        seed_policy(slow, policy)
        config = write_config(tmp_path, slow, policy, extra={"azure": {
            "polling_interval": 1, "retry_total": 2, "write_backoff_initial": 0.01, "write_backoff_max": 0.05,
            "settle_poll": 0.1, "write_timeout": 60, "progress_interval": 1}})
        result = amlfw(slow, "apply", "--config", str(config), "--auto-approve")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert any(line.endswith(": observing the live policy") for line in lines)
    assert any(line.endswith("azureml-egress: writing the rule collection group (create)") for line in lines)
    still = [line for line in lines if "azureml-egress: still updating (" in line]
    assert len(still) >= 2, result.stderr
    assert all("s elapsed)" in line for line in still)


def test_an_operation_failed_twice_ends_with_azure_s_error_and_no_412(emu: Emulator, tmp_path: Path) -> None:
    policy = unique("fwpol")
    seed_policy(emu, policy)
    config = write_config(tmp_path, emu, policy, extra={"azure": {
        "polling_interval": 0, "retry_total": 2, "write_backoff_initial": 0.01, "write_backoff_max": 0.05,
        "settle_poll": 0.01, "write_timeout": 60, "write_attempts": 2}})
    emu.inject("lro_failed", count=2, method="PUT", path_contains=f"/{policy}/ruleCollectionGroups/azureml-egress",
               code="FirewallPolicyUpdateFailed", message="Put on Firewall Policy failed (injected)")
    try:
        result = amlfw(emu, "reconcile", "--config", str(config), "--once", "--format", "json")
    finally:
        emu.clear_faults()
    assert result.returncode == 1
    (target,) = json.loads(result.stdout)["targets"]
    assert "FirewallPolicyUpdateFailed" in target["error"], target["error"]
    assert "someone else is editing" not in target["error"]
    assert target["applied"]["retries"] >= 1
    statuses = [r.status for r in emu.requests() if r.method == "PUT" and f"/{policy}/" in r.path]
    assert 412 not in statuses
