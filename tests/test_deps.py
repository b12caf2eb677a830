"""`amlfw deps`: a workspace's own dependency list (Azure ML API) against the compiled rules."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reconciler.deps import Dependency, check_dependencies, parse_dependencies
from tests.emulator import Emulator
from tests.engine_support import SUB, compiled, seed_policy, unique, write_config

API_BODY: dict[str, Any] = {"value": [
    {"properties": {"category": "Azure Active Directory", "endpoints": [
        {"domainName": "login.microsoftonline.com", "endpointDetails": [{"port": 80}, {"port": 443}]}]}},
    {"properties": {"category": "API", "endpoints": [
        {"domainName": "*.azureml.ms", "endpointDetails": [{"port": 443}]},
        {"domainName": "westus2.api.azureml.ms", "endpointDetails": [{"port": 443}]}]}},
    {"properties": {"category": "Compute", "endpoints": [
        {"domainName": "westus2.tundra.azureml.ms", "endpointDetails": [{"port": 5831}]},
        {"domainName": "*.instances.azureml.ms", "endpointDetails": [{"port": 443}]}]}},
]}


def test_parse_flattens_and_lowercases() -> None:
    deps = parse_dependencies({"value": [{"properties": {"category": "X", "endpoints": [
        {"domainName": "Login.MicrosoftOnline.com", "endpointDetails": [{"port": 443}, {"port": 80}]},
        {"domainName": "", "endpointDetails": [{"port": 1}]}]}}]})
    assert deps == [Dependency("X", "login.microsoftonline.com", 80), Dependency("X", "login.microsoftonline.com", 443)]
    assert parse_dependencies(None) == []


def test_wildcard_semantics_and_ports(tmp_path: Path) -> None:
    emu_less = write_config_offline(tmp_path)
    _, desired = compiled(emu_less)
    checks = {(c.domain, c.port): c for c in check_dependencies(desired, "mlws-prod", parse_dependencies(API_BODY))}
    assert checks[("login.microsoftonline.com", 443)].covered
    assert checks[("login.microsoftonline.com", 80)].covered  # the seed's table gives 80 and 443
    assert checks[("*.azureml.ms", 443)].covered_by == ("hosts.aml.star-azureml-ms",)
    assert checks[("westus2.api.azureml.ms", 443)].covered  # *.azureml.ms covers a sub-domain
    assert checks[("*.instances.azureml.ms", 443)].covered  # the narrower wildcard, by *.azureml.ms too
    assert not checks[("westus2.tundra.azureml.ms", 5831)].covered  # UDP 5831 is newer than the 2021 catalogue


def write_config_offline(tmp: Path, catalogue: str = "azureml-2021.11") -> Path:
    class _Fake:
        base_url = "https://127.0.0.1:1"

    return write_config(tmp, _Fake(), "fwpol-offline", features=["compute"],  # type: ignore[arg-type]
                        extra={"catalogue": catalogue})


def test_a_newer_catalogue_closes_the_gap(tmp_path: Path) -> None:
    _, desired = compiled(write_config_offline(tmp_path, "azureml-2026.03"))
    (check,) = check_dependencies(desired, "mlws-prod", [Dependency("Compute", "westus2.tundra.azureml.ms", 5831)])
    assert check.covered


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(op_duration=0.0) as e:
        yield e


def test_cli_reads_the_api_and_reports_gaps(emu: Emulator, tmp_path: Path) -> None:
    policy = unique("fwpol")
    seed_policy(emu, policy)
    emu.seed_workspace_dependencies(SUB, "rg-ml", "mlws-prod", API_BODY)
    path = write_config(tmp_path, emu, policy, workspaces=[{
        "name": "mlws-prod", "region": "westus2", "storage_account": "mlwsprodsa", "resource_group": "rg-ml",
        "source_addresses": ["10.20.0.0/24"], "features": ["compute"]}])
    env = {**os.environ, **emu.env()}
    emu.clear_requests()
    proc = subprocess.run([sys.executable, "-m", "reconciler", "deps", "--config", str(path), "--output", "json"],
                          env=env, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2, proc.stderr
    doc = json.loads(proc.stdout)
    missing = [(e["domain"], e["port"]) for e in doc["endpoints"] if not e["covered"]]
    assert missing == [("westus2.tundra.azureml.ms", 5831)]
    assert {r.method for r in emu.requests()} == {"GET"}

    text = subprocess.run([sys.executable, "-m", "reconciler", "deps", "--config", str(path)], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert text.returncode == 2 and "MISSING  westus2.tundra.azureml.ms" in text.stdout


def test_cli_unknown_workspace_is_an_error_and_missing_rg_is_skipped(emu: Emulator, tmp_path: Path) -> None:
    policy = unique("fwpol")
    seed_policy(emu, policy)
    path = write_config(tmp_path, emu, policy, workspaces=[
        {"name": "mlws-nope", "region": "westus2", "resource_group": "rg-ml", "storage_account": "nopesa",
         "source_addresses": ["10.20.0.0/24"], "features": ["compute"]},
        {"name": "mlws-other", "region": "westus2", "storage_account": "othersa",
         "source_addresses": ["10.21.0.0/24"], "features": ["compute"]}])
    proc = subprocess.run([sys.executable, "-m", "reconciler", "deps", "--config", str(path)],
                          env={**os.environ, **emu.env()}, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1
    assert "mlws-nope" in proc.stdout and "status=404" in proc.stdout
    assert "skipped" in proc.stdout and "mlws-other" in proc.stdout


@pytest.mark.parametrize("body", [{"value": "x"}, {"value": [{"properties": "x"}]},
                                  {"value": [{"properties": {"endpoints": [5]}}]}])
def test_cli_malformed_dependency_answer_is_a_typed_error(emu: Emulator, tmp_path: Path, body: Any) -> None:
    policy = unique("fwpol")
    seed_policy(emu, policy)
    emu.seed_workspace_dependencies(SUB, "rg-ml", "mlws-bad", body)
    path = write_config(tmp_path, emu, policy, workspaces=[{
        "name": "mlws-bad", "region": "westus2", "storage_account": "mlwsbadsa", "resource_group": "rg-ml",
        "source_addresses": ["10.20.0.0/24"], "features": ["compute"]}])
    proc = subprocess.run([sys.executable, "-m", "reconciler", "deps", "--config", str(path)],
                          env={**os.environ, **emu.env()}, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stdout + proc.stderr
    assert "malformed answer" in proc.stdout and "url=https://" in proc.stdout
