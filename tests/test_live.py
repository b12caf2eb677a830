"""Opt-in: a dry-run against a real subscription (`AMLFW_LIVE_CONFIG=<file> pytest -m live`). Never applies."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.live


@pytest.mark.skipif(not os.environ.get("AMLFW_LIVE_CONFIG"), reason="set AMLFW_LIVE_CONFIG to a real config")
def test_dry_run_against_a_real_subscription() -> None:
    config = os.environ["AMLFW_LIVE_CONFIG"]
    proc = subprocess.run([sys.executable, "-m", "reconciler", "reconcile", "--config", config, "--once",
                           "--dry-run", "--output", "json"], capture_output=True, text=True, timeout=600,
                          check=False)
    assert proc.returncode in (0, 2), proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["mode"] == "dry-run" and doc["targets"]
