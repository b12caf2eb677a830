"""F9: the loader. Only regular files are read (a FIFO or a device never hangs the CLI), with a size cap; non-UTF-8
text, malformed reference data, inverted port ranges, oversized values and unsafe resource names are clean errors;
an error line quotes at most about 80 characters of the offending value.

Most cases run the CLI in-process (`reconciler.cli.main`); the ones that could hang run it as a subprocess."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.cli import main
from reconciler.model import Catalogue

SUB = "00000000-0000-0000-0000-000000000001"
ROOT = Path(__file__).resolve().parents[1]


def _target(**extra: Any) -> dict[str, Any]:
    ws = {"name": "mlws", "region": "westus2", "storage_account": "mlwssa", "source_addresses": ["10.0.0.0/24"],
          "features": ["compute"]}
    doc: dict[str, Any] = {"catalogue": "azureml-2021.11", "cloud": "AzureCloud", "subscription_id": SUB,
                           "firewall_policy": {"resource_group": "rg-hub", "name": "fwpol-hub"},
                           "rule_collection_group": {"name": "azureml-egress", "priority": 300},
                           "workspaces": [ws]}
    doc.update(extra)
    return doc


def run_in_process(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_clean_line(err: str, *parts: str, limit: int = 700) -> str:
    lines = [x for x in err.splitlines() if x.strip() and not x.startswith("warning: ")]
    assert len(lines) == 1, err[:2000]
    (line,) = lines
    assert line.startswith("error: ")
    assert "Traceback" not in err
    assert len(line) < limit, f"{len(line)} characters: {line[:300]}"
    longest = max(len(m.group(0)) for m in re.finditer(r"(.)\1*", line))
    assert longest <= 100, f"the line echoes {longest} characters of its input: {line[:300]}"
    for part in parts:
        assert part in line, line
    return line


def _run_cli(*argv: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reconciler", *argv], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, check=False, env={**os.environ, "NO_COLOR": "1"})


@pytest.fixture
def catalogue_copy(tmp_path: Path, catalogue: Catalogue) -> Path:
    root = tmp_path / "catalogue"
    shipped = Path(catalogue.path).parent
    shutil.copytree(shipped, root, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return root


# ------------------------------------------------------------------------------------------ special files


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_as_config_does_not_hang(tmp_path: Path) -> None:
    fifo = tmp_path / "amlfw.yaml"
    os.mkfifo(fifo)
    r = _run_cli("render", "--config", str(fifo))
    assert r.returncode == 1
    assert_one_clean_line(r.stderr, str(fifo), "not a regular file")


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_a_device_as_config_does_not_hang(device: str, capsys: pytest.CaptureFixture[str]) -> None:
    if not os.path.exists(device):
        pytest.skip(f"no {device}")
    code, out, err = run_in_process(capsys, "render", "--config", device)
    assert (code, out) == (1, "")
    assert_one_clean_line(err, device, "not a regular file")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_in_the_catalogue_does_not_hang(tmp_path: Path, catalogue_copy: Path) -> None:
    entry_file = catalogue_copy / "azureml-2021.11" / "aks.yaml"
    entry_file.unlink()
    os.mkfifo(entry_file)
    config = tmp_path / "amlfw.yaml"
    config.write_text(yaml.safe_dump(_target()), encoding="utf-8")
    r = _run_cli("--catalogue-dir", str(catalogue_copy), "render", "--config", str(config))
    assert r.returncode == 1
    assert_one_clean_line(r.stderr, str(entry_file), "not a regular file")


def test_an_oversized_config_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "amlfw.yaml"
    with config.open("wb") as fh:
        fh.write(b"# padding\n" * (1700 * 1024))  # 17 MB of comments
    code, _, err = run_in_process(capsys, "render", "--config", str(config))
    assert code == 1
    assert_one_clean_line(err, "larger than")


# ------------------------------------------------------------------------------------------ catalogue data


def test_non_utf8_catalogue_file(tmp_path: Path, catalogue_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    entry_file = catalogue_copy / "azureml-2021.11" / "aks.yaml"
    entry_file.write_bytes(entry_file.read_bytes() + b"\n# caf\xe9\n")
    config = tmp_path / "amlfw.yaml"
    config.write_text(yaml.safe_dump(_target()), encoding="utf-8")
    code, _, err = run_in_process(capsys, "--catalogue-dir", str(catalogue_copy), "render", "--config", str(config))
    assert code == 1
    assert_one_clean_line(err, str(entry_file), "not UTF-8")


@pytest.mark.parametrize(("value", "reason"), [(5, "expected a list"), ([None], "expected a non-empty string"),
                                               ({"a": 1}, "expected a list")])
def test_malformed_service_tag_features(value: object, reason: str, tmp_path: Path, catalogue_copy: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    path = catalogue_copy / "service-tag-features.yaml"
    path.write_text(yaml.safe_dump({"AzureCloud": {"no_firewall": value}}), encoding="utf-8")
    config = tmp_path / "amlfw.yaml"
    config.write_text(yaml.safe_dump(_target()), encoding="utf-8")
    code, _, err = run_in_process(capsys, "--catalogue-dir", str(catalogue_copy), "render", "--config", str(config))
    assert code == 1
    assert_one_clean_line(err, str(path), "AzureCloud.no_firewall", reason)


def test_malformed_service_tag_names(tmp_path: Path, catalogue_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = catalogue_copy / "service-tag-names.yaml"
    path.write_text(yaml.safe_dump({"AzureCloud": 7}), encoding="utf-8")
    code, _, err = run_in_process(capsys, "--catalogue-dir", str(catalogue_copy), "catalogue", "validate")
    assert code == 1
    assert_one_clean_line(err, str(path))


_ENTRY = {"direction": "outbound", "ports": ["TCP:443"], "clouds": ["AzureCloud"], "features": ["baseline"],
          "purpose": "test", "provenance": {"section": "test"}, "id": "zz.test", "kind": "fqdn",
          "value": "example.com", "strategy": "common"}

BAD_ENTRIES: list[tuple[str, dict[str, Any], list[str]]] = [
    ("inverted-range", {"ports": ["TCP:500-100"]}, ["ports[0]", "starts after it ends"]),
    ("huge-tag", {"kind": "service_tag", "value": "A" * 100_000}, ["value", "longer than"]),
    ("long-tag", {"kind": "service_tag", "value": "A" * 200}, ["value", "longer than 128"]),
    ("huge-fqdn", {"value": "a" * 1_000_000 + ".com"}, ["value"]),
    ("huge-id", {"id": "z" * 5000}, ["id", "up to 64"]),
    ("huge-purpose", {"purpose": "p" * 1_000_000}, ["purpose", "longer than"]),
    ("huge-url", {"kind": "url_path", "value": "example.com/" + "p" * 5000}, ["value", "longer than 2048"]),
    ("huge-unknown-key", {"k" * 100_000: 1}, ["unknown key"]),
]


@pytest.mark.parametrize(("change", "parts"), [c[1:] for c in BAD_ENTRIES], ids=[c[0] for c in BAD_ENTRIES])
def test_bad_catalogue_entry(change: dict[str, Any], parts: list[str], catalogue_copy: Path,
                             capsys: pytest.CaptureFixture[str]) -> None:
    version_dir = catalogue_copy / "azureml-2021.11"
    index = yaml.safe_load((version_dir / "catalogue.yaml").read_text(encoding="utf-8"))
    index["files"].append("zz-broken.yaml")
    (version_dir / "catalogue.yaml").write_text(yaml.safe_dump(index, sort_keys=False, allow_unicode=True),
                                                encoding="utf-8")
    (version_dir / "zz-broken.yaml").write_text(yaml.safe_dump({"entries": [{**_ENTRY, **change}]}),
                                                encoding="utf-8")
    code, _, err = run_in_process(capsys, "--catalogue-dir", str(catalogue_copy), "catalogue", "validate",
                                  "--version", "azureml-2021.11")
    assert code == 1
    assert_one_clean_line(err, "zz-broken.yaml", *parts)


# ------------------------------------------------------------------------------------------ configuration

HUGE = "x" * 1_000_000

BAD_CONFIGS: list[tuple[str, dict[str, Any], list[str]]] = [
    ("dotdot-ip-group-rg", _target(workspaces=[{
        "name": "mlws", "region": "westus2", "features": ["compute"],
        "source_ip_groups": [f"/subscriptions/{SUB}/resourceGroups/../providers/Microsoft.Network/ipGroups/g"]}]),
     ["source_ip_groups[0]", "invalid IP group id"]),
    ("dot-ip-group-rg", _target(workspaces=[{
        "name": "mlws", "region": "westus2", "features": ["compute"],
        "source_ip_groups": [f"/subscriptions/{SUB}/resourceGroups/./providers/Microsoft.Network/ipGroups/g"]}]),
     ["source_ip_groups[0]", "invalid IP group id"]),
    ("dotdot-rg", _target(firewall_policy={"resource_group": "..", "name": "fwpol"}),
     ["firewall_policy.resource_group", "invalid resource group"]),
    ("huge-policy-name", _target(firewall_policy={"resource_group": "rg", "name": HUGE}),
     ["firewall_policy.name"]),
    ("huge-cidr", _target(workspaces=[{"name": "mlws", "region": "westus2", "features": ["compute"],
                                       "source_addresses": [HUGE]}]), ["source_addresses[0]"]),
    ("huge-region", _target(workspaces=[{"name": "mlws", "region": HUGE, "features": ["compute"],
                                         "source_addresses": ["10.0.0.0/24"]}]), ["region"]),
    ("huge-feature", _target(workspaces=[{"name": "mlws", "region": "westus2", "features": [HUGE],
                                          "source_addresses": ["10.0.0.0/24"]}]), ["features[0]"]),
    ("huge-unknown-key", _target(**{HUGE: 1}), ["unknown key"]),
    ("huge-target-name", _target(name="n" * 300), ["name", "at most 256"]),
    ("client-id-not-guid", _target(credential={"kind": "managed_identity", "client_id": "me"}),
     ["credential.client_id", "GUID"]),
    ("huge-subscription", _target(subscription_id=HUGE), ["subscription_id"]),
]


@pytest.mark.parametrize(("doc", "parts"), [c[1:] for c in BAD_CONFIGS], ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config(doc: dict[str, Any], parts: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "amlfw.yaml"
    config.write_text(yaml.safe_dump(doc, width=1 << 30), encoding="utf-8")
    out = tmp_path / "out.json"
    code, stdout, err = run_in_process(capsys, "render", "--config", str(config), "--output", str(out))
    assert (code, stdout) == (1, "")
    assert_one_clean_line(err, str(config), *parts)
    assert not out.exists()


def test_an_unexpected_exception_is_one_line_not_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import reconciler.cli as cli

    def boom(*args: Any) -> Any:
        raise RuntimeError("kaboom " + "z" * 10_000)

    monkeypatch.setattr(cli, "load_and_compile", boom)
    config = tmp_path / "amlfw.yaml"
    config.write_text(yaml.safe_dump(_target()), encoding="utf-8")
    code, _, err = run_in_process(capsys, "render", "--config", str(config))
    assert code == 1
    assert_one_clean_line(err, "unexpected RuntimeError: kaboom")
    monkeypatch.setenv("AMLFW_DEBUG", "1")
    with pytest.raises(RuntimeError):
        main(["render", "--config", str(config)])
