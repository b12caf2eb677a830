"""Opt-in (`AMLFW_AZCLI=1`, marker `azcli`): the real Azure CLI logs in to the emulator with `az login --identity`,
lists, shows and edits rule collection groups, and amlfw then reports exactly that edit.

The CLI is not a dependency of amlfw; install it beside the project, e.g.

    python3 -m venv .venv-azcli && .venv-azcli/bin/pip install azure-cli
    AMLFW_AZCLI=1 AMLFW_AZ=.venv-azcli/bin/az .venv/bin/python -m pytest -q -m azcli tests/test_azcli.py

(`AMLFW_AZ` defaults to `az` on PATH). The firewall policy commands of the CLI live in an extension that would be
downloaded at run time, so the test uses the core CLI's `az rest`, with the emulator registered as a cloud from
its `/metadata/endpoints`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from reconciler.engine import reconcile_target
from tests.emulator import Emulator
from tests.emulator.pytest_plugin import *  # noqa: F403
from tests.engine_support import RG, SUB, compiled, seed_policy, write_config

pytestmark = [pytest.mark.azcli,
              pytest.mark.skipif(os.environ.get("AMLFW_AZCLI") != "1", reason="set AMLFW_AZCLI=1 (needs azure-cli)")]
ROOT = Path(__file__).resolve().parents[1]
API = "api-version=2026-03-01"


def _az_binary() -> str:
    az = os.environ.get("AMLFW_AZ") or shutil.which("az")
    if not az:
        pytest.fail("AMLFW_AZCLI=1 but no Azure CLI: set AMLFW_AZ or put az on PATH")
    return az


def test_azure_cli_edit_is_reported_by_amlfw(emulator: Emulator, arm_env: dict[str, str], tmp_path: Path) -> None:
    az = _az_binary()
    policy = "fwpol-azcli"
    seed_policy(emulator, policy)
    config = write_config(tmp_path, emulator, policy)
    target, desired = compiled(config)
    assert reconcile_target(target, desired, dry_run=False).status == "applied"

    env = {**os.environ, "AZURE_CONFIG_DIR": str(tmp_path / "azure"), "AZURE_CORE_COLLECT_TELEMETRY": "false",
           "AZURE_CORE_NO_COLOR": "true", "AZURE_CORE_ONLY_SHOW_ERRORS": "true"}

    def run(*args: str) -> Any:
        r = subprocess.run([az, *args, "--output", "json"], capture_output=True, text=True, env=env, timeout=180,
                           check=False)
        assert r.returncode == 0, (args, r.stderr[-2000:])
        return json.loads(r.stdout) if r.stdout.strip() else None

    run("cloud", "register", "--name", "AmlfwEmulator", "--endpoint-resource-manager", emulator.base_url + "/")
    run("cloud", "set", "--name", "AmlfwEmulator")
    accounts = run("login", "--identity")
    assert SUB in {a["id"] for a in accounts}

    groups_url = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.Network/firewallPolicies/{policy}" \
                 "/ruleCollectionGroups"
    listed = run("rest", "--method", "get", "--url", f"{groups_url}?{API}")
    assert {g["name"] for g in listed["value"]} == {"azureml-egress", "platform-baseline"}
    shown = run("rest", "--method", "get", "--url", f"{groups_url}/azureml-egress?{API}")
    collection = shown["properties"]["ruleCollections"][0]
    removed = collection["rules"].pop(0)
    body = {"properties": {"priority": shown["properties"]["priority"],
                           "ruleCollections": shown["properties"]["ruleCollections"]}}
    (tmp_path / "body.json").write_text(json.dumps(body))
    run("rest", "--method", "put", "--url", f"{groups_url}/azureml-egress?{API}",
        "--body", f"@{tmp_path / 'body.json'}")

    r = subprocess.run([sys.executable, "-m", "reconciler", "reconcile", "--config", str(config), "--once",
                        "--dry-run", "--output", "json"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                       check=False, env=dict(os.environ))
    assert r.returncode == 2, r.stderr[-2000:]
    (report,) = json.loads(r.stdout)["targets"]
    changes = [(c["action"], c["collection"], rule["action"], rule["rule"])
               for c in report["changes"] for rule in c["rules"]]
    assert changes == [("change", collection["name"], "add", removed["name"])]
