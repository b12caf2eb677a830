"""`amlfw render` and `amlfw catalogue` driven as a user drives them: a subprocess, exit codes, stdout/stderr.

Contract for bad input: exit 1, exactly one line `error: <file>:<key>: <reason>` on stderr (file-level problems
have no key: `error: <file>: <reason>`), no traceback, nothing on stdout, and `--output FILE` is not written.
Usage errors exit 1 as well (2 means drift for `reconcile --dry-run`).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.model import Catalogue

RunAmlfw = Callable[..., subprocess.CompletedProcess[str]]  # the `run_amlfw` fixture of conftest.py

SUB = "00000000-0000-0000-0000-000000000001"


def _ws(**extra: Any) -> dict[str, Any]:
    return {"name": "mlws", "region": "westus2", "storage_account": "mlwssa", "source_addresses": ["10.0.0.0/24"],
            "features": ["compute"], **extra}


def _target(**extra: Any) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "cloud": "AzureCloud", "subscription_id": SUB,
        "firewall_policy": {"resource_group": "rg-hub", "name": "fwpol-hub"},
        "rule_collection_group": {"name": "azureml-egress", "priority": 300},
        "workspaces": [_ws()],
    }
    doc.update(extra)
    return {k: v for k, v in doc.items() if v is not None}


def _fleet_with_second(**second: Any) -> dict[str, Any]:
    first = _target()
    return {"defaults": {"cloud": "AzureCloud", "subscription_id": SUB},
            "targets": [{k: v for k, v in first.items() if k not in ("cloud", "subscription_id")} | {"name": "one"},
                        {**{k: v for k, v in first.items() if k not in ("cloud", "subscription_id")},
                         "name": "two", **second}]}


# (id, file content (a document, or raw text), key in the message ("" = file-level), part of the reason)
BAD_INPUT: list[tuple[str, Any, str, str]] = [
    ("unknown-feature", _target(workspaces=[_ws(features=["compute", "warp_drive"])]), "workspaces[0].features[1]",
     "unknown feature 'warp_drive'"),
    ("unknown-region", _target(workspaces=[_ws(region="atlantis")]), "workspaces[0].region", "unknown region"),
    ("unknown-cloud", _target(cloud="AzureGermanCloud"), "cloud", "unknown cloud"),
    ("malformed-cidr", _target(workspaces=[_ws(source_addresses=["10.0.0.0/33"])]),
     "workspaces[0].source_addresses[0]", "malformed address or CIDR"),
    ("storage-missing", _target(workspaces=[_ws(storage_account=None)]), "workspaces[0].storage_account",
     "required by feature compute"),
    ("yaml-syntax", "cloud: AzureCloud\nworkspaces: [\n  - name: x\n", "", "YAML syntax error at line"),
    ("yaml-tab", "cloud: AzureCloud\n\tsubscription_id: x\n", "", "YAML syntax error"),
    ("yaml-duplicate-key", yaml.safe_dump(_target()) + "cloud: AzureChinaCloud\n", "", "duplicate key 'cloud'"),
    ("duplicate-workspace", _target(workspaces=[_ws(), _ws(name="MLws")]), "workspaces[1].name",
     "duplicate workspace name"),
    ("group-priority-low", _target(rule_collection_group={"name": "g", "priority": 50}),
     "rule_collection_group.priority", "outside 100-65000"),
    ("group-priority-high", _target(rule_collection_group={"name": "g", "priority": 70000}),
     "rule_collection_group.priority", "outside 100-65000"),
    ("workspace-priority-low", _target(workspaces=[_ws(priority=1)]), "workspaces[0].priority", "outside 100-65000"),
    ("workspace-priority-high", _target(workspaces=[_ws(priority=65001)]), "workspaces[0].priority",
     "outside 100-65000"),
    ("workspace-priority-overflow", _target(workspaces=[_ws(priority=65000)]), "workspaces[0].priority",
     "would exceed 65000"),
    ("unknown-top-key", _target(firewal={"tier": "Premium"}), "firewal", "unknown key"),
    ("unknown-workspace-key", _target(workspaces=[_ws(storage="x")]), "workspaces[0].storage", "unknown key"),
    ("empty-file", "", "", "the file is empty"),
    ("fleet-duplicate-group", _fleet_with_second(), "targets[1].rule_collection_group.name",
     "already owned by targets[0]"),
    ("fleet-duplicate-priority", _fleet_with_second(rule_collection_group={"name": "other", "priority": 300}),
     "targets[1].rule_collection_group.priority", "already used by targets[0]"),
]


def _assert_one_error_line(stderr: str, file: str, key: str, reason: str) -> None:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    prefix = f"error: {file}:{key}: " if key else f"error: {file}: "
    assert lines[0].startswith(prefix), lines[0]
    assert reason in lines[0]
    assert "Traceback" not in stderr


@pytest.mark.parametrize(("content", "key", "reason"), [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT])
def test_bad_config(tmp_path: Path, run_amlfw: RunAmlfw, content: Any, key: str, reason: str) -> None:
    config = tmp_path / "amlfw.yaml"
    config.write_text(content if isinstance(content, str) else yaml.safe_dump(content, sort_keys=False),
                      encoding="utf-8")
    out = tmp_path / "out.json"
    r = run_amlfw("render", "--config", str(config), "--format", "arm", "--output", str(out))
    assert r.returncode == 1
    assert r.stdout == ""
    _assert_one_error_line(r.stderr, str(config), key, reason)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["amlfw.yaml"]  # no temporary file left behind either


@pytest.mark.parametrize(("make", "reason"), [
    (lambda p: p / "missing.yaml", "cannot read file: no such file"),
    (lambda p: p, "cannot read file: is a directory"),
], ids=["missing", "directory"])
def test_unreadable_config(tmp_path: Path, run_amlfw: RunAmlfw, make: Any, reason: str) -> None:
    path = make(tmp_path)
    r = run_amlfw("render", "--config", str(path), "--output", str(tmp_path / "out.txt"))
    assert (r.returncode, r.stdout) == (1, "")
    _assert_one_error_line(r.stderr, str(path), "", reason)
    assert not (tmp_path / "out.txt").exists()


def test_relative_config_path_is_reported_as_given(tmp_path: Path, run_amlfw: RunAmlfw) -> None:
    (tmp_path / "amlfw.yaml").write_text(yaml.safe_dump(_target(cloud="Mars")), encoding="utf-8")
    r = run_amlfw("render", "--config", "amlfw.yaml", cwd=tmp_path)
    assert r.returncode == 1
    _assert_one_error_line(r.stderr, "amlfw.yaml", "cloud", "unknown cloud 'Mars'")


@pytest.mark.parametrize("args", [
    ["render", "--config", "x.yaml", "--frobnicate"],
    ["render"],
    ["render", "--config", "x.yaml", "--format", "xml"],
    ["teleport"],
    [],
], ids=["unknown-flag", "missing-config", "bad-choice", "unknown-command", "no-command"])
def test_usage_errors_exit_1_not_2(run_amlfw: RunAmlfw, args: list[str]) -> None:
    r = run_amlfw(*args)
    assert r.returncode == 1
    assert r.stdout == ""
    assert "error:" in r.stderr
    assert "Traceback" not in r.stderr


def test_unwritable_output(tmp_path: Path, run_amlfw: RunAmlfw, examples_dir: Path) -> None:
    target = tmp_path / "no-such-dir" / "out.json"
    r = run_amlfw("render", "--config", str(examples_dir / "china.yaml"), "--output", str(target))
    assert (r.returncode, r.stdout) == (1, "")
    errors = [line for line in r.stderr.splitlines() if not line.startswith("warning: ")]
    assert errors == [f"error: {target}: cannot write file: No such file or directory"]


def test_failed_output_leaves_no_temporary_file(tmp_path: Path, run_amlfw: RunAmlfw, examples_dir: Path) -> None:
    (tmp_path / "out").mkdir()
    r = run_amlfw("render", "--config", str(examples_dir / "china.yaml"), "--output", "out", cwd=tmp_path)
    assert r.returncode == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_inbound_udr_without_route_table_is_a_warning(tmp_path: Path, run_amlfw: RunAmlfw) -> None:
    config = tmp_path / "amlfw.yaml"
    config.write_text(yaml.safe_dump(_target(workspaces=[_ws(features=["inbound_udr"], storage_account=None)])),
                      encoding="utf-8")
    r = run_amlfw("render", "--config", str(config), "--format", "arm")
    assert r.returncode == 0, r.stderr
    lines = r.stderr.splitlines()
    assert lines
    assert all(line.startswith(("warning: ", "allows: ")) for line in lines)
    assert any("route-table-missing" in line for line in lines)
    doc = json.loads(r.stdout)
    assert doc["targets"][0]["routes"] == []
    assert doc["targets"][0]["routeTable"] is None


def test_fleet_renders_every_target(run_amlfw: RunAmlfw, examples_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "fleet.json"
    r = run_amlfw("render", "--config", str(examples_dir / "fleet.yaml"), "--format", "arm", "--output", str(out))
    assert r.returncode == 0, r.stderr
    assert r.stdout == ""  # the report went to the file
    doc = json.loads(out.read_text(encoding="utf-8"))
    fleet = yaml.safe_load((examples_dir / "fleet.yaml").read_text(encoding="utf-8"))
    assert [t["name"] for t in doc["targets"]] == [t["name"] for t in fleet["targets"]]
    assert {t["cloud"] for t in doc["targets"]} == {"AzureCloud", "AzureUSGovernment"}
    for t in doc["targets"]:
        (group,) = t["ruleCollectionGroups"]
        assert group["name"] == "azureml-egress"
        assert group["properties"]["ruleCollections"]


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_other_formats(run_amlfw: RunAmlfw, examples_dir: Path, fmt: str) -> None:
    r = run_amlfw("render", "--config", str(examples_dir / "fleet.yaml"), "--format", fmt)
    assert r.returncode == 0, r.stderr
    for name in ("prod-westeurope", "prod-eastus", "gov-virginia"):
        assert name in r.stdout
    if fmt == "json":
        assert json.loads(r.stdout)["format_version"] == 1
    if fmt == "csv":
        header = "target,workspace,direction,destination,kind,protocol,port,enforced_as,why,entry_id"
        assert r.stdout.splitlines()[0] == header


@pytest.mark.parametrize("fmt", ["arm", "csv"])
def test_output_does_not_depend_on_hash_seed(run_amlfw: RunAmlfw, examples_dir: Path, fmt: str) -> None:
    """Sets of strings iterate in a per-process order; nothing of it may leak into the output."""
    outs = {
        run_amlfw("render", "--config", str(examples_dir / "fleet.yaml"), "--format", fmt,
                  env={"PYTHONHASHSEED": seed}).stdout
        for seed in ("1", "2")
    }
    assert len(outs) == 1


# ------------------------------------------------------------------------------------------------ start-up


def _imported_modules(stderr: str) -> set[str]:
    """Module names from `python -X importtime` output."""
    mods = set()
    for line in stderr.splitlines():
        m = re.match(r"^import time:\s+\d+\s+\|\s+\d+\s+\|\s+(\S+)", line)
        if m:
            mods.add(m.group(1).strip())
    return mods


@pytest.mark.parametrize("args", [["--help"], ["render", "--config", "{examples}/public.yaml", "--format", "arm"],
                                  ["catalogue", "list", "--cloud", "AzureCloud"]],
                         ids=["help", "render", "catalogue-list"])
def test_offline_commands_never_import_the_azure_sdk(
    args: list[str], examples_dir: Path, repo_root: Path, run_amlfw: RunAmlfw
) -> None:
    argv = [a.replace("{examples}", str(examples_dir)) for a in args]
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "reconciler", *argv], capture_output=True,
                       text=True, cwd=repo_root, check=False, timeout=60)
    assert r.returncode == 0, r.stderr[-2000:]
    mods = _imported_modules(r.stderr)
    assert "reconciler.cli" in mods
    azure = sorted(m for m in mods if m == "azure" or m.startswith("azure."))
    assert azure == []
    # measured, never asserted: start-up time is machine-dependent (see it with `pytest -s`)
    started = time.perf_counter()
    assert run_amlfw(*argv).returncode == 0
    print(f"\nstart-up: amlfw {' '.join(args[:2])}: {(time.perf_counter() - started) * 1000:.0f} ms wall, "
          f"{len(mods)} modules imported")


# ------------------------------------------------------------------------------------------------ catalogue


def test_catalogue_list(run_amlfw: RunAmlfw, catalogue: Catalogue) -> None:
    r = run_amlfw("catalogue", "list")
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines()[0] == f"catalogue {catalogue.version}: {len(catalogue.entries)} entries"
    assert "tag.storage" in r.stdout

    r = run_amlfw("catalogue", "list", "--cloud", "AzureChinaCloud", "--format", "json")
    assert r.returncode == 0, r.stderr
    entries = json.loads(r.stdout)["entries"]
    assert entries
    assert all("AzureChinaCloud" in e["clouds"] for e in entries)
    assert {e["id"] for e in entries} == {e.id for e in catalogue.entries if "AzureChinaCloud" in e.clouds}

    r = run_amlfw("catalogue", "list", "--cloud", "AzureCloud", "--feature", "notebooks", "--format", "json")
    assert r.returncode == 0, r.stderr
    entries = json.loads(r.stdout)["entries"]
    assert entries
    assert all("AzureCloud" in e["clouds"] and {"baseline", "notebooks"} & set(e["features"]) for e in entries)
    assert any("notebooks" in e["features"] for e in entries)
    assert any("baseline" in e["features"] for e in entries)


def test_catalogue_list_feature_includes_implied_features(run_amlfw: RunAmlfw, catalogue: Catalogue) -> None:
    implied = next(f for f in catalogue.features if f.implies)
    r = run_amlfw("catalogue", "list", "--cloud", "AzureCloud", "--feature", implied.name, "--format", "json")
    assert r.returncode == 0, r.stderr
    features = {f for e in json.loads(r.stdout)["entries"] for f in e["features"]}
    assert set(implied.implies) <= features


@pytest.mark.parametrize(("args", "message"), [
    (["catalogue", "list", "--feature", "warp_drive"], "error: --feature: unknown feature 'warp_drive'"),
    (["catalogue", "list", "--version", "azureml-1999.01"], "error: --version: unknown catalogue version"),
    (["catalogue", "validate", "--version", "azureml-1999.01"], "error: --version: unknown catalogue version"),
], ids=["feature", "list-version", "validate-version"])
def test_catalogue_usage_mistakes(run_amlfw: RunAmlfw, args: list[str], message: str) -> None:
    r = run_amlfw(*args)
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr.startswith(message)
    assert len(r.stderr.splitlines()) == 1


def test_catalogue_validate_shipped(run_amlfw: RunAmlfw, catalogue: Catalogue) -> None:
    r = run_amlfw("catalogue", "validate")
    assert r.returncode == 0, r.stderr
    assert f"catalogue {catalogue.version}: {len(catalogue.entries)} entries, valid" in r.stdout
    # advisory only: tags the docs use but Microsoft's networkFeatures data does not mark usable there
    assert all(line.startswith("warning: ") and "does not mark" in line for line in r.stderr.splitlines())


_ENTRY = {"direction": "outbound", "ports": ["TCP:443"], "clouds": ["AzureCloud"], "features": ["baseline"],
          "purpose": "test", "provenance": {"section": "test"}, "strategy": "common"}
BROKEN: list[tuple[str, dict[str, Any], str, list[str]]] = [
    ("keyvault-tag", {"id": "zz.keyvault", "kind": "service_tag", "value": "Keyvault.{region}"}, "validate",
     ["zz.keyvault", "Keyvault has no regional tags"]),
    ("unknown-tag", {"id": "zz.frontdoor", "kind": "service_tag", "value": "Frontdoor.FirstParty"}, "validate",
     ["zz.frontdoor", "unknown service tag 'Frontdoor.FirstParty'"]),
    ("tag-casing", {"id": "zz.frontend", "kind": "service_tag", "value": "AzureFrontDoor.FrontEnd",
                    "ports": ["TCP:8443"]}, "validate",
     ["zz.frontend", "spelled 'AzureFrontDoor.Frontend'"]),
    ("duplicate-id", {"id": "tag.storage", "kind": "fqdn", "value": "example.com"}, "load",
     ["entries[0].id", "duplicate id 'tag.storage'"]),
    ("wildcard-without-dot", {"id": "zz.blob", "kind": "wildcard_fqdn", "value": "*blob.core.windows.net"}, "load",
     ["entries[0](zz.blob).value", "a leading wildcard must be followed by a dot"]),
    ("space-in-host", {"id": "zz.space", "kind": "fqdn", "value": "login.microsoft online.com"}, "load",
     ["entries[0](zz.space).value", "contains whitespace"]),
    ("app-port-over-64000", {"id": "zz.port", "kind": "fqdn", "value": "example.com", "ports": ["Https:64500"]},
     "load", ["entries[0](zz.port).ports[0]", "application rules take ports up to 64000"]),
    ("key-twice", {"id": "zz.twice", "kind": "fqdn", "value": "example.com", "ports": "REPEAT"}, "load",
     ["zz-broken.yaml: YAML syntax error at line", "duplicate key 'ports'"]),
]


@pytest.mark.parametrize(("entry", "stage", "expected"), [c[1:] for c in BROKEN], ids=[c[0] for c in BROKEN])
def test_catalogue_validate_broken_copy(
    tmp_path: Path, run_amlfw: RunAmlfw, catalogue: Catalogue, entry: dict[str, Any], stage: str,
    expected: list[str]
) -> None:
    """A copy of the shipped catalogue plus one bad entry file: exit 1 and a message naming the problem."""
    shipped = Path(catalogue.path)
    root = tmp_path / "catalogue"
    shutil.copytree(shipped.parent, root, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    version_dir = root / shipped.name
    index = yaml.safe_load((version_dir / "catalogue.yaml").read_text(encoding="utf-8"))
    index["files"].append("zz-broken.yaml")
    (version_dir / "catalogue.yaml").write_text(yaml.safe_dump(index, sort_keys=False, allow_unicode=True),
                                                encoding="utf-8")
    text = yaml.safe_dump({"entries": [{**_ENTRY, **entry}]})
    text = text.replace("ports: REPEAT\n", "ports: ['TCP:443']\n  ports: ['TCP:80']\n")  # a key written twice
    (version_dir / "zz-broken.yaml").write_text(text, encoding="utf-8")
    r = run_amlfw("--catalogue-dir", str(root), "catalogue", "validate", "--version", shipped.name)
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    (line,) = [x for x in r.stderr.splitlines() if not x.startswith("warning: ")]  # usability notes are advisory
    assert line.startswith("error: ")
    for part in expected:
        assert part in line
    if stage == "load":
        assert line.startswith(f"error: {version_dir / 'zz-broken.yaml'}:")
        assert r.stdout == ""
    else:
        assert f"{len(catalogue.entries) + 1} entries, INVALID" in r.stdout
