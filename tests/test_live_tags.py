"""Live service-tag validation in pre-flight: the Service Tags API (azure-mgmt-network, served by the emulator from
the vendored ServiceTags_Public.json), read once per pass before any write. A wrong tag stops the write with the
tag, the catalogue entry and the fix, and nothing is written.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from reconciler.catalogue import CatalogueStore
from reconciler.catalogue.tagcheck import desired_tags, unknown_tags
from reconciler.compile import compile_target
from reconciler.config import load_config
from reconciler.engine import reconcile_target
from tests.emulator import Emulator
from tests.emulator.reference import ReferenceData
from tests.engine_support import BASELINE, group, seed_policy, unique, write_config, writes

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(op_duration=0.05, observed_defaults=True) as e:
        yield e


@pytest.fixture(autouse=True)
def _env(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in emu.env().items():
        monkeypatch.setenv(k, v)


@pytest.fixture
def wrong_catalogue(tmp_path: Path) -> Path:
    """The shipped catalogue with E-01 undone: the seed's `Keyvault.{region}` instead of `AzureKeyVault.{region}`."""
    root = tmp_path / "catalogue"
    shutil.copytree(REPO / "config" / "catalogue", root)
    path = root / BASELINE / "service-tags.yaml"
    text = path.read_text(encoding="utf-8")
    assert "value: AzureKeyVault.{region}" in text
    path.write_text(text.replace("value: AzureKeyVault.{region}", "value: Keyvault.{region}"), encoding="utf-8")
    return root


def _sdk_requests(emu: Emulator, needle: str) -> list[str]:
    return [r.path for r in emu.requests() if needle in r.path.lower()]


def test_keyvault_westus2_stops_the_write_with_tag_entry_and_fix(emu: Emulator, tmp_path: Path,
                                                                  wrong_catalogue: Path) -> None:
    policy = unique("fwpol")
    seed_policy(emu, policy)
    path = write_config(tmp_path, emu, policy, features=["hbi_workspace"])
    emu.clear_requests()
    env = {**os.environ, **emu.env(), "AMLFW_CATALOGUE_DIR": str(wrong_catalogue)}
    result = subprocess.run([sys.executable, "-m", "reconciler", "reconcile", "--config", str(path), "--once"],
                            env=env, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 1, result.stdout + result.stderr
    report = result.stdout + result.stderr
    assert "service tag Keyvault.WestUS2 (catalogue entry tag.azure-key-vault) is not served by the Service Tags " \
           "API in westus2: no such tag; did you mean AzureKeyVault.WestUS2?" in report
    assert "Traceback" not in report
    assert writes(emu, policy) == [] and group(emu, policy) is None  # nothing written
    assert len(_sdk_requests(emu, "/servicetags")) == 1  # one GET of the Service Tags API for the pass


def test_correct_tags_pass_and_the_api_is_read_once_per_pass(emu: Emulator, tmp_path: Path) -> None:
    policy = unique("fwpol")
    seed_policy(emu, policy)
    path = write_config(tmp_path, emu, policy, features=["hbi_workspace", "compute"])
    store = CatalogueStore()
    target = load_config(path, store.get).targets[0]
    desired = compile_target(target, store.get(target.catalogue_version))
    emu.clear_requests()
    out = reconcile_target(target, desired, dry_run=False)
    assert out.status == "applied", out.error
    assert len(_sdk_requests(emu, "/servicetags")) == 1
    emu.clear_requests()
    assert reconcile_target(target, desired, dry_run=True).status == "in_sync"
    assert _sdk_requests(emu, "/servicetags") == []  # in sync: no pre-flight, no tag read


def test_regional_suffix_not_available_names_the_global_tag(reference: ReferenceData, tmp_path: Path) -> None:
    store = CatalogueStore()
    doc = reference.service_tags_document()
    served = {v["name"] for v in doc["values"]}
    path = tmp_path / "c.yaml"
    path.write_text(f"""
catalogue: {BASELINE}
cloud: AzureCloud
subscription_id: 00000000-0000-0000-0000-0000000000aa
firewall_policy: {{resource_group: rg, name: p}}
rule_collection_group: {{name: azureml-egress, priority: 300}}
workspaces:
  - {{name: ws, region: westus2, source_addresses: [10.0.0.0/24], features: [hbi_workspace]}}
""", encoding="utf-8")
    target = load_config(path, store.get).targets[0]
    desired = compile_target(target, store.get(target.catalogue_version))
    tags = desired_tags(desired)
    assert "AzureKeyVault.WestUS2" in tags and tags["AzureKeyVault.WestUS2"] == ("tag.azure-key-vault",)
    assert unknown_tags(desired, served, "westus2") == []
    # the region's suffix missing from the API's list: the fix names the global tag
    without = served - {"AzureKeyVault.WestUS2"}
    [(tag, message)] = unknown_tags(desired, without, "westus2")
    assert tag == "AzureKeyVault.WestUS2"
    assert "the regional suffix .WestUS2 is not available for AzureKeyVault here: use AzureKeyVault (global)" in message


def test_a_us_government_target_is_checked_against_the_gov_list(emu: Emulator, tmp_path: Path) -> None:
    """USGovVirginia suffixes exist only in the Gov list: the check uses the subscription's own cloud."""
    from tests.engine_support import SUB

    policy = unique("fwpol")
    seed_policy(emu, policy)
    emu.set_subscription_cloud(SUB, "AzureUSGovernment")
    try:
        path = write_config(tmp_path, emu, policy, extra={"cloud": "AzureUSGovernment"}, workspaces=[{
            "name": "mlws-gov", "region": "usgovvirginia", "storage_account": "mlwsgovsa",
            "source_addresses": ["10.20.0.0/24"], "features": ["hbi_workspace"]}])
        store = CatalogueStore()
        target = load_config(path, store.get).targets[0]
        desired = compile_target(target, store.get(target.catalogue_version))
        assert "Storage.USGovVirginia" in desired_tags(desired)
        out = reconcile_target(target, desired, dry_run=True)
        assert out.status == "drift", out.error
        assert out.plan is not None and out.plan.errors == ()
    finally:
        emu.set_subscription_cloud(SUB, "AzureCloud")
