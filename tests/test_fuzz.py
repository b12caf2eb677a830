"""Generated bad input (tests/fuzz_cases.py): each malformed configuration, catalogue file or ARM answer ends in
exit 1 with one clean error, no traceback, no hang and no write.

A sample runs in the normal suite; AMLFW_FUZZ_FULL=1 runs the full set (700 configurations, 300 catalogue
cases, 300 LIST and 100 GET-policy ARM answers: 1,400). Cases run the CLI in-process (`reconciler.cli.main`),
a few as a real subprocess."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.cli import main
from reconciler.model import Catalogue
from tests.boundary_support import RewritingProxy, trust_bundle
from tests.emulator import Emulator
from tests.emulator.pytest_plugin import *  # noqa: F403
from tests.engine_support import RG, SUB, seed_policy, write_config, writes
from tests.fuzz_cases import (
    Case,
    CatalogueCase,
    arm_list_cases,
    arm_policy_cases,
    catalogue_cases,
    config_cases,
)

FULL = os.environ.get("AMLFW_FUZZ_FULL") == "1"
COUNTS = ({"config": 700, "catalogue": 300, "arm": 300, "arm-policy": 100} if FULL
          else {"config": 120, "catalogue": 50, "arm": 30, "arm-policy": 10})
ROOT = Path(__file__).resolve().parents[1]


def _clean_error_line(err: str, case: object) -> str:
    assert "Traceback" not in err, (case, err[-2000:])
    lines = [x for x in err.splitlines() if x.startswith("error: ")]
    others = [x for x in err.splitlines() if x.strip() and not x.startswith(("error: ", "warning: "))]
    assert len(lines) == 1 and not others, (case, err[:2000])
    line = lines[0]
    longest = max(len(m.group(0)) for m in re.finditer(r"(.)\1*", line))
    assert longest <= 100 and len(line) < 1000, (case, line[:300])
    return line


# ---------------------------------------------------------------------------------------------- configurations


def test_fuzz_configurations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config, out = tmp_path / "amlfw.yaml", tmp_path / "out.json"
    cases = config_cases(COUNTS["config"])
    for case in cases:
        config.write_bytes(case.payload)
        code = main(["render", "--config", str(config), "--output", str(out)])
        stdout, err = capsys.readouterr()
        assert code == 1, (case.index, case.what)
        assert stdout == "", (case.index, case.what)
        _clean_error_line(err, (case.index, case.what))
        assert not out.exists(), (case.index, case.what)
    assert len(cases) == COUNTS["config"]


@pytest.mark.parametrize("index", [0, 7, 31])
def test_fuzz_configuration_in_a_subprocess(index: int, tmp_path: Path) -> None:
    case = config_cases(index + 1)[index]
    config = tmp_path / "amlfw.yaml"
    config.write_bytes(case.payload)
    r = subprocess.run([sys.executable, "-m", "reconciler", "render", "--config", str(config)], cwd=ROOT,
                       capture_output=True, text=True, timeout=60, check=False)
    assert r.returncode == 1, case.what
    assert r.stdout == ""
    _clean_error_line(r.stderr, case.what)


# ---------------------------------------------------------------------------------------------- catalogue files


@pytest.fixture
def catalogue_root(tmp_path: Path, catalogue: Catalogue) -> Path:
    root = tmp_path / "catalogue"
    shutil.copytree(Path(catalogue.path).parent, root, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    version = root / "azureml-2021.11"
    index = yaml.safe_load((version / "catalogue.yaml").read_text(encoding="utf-8"))
    index["files"].append("zz-fuzz.yaml")
    (version / "catalogue.yaml").write_text(yaml.safe_dump(index, sort_keys=False, allow_unicode=True),
                                            encoding="utf-8")
    (version / "zz-fuzz.yaml").write_text("entries: []\n", encoding="utf-8")
    return root


def test_fuzz_catalogue_files(catalogue_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    version = catalogue_root / "azureml-2021.11"
    assert main(["--catalogue-dir", str(catalogue_root), "catalogue", "validate", "--version", version.name]) == 0
    capsys.readouterr()
    cases: list[CatalogueCase] = catalogue_cases(COUNTS["catalogue"])
    for case in cases:
        path = (version / case.file).resolve()
        original = path.read_bytes()
        path.write_bytes(case.payload)
        try:
            code = main(["--catalogue-dir", str(catalogue_root), "catalogue", "validate", "--version", version.name])
            _, err = capsys.readouterr()
        finally:
            path.write_bytes(original)
        assert code == 1, (case.index, case.what)
        _clean_error_line(err, (case.index, case.what))
    assert len(cases) == COUNTS["catalogue"]


# ---------------------------------------------------------------------------------------------- ARM answers


@pytest.fixture
def arm_setup(emulator: Emulator, arm_env: dict[str, str], tmp_path: Path,
              monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Emulator, RewritingProxy, Path, dict[str, Any]]]:
    bundle = str(trust_bundle(emulator, tmp_path))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", bundle)
    monkeypatch.setenv("SSL_CERT_FILE", bundle)
    seed_policy(emulator, "fwpol-fuzz")
    template = {"value": emulator.list_rule_collection_groups(SUB, RG, "fwpol-fuzz"),
                "policy": emulator.get_policy(SUB, RG, "fwpol-fuzz")}
    with RewritingProxy(emulator) as proxy:
        path = write_config(tmp_path, emulator, "fwpol-fuzz")
        doc = yaml.safe_load(path.read_text())
        doc["arm_endpoint"] = proxy.base_url
        doc["azure"].update(retry_total=0)
        path.write_text(json.dumps(doc))
        yield emulator, proxy, path, template


def _serve(proxy: RewritingProxy, case: Case) -> None:
    def rewrite(method: str, path: str, status: int, headers: dict[str, str], body: bytes
                ) -> tuple[int, dict[str, str], bytes] | None:
        bare = path.split("?")[0]
        if case.kind == "arm" and method == "GET" and bare.endswith("/ruleCollectionGroups"):
            return 200, {"Content-Type": "application/json"}, case.payload
        if case.kind == "arm-policy" and method == "GET" and bare.endswith("/firewallPolicies/fwpol-fuzz"):
            return 200, {"Content-Type": "application/json"}, case.payload
        return None
    proxy.rewrite = rewrite


def test_fuzz_arm_answers(arm_setup: tuple[Emulator, RewritingProxy, Path, dict[str, Any]],
                          capsys: pytest.CaptureFixture[str]) -> None:
    emulator, proxy, config, template = arm_setup
    policy = template.pop("policy")
    cases = arm_list_cases(template, COUNTS["arm"]) + arm_policy_cases(policy, COUNTS["arm-policy"])
    for case in cases:
        _serve(proxy, case)
        code = main(["reconcile", "--config", str(config), "--once", "--output", "json"])  # apply, not dry-run
        stdout, err = capsys.readouterr()
        assert code == 1, (case.index, case.what)
        assert "Traceback" not in stdout + err, (case.index, case.what)
        (target,) = json.loads(stdout)["targets"]
        assert target["status"] == "error", (case.index, case.what)
        error = target["error"]
        assert "\n" not in error and len(error) < 1000, (case.index, case.what, error[:300])
        assert "url=https://" in error, (case.index, case.what, error[:300])
        assert writes(emulator, "fwpol-fuzz") == [], (case.index, case.what)
    assert len(cases) == COUNTS["arm"] + COUNTS["arm-policy"]


def test_fuzz_arm_answer_in_a_subprocess(arm_setup: tuple[Emulator, RewritingProxy, Path, dict[str, Any]]) -> None:
    emulator, proxy, config, template = arm_setup
    template.pop("policy")
    for case in arm_list_cases(template, 2, seed=11):
        _serve(proxy, case)
        r = subprocess.run([sys.executable, "-m", "reconciler", "reconcile", "--config", str(config), "--once",
                            "--output", "json"], cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
                           env=dict(os.environ))
        assert r.returncode == 1, case.what
        assert "Traceback" not in r.stdout + r.stderr
        (target,) = json.loads(r.stdout)["targets"]
        assert target["status"] == "error"
        assert writes(emulator, "fwpol-fuzz") == []
