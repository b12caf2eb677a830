"""The sandbox: `python -m tests.emulator --seed-config FILE`, then the real CLI against it, as the README shows."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.emulator import ArmError, Emulator, samples
from tests.emulator.admin import AdminClient
from tests.emulator.pytest_plugin import *  # noqa: F403 - the emulator fixtures

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "config" / "examples"


def _start(state_dir: Path, config: Path) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.emulator", "--state-dir", str(state_dir), "--seed-config", str(config)],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 30
    while not (state_dir / "emulator.json").exists():
        if process.poll() is not None:
            raise AssertionError(process.stderr.read() if process.stderr else "")
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError("the sandbox did not start within 30 s")
        time.sleep(0.02)
    assert process.stdout is not None
    lines = []
    while not lines or not lines[-1].startswith("stop the emulator"):
        lines.append(process.stdout.readline().rstrip("\n"))
    return process, "\n".join(lines)


def _env_from(env_file: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IDENTITY_", "AZURE_"))}
    for line in env_file.read_text(encoding="utf-8").splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        env[name] = shlex.split(value)[0]
    return env


@pytest.mark.parametrize("example", ["public.yaml", "fleet.yaml"])
def test_seed_config_then_the_cli_plans_applies_and_converges(tmp_path: Path, example: str) -> None:
    state = tmp_path / "state"
    process, console = _start(state, EXAMPLES / example)
    try:
        assert "firewall policy rg-hub" in console
        assert f". {state / 'env.sh'}" in console
        command = f"amlfw plan --config {state / 'sandbox.yaml'}"
        assert command in console
        env = _env_from(state / "env.sh")
        assert set(env) >= {"REQUESTS_CA_BUNDLE", "IDENTITY_ENDPOINT", "IDENTITY_HEADER"}
        sandbox = yaml.safe_load((state / "sandbox.yaml").read_text(encoding="utf-8"))
        info = yaml.safe_load((state / "emulator.json").read_text(encoding="utf-8"))
        targets = sandbox.get("targets", [sandbox])
        assert {t["arm_endpoint"] for t in targets} == {info["base_url"]}

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run([sys.executable, "-m", "reconciler", *args, "--config", str(state / "sandbox.yaml"),
                                   "--once"], cwd=tmp_path, env={**env, "PYTHONPATH": str(REPO)},
                                  capture_output=True, text=True, timeout=120, check=False)

        dry = cli("reconcile", "--dry-run")
        assert dry.returncode == 2, dry.stdout + dry.stderr
        assert "to add" in dry.stdout
        applied = cli("reconcile")
        assert applied.returncode == 0, applied.stdout + applied.stderr
        again = cli("reconcile", "--dry-run")
        assert again.returncode == 0, again.stdout + again.stderr
        admin = AdminClient(info["base_url"], info["ca_bundle"])
        assert [r for r in admin.requests() if r.method == "PUT"], "the apply wrote through the real SDK"
    finally:
        process.terminate()
        assert process.wait(timeout=15) == 0
        if process.stdout:
            process.stdout.close()
        if process.stderr:
            process.stderr.close()


def test_an_invalid_config_is_amlfw_s_own_one_line_error_and_nothing_listens(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text((EXAMPLES / "public.yaml").read_text(encoding="utf-8").replace("priority: 300", "priority: 99"),
                   encoding="utf-8")
    run = subprocess.run([sys.executable, "-m", "tests.emulator", "--state-dir", str(tmp_path / "s"),
                          "--seed-config", str(bad)], cwd=REPO, capture_output=True, text=True, timeout=60,
                         check=False)
    assert run.returncode == 1
    assert run.stderr.strip().count("\n") == 0, run.stderr
    assert run.stderr.startswith(f"error: {bad}") and "rule_collection_group.priority" in run.stderr
    assert not (tmp_path / "s" / "emulator.json").exists()
    assert not (tmp_path / "s" / "sandbox.yaml").exists()


@pytest.mark.parametrize(("cloud", "tag", "accepted"), [
    ("AzureCloud", "Storage.WestUS2", True),
    ("AzureCloud", "Storage.USGovVirginia", False),  # a Gov tag in a public subscription
    ("AzureUSGovernment", "Storage.USGovVirginia", True),
    ("AzureUSGovernment", "Storage.WestUS2", False),  # and the other way round
])
def test_service_tags_are_checked_against_the_subscription_s_cloud(emulator: Emulator, cloud: str, tag: str,
                                                                  accepted: bool) -> None:
    sub = samples.SUB
    emulator.add_resource_group(sub, samples.RG)
    if cloud != "AzureCloud":
        emulator.set_subscription_cloud(sub, cloud)
    emulator.put_policy(sub, samples.RG, samples.POLICY, samples.policy_body())
    body = samples.group_body([samples.filter_collection(rules=[samples.network_rule(destinationAddresses=[tag])])])
    if accepted:
        emulator.put_rule_collection_group(sub, samples.RG, samples.POLICY, "g", body)
    else:
        with pytest.raises(ArmError, match=tag):
            emulator.put_rule_collection_group(sub, samples.RG, samples.POLICY, "g", body)
