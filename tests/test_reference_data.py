"""The vendored reference data (`reference/`): complete, unchanged, documented, refreshable, and the only source.

Nothing in the repository may reach outside it (a sibling folder exists only in our own working layout, never in
a clone) or need an environment variable to find its data.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.emulator.reference import REQUIRED_FILES, SEED_FILE, VENDORED_DIR, ReferenceData

REPO = Path(__file__).resolve().parents[1]
MANIFEST = VENDORED_DIR / "MANIFEST.sha256"


def manifest() -> dict[str, str]:
    lines = MANIFEST.read_text(encoding="utf-8").splitlines()
    return {name: digest for digest, name in (line.split("  ", 1) for line in lines if line)}


def test_every_vendored_file_matches_its_manifest_hash() -> None:
    entries = manifest()
    assert len(entries) >= 30
    for name, digest in entries.items():
        assert hashlib.sha256((VENDORED_DIR / name).read_bytes()).hexdigest() == digest, name


def test_the_manifest_lists_exactly_the_files_vendored() -> None:
    on_disk = {str(p.relative_to(VENDORED_DIR)) for p in VENDORED_DIR.rglob("*") if p.is_file()
               and "__pycache__" not in p.parts}
    tooling = {"README.md", "MANIFEST.sha256", "refresh.py", "generate_catalogue_data.py"}
    assert on_disk - tooling == set(manifest())


def test_the_emulator_s_required_files_and_the_seed_are_vendored() -> None:
    for name in (*REQUIRED_FILES, SEED_FILE):
        assert name in manifest(), name


def test_the_readme_names_origin_and_licence_of_every_folder() -> None:
    readme = (VENDORED_DIR / "README.md").read_text(encoding="utf-8")
    for top in sorted({name.split("/", 1)[0] for name in manifest()}):
        assert f"`{top}/" in readme, top
    for licence in ("MIT", "CC BY 4.0"):
        assert licence in readme
    for folder in {str(Path(name).parent) for name in manifest() if name.endswith(".json")}:
        if folder.startswith("azure-rest-api-specs/20"):
            version = folder.split("/")[1]
            assert (VENDORED_DIR / "azure-rest-api-specs" / version / "README.md").is_file(), version


def test_the_one_loader_defaults_to_the_vendored_copy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AMLFW_REFERENCE_DIR", raising=False)
    assert ReferenceData.at().root == VENDORED_DIR.resolve()
    assert "ms.date: 11/30/2021" in ReferenceData.at().seed_text()


def _tracked_files() -> list[Path]:
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=False)
    if tracked.returncode != 0:  # an exported tree without .git: walk it
        return [p for p in REPO.rglob("*") if p.is_file() and ".venv" not in p.parts and ".git" not in p.parts]
    return [REPO / name for name in tracked.stdout.splitlines()]


ABOVE_THE_ROOT = re.compile(r"\b(?:REPO|REPO_ROOT|ROOT)\.parent\b")  # the root's parent: outside the clone
PARENTS = re.compile(r"Path\(__file__\)\.resolve\(\)\.parents\[(\d+)\]")
SIBLING_PATH = re.compile(r"""["']\.\./[A-Za-z]|(?<![\w.$)/])\.\./[A-Za-z]""")  # a relative path into a sibling


def test_nothing_reaches_outside_the_repository() -> None:
    """No code, test, Makefile or CI script looks beside the repository: no path above its root, whether the
    root's `.parent`, a `Path(__file__).parents[k]` that climbs past the root, or (in shell, Makefile and TOML)
    a `../name` path. `.ci/run` proves the same at run time, in a clone with nothing beside it."""
    offenders = []
    for path in _tracked_files():
        is_code = path.suffix in {".py", ".toml", ".cfg", ".sh"} or path.name in {"Makefile", "run"}
        if not is_code or not path.is_file() or path == Path(__file__).resolve():
            continue
        rel = path.relative_to(REPO)
        text = path.read_text(encoding="utf-8", errors="replace")
        offenders += [f"{rel}: {m.group(0)}" for m in ABOVE_THE_ROOT.finditer(text)]
        if path.suffix != ".py":  # in Python, "../x" strings are bad inputs under test; paths are Path objects
            offenders += [f"{rel}: {m.group(0)}" for m in SIBLING_PATH.finditer(text)]
        root_index = len(rel.parts) - 1  # parents[root_index] of this file is the repository root
        offenders += [f"{rel}: {m.group(0)} climbs above the root" for m in PARENTS.finditer(text)
                      if int(m.group(1)) > root_index]
    assert offenders == []


def test_the_outside_check_sees_each_form(tmp_path: Path) -> None:
    """The patterns above are not vacuous: each form of reaching outside is caught, the legitimate ones are not."""
    assert ABOVE_THE_ROOT.search("base = REPO_ROOT.parent / 'data'")
    assert SIBLING_PATH.search("open('../data/x.json')")
    assert SIBLING_PATH.search("cat ../data/x.json")
    assert not SIBLING_PATH.search("/resourceGroups/../providers/x")  # an id under test, not a path we read
    assert not SIBLING_PATH.search('cd "$(dirname "$0")/.."')
    (match,) = PARENTS.finditer("Path(__file__).resolve().parents[2]")
    assert int(match.group(1)) > len(Path("tests/x.py").parts) - 1
    assert not int(match.group(1)) > len(Path("tests/emulator/x.py").parts) - 1


def test_refresh_copies_listed_files_and_rewrites_the_manifest(tmp_path: Path) -> None:
    """`reference/refresh.py SOURCE` on a copy: a changed source file is copied and its hash recorded."""
    target = tmp_path / "vendored"
    shutil.copytree(VENDORED_DIR, target, ignore=shutil.ignore_patterns("__pycache__"))
    source = tmp_path / "source"
    shutil.copytree(VENDORED_DIR, source, ignore=shutil.ignore_patterns("__pycache__", "seed"))
    seed = tmp_path / "seed-folder"
    seed.mkdir()
    shutil.copy(VENDORED_DIR / SEED_FILE, seed / Path(SEED_FILE).name)
    changed = source / "azureml" / "outboundNetworkDependenciesEndpoints.get.json"
    changed.write_text(changed.read_text(encoding="utf-8").replace("\n", "\n ", 1), encoding="utf-8")
    script = str(VENDORED_DIR / "refresh.py")

    run = subprocess.run([sys.executable, script, str(source), "--seed", str(seed), "--into", str(target)],
                         capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ["updated azureml/outboundNetworkDependenciesEndpoints.get.json"]
    assert (target / "azureml" / changed.name).read_bytes() == changed.read_bytes()
    check = subprocess.run([sys.executable, script, "--check", "--into", str(target)],
                           capture_output=True, text=True, timeout=60, check=False)
    assert check.returncode == 0, check.stderr

    (target / "azureml" / changed.name).write_text("{}", encoding="utf-8")  # tampered: --check sees it
    check = subprocess.run([sys.executable, script, "--check", "--into", str(target)],
                           capture_output=True, text=True, timeout=60, check=False)
    assert check.returncode == 1
    assert changed.name in check.stderr

    (source / "service-tags" / "ServiceTags_Gov.json").unlink()  # a missing source file: nothing copied
    before = (target / "MANIFEST.sha256").read_text(encoding="utf-8")
    run = subprocess.run([sys.executable, script, str(source), "--seed", str(seed), "--into", str(target)],
                         capture_output=True, text=True, timeout=60, check=False)
    assert run.returncode == 1
    assert "ServiceTags_Gov.json: not found" in run.stderr
    assert (target / "MANIFEST.sha256").read_text(encoding="utf-8") == before


def test_the_generator_reproduces_the_shipped_lists_from_the_vendored_data(tmp_path: Path) -> None:
    run = subprocess.run([sys.executable, str(VENDORED_DIR / "generate_catalogue_data.py"), "--out", str(tmp_path)],
                         capture_output=True, text=True, timeout=120, check=False)
    assert run.returncode == 0, run.stderr
    for name in ("regions.yaml", "service-tag-names.yaml", "service-tag-features.yaml"):
        assert (tmp_path / name).read_bytes() == (REPO / "config" / "catalogue" / name).read_bytes(), name
