"""``python -m tests.emulator`` as a separate process, driven through emulator.json and ``AdminClient``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.identity import DefaultAzureCredential
from azure.mgmt.network import NetworkManagementClient

from tests.emulator import ArmError
from tests.emulator.admin import AdminClient
from tests.emulator.api import FOREIGN_CREDENTIAL_ENV
from tests.emulator.examples import EXAMPLE_POLICY, EXAMPLE_SUB
from tests.emulator.reference import REPO_ROOT
from tests.emulator.samples import group_body

STARTUP_BUDGET = 3.0  # seconds; the target (and the usual measurement) is well under one second


class Running:
    def __init__(self, process: subprocess.Popen[bytes], state_dir: Path, startup: float) -> None:
        self.process = process
        self.state_dir = state_dir
        self.startup = startup
        self.info: dict[str, Any] = json.loads((state_dir / "emulator.json").read_text("utf-8"))

    def stop(self, signum: int = signal.SIGTERM) -> int:
        self.process.send_signal(signum)
        return self.process.wait(timeout=10)


def start(state_dir: Path, *args: str) -> Running:
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.emulator", "--state-dir", str(state_dir), *args],
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    state_file = state_dir / "emulator.json"
    while not state_file.exists():
        if process.poll() is not None:
            assert process.stderr is not None
            raise AssertionError(process.stderr.read().decode())
        if time.perf_counter() - started > 10:
            process.kill()
            process.wait()
            raise AssertionError("emulator.json did not appear within 10 s")
        time.sleep(0.005)
    return Running(process, state_dir, time.perf_counter() - started)


@pytest.fixture
def running(tmp_path: Path) -> Iterator[Running]:
    emulator = start(tmp_path / "state", "--seed-examples", "--op-duration", "0.05")
    try:
        yield emulator
    finally:
        if emulator.process.poll() is None:
            emulator.stop()
        assert emulator.process.stderr is not None
        emulator.process.stderr.close()


def test_start_up_and_state_file(running: Running) -> None:
    assert running.startup < STARTUP_BUDGET
    info = running.info
    assert info["pid"] == running.process.pid
    assert info["base_url"].startswith("https://127.0.0.1:")
    assert info["admin_url"] == info["base_url"] + "/_admin"
    assert Path(info["ca_bundle"]).is_file()
    assert info["env"]["AMLFW_ARM_ENDPOINT"] == info["base_url"]
    assert info["env"]["REQUESTS_CA_BUNDLE"] == info["ca_bundle"]
    assert not list(running.state_dir.glob("*.tmp"))


def test_admin_client_and_sdk_against_the_process(running: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    admin = AdminClient.from_state_dir(running.state_dir)
    assert admin.health()
    assert len(admin.list_rule_collection_groups(EXAMPLE_SUB, "rg1", EXAMPLE_POLICY)) == 5
    assert admin.get_rule_collection_group(EXAMPLE_SUB, "rg1", EXAMPLE_POLICY, "missing") is None
    admin.put_rule_collection_group(EXAMPLE_SUB, "rg1", EXAMPLE_POLICY, "manual", group_body())
    with pytest.raises(ArmError) as invalid:
        admin.put_rule_collection_group(EXAMPLE_SUB, "rg1", EXAMPLE_POLICY, "bad", group_body(priority=1))
    assert invalid.value.code == "FirewallPolicyRuleCollectionGroupInvalidPriority"
    admin.inject("503", method="GET", path_contains="/ruleCollectionGroups")
    admin.clear_requests()

    for name in FOREIGN_CREDENTIAL_ENV:
        monkeypatch.delenv(name, raising=False)
    for name, value in running.info["env"].items():
        monkeypatch.setenv(name, value)
    with (
        DefaultAzureCredential() as credential,
        NetworkManagementClient(credential, EXAMPLE_SUB, base_url=running.info["base_url"], polling_interval=0) as net,
    ):
        names = [group.name for group in net.firewall_policy_rule_collection_groups.list("rg1", EXAMPLE_POLICY)]
        assert "manual" in names
        net.firewall_policy_rule_collection_groups.begin_delete("rg1", EXAMPLE_POLICY, "manual").result()

    records = admin.requests()
    assert records[0].status == 503  # the injected fault, absorbed by the SDK's retry
    assert [r.method for r in records if r.is_write] == ["DELETE"]
    assert admin.overlapping_writes(EXAMPLE_SUB, "rg1", EXAMPLE_POLICY) == []
    assert admin.get_rule_collection_group(EXAMPLE_SUB, "rg1", EXAMPLE_POLICY, "manual") is None

    admin.set_operation_duration(0.2)
    admin.start_foreign_writer(EXAMPLE_SUB, "rg1", EXAMPLE_POLICY, hold_seconds=0.2)
    policy = admin.get_policy(EXAMPLE_SUB, "rg1", EXAMPLE_POLICY)
    assert policy is not None
    assert policy["properties"]["provisioningState"] == "Updating"
    admin.stop_foreign_writer()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly(tmp_path: Path, signum: int) -> None:
    emulator = start(tmp_path / "state")
    try:
        assert emulator.stop(signum) == 0
        assert not (emulator.state_dir / "emulator.json").exists()
    finally:
        assert emulator.process.stderr is not None
        errors = emulator.process.stderr.read().decode()
        emulator.process.stderr.close()
    assert errors == ""


def test_reference_dir_override(tmp_path: Path) -> None:
    """``AMLFW_REFERENCE_DIR`` is the one override of the vendored ``reference/`` folder."""
    env = {**os.environ, "AMLFW_REFERENCE_DIR": str(tmp_path / "elsewhere")}
    process = subprocess.run(
        [sys.executable, "-c", "from tests.emulator.reference import ReferenceData; print(ReferenceData.at().root)"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=True, timeout=30,
    )
    assert process.stdout.strip() == str((tmp_path / "elsewhere").resolve())
    unset = {k: v for k, v in os.environ.items() if k != "AMLFW_REFERENCE_DIR"}
    process = subprocess.run(
        [sys.executable, "-c", "from tests.emulator.reference import ReferenceData; print(ReferenceData.at().root)"],
        cwd=REPO_ROOT, env=unset, capture_output=True, text=True, check=True, timeout=30,
    )
    assert process.stdout.strip() == str(REPO_ROOT / "reference")


@pytest.mark.parametrize("layout", ["no-folder", "partial-folder"])
def test_emulator_refuses_to_start_without_its_data(tmp_path: Path, layout: str) -> None:
    """No reference data: one line on stderr and exit 1 before listening, never a 500 on every PUT."""
    root = tmp_path / "reference"
    if layout == "partial-folder":
        (root / "service-tags").mkdir(parents=True)
    env = {**os.environ, "AMLFW_REFERENCE_DIR": str(root)}
    process = subprocess.run(
        [sys.executable, "-m", "tests.emulator", "--state-dir", str(tmp_path / "state")],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=30,
    )
    assert process.returncode == 1
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1, process.stderr
    assert lines[0].startswith("error: reference data ")
    assert str(root) in lines[0]
    assert "Traceback" not in process.stderr
    assert not (tmp_path / "state" / "emulator.json").exists()
