"""The wheel and the sdist stand on their own: built with `python -m build`, the wheel installed into a fresh
virtualenv without the test extras, and run from an empty folder, the commands give what the source tree gives.

This is the check behind "pip install <the wheel>, then `amlfw render --config <an example>` works from any
folder": the catalogue is package data, not a folder beside the code.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import tomllib
import venv
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from reconciler import __version__

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((REPO / "config" / "examples").glob("*.yaml"))
pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Installed:
    wheel: Path
    sdist: Path
    amlfw: Path
    workdir: Path


def _clean_env() -> dict[str, str]:
    """The environment of a user who has none of ours: no catalogue override, no PYTHONPATH into the clone."""
    drop = {"AMLFW_CATALOGUE_DIR", "PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}
    return {k: v for k, v in os.environ.items() if k not in drop}


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    root = tmp_path_factory.mktemp("packaging")
    dist = root / "dist"
    build = subprocess.run([sys.executable, "-m", "build", "--outdir", str(dist), str(REPO)],
                           capture_output=True, text=True, timeout=600, check=False, env=_clean_env())
    assert build.returncode == 0, build.stdout[-2000:] + build.stderr[-2000:]
    assert "deprecated" not in (build.stdout + build.stderr).lower(), "the build warns about a deprecation"
    (wheel,) = dist.glob("*.whl")
    (sdist,) = dist.glob("*.tar.gz")
    env_dir = root / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / "bin" / "python"
    install = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                              str(wheel)], capture_output=True, text=True, timeout=600, check=False, env=_clean_env())
    assert install.returncode == 0, install.stderr[-3000:]
    workdir = root / "empty"
    workdir.mkdir()
    return Installed(wheel=wheel, sdist=sdist, amlfw=env_dir / "bin" / "amlfw", workdir=workdir)


def _installed_run(installed: Installed, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(installed.amlfw), *args], cwd=installed.workdir, capture_output=True, text=True,
                          timeout=120, check=False, env=_clean_env())


def _source_run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "reconciler", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120, check=False, env={**_clean_env(), "PYTHONPATH": str(REPO)})


def test_the_wheel_carries_the_catalogue_and_no_tests(installed: Installed) -> None:
    names = zipfile.ZipFile(installed.wheel).namelist()
    source = sorted(str(p.relative_to(REPO / "config" / "catalogue")) for p in
                    (REPO / "config" / "catalogue").rglob("*.yaml"))
    packaged = sorted(n.removeprefix("reconciler/catalogue_data/") for n in names
                      if n.startswith("reconciler/catalogue_data/"))
    assert packaged == source
    assert not [n for n in names if n.startswith(("tests/", "reference/", "bench/"))]
    assert any(n.endswith("licenses/LICENSE") for n in names)


def test_the_sdist_carries_the_catalogue_where_the_layout_keeps_it(installed: Installed) -> None:
    with tarfile.open(installed.sdist) as archive:
        names = archive.getnames()
    top = names[0].split("/", 1)[0]
    assert f"{top}/config/catalogue/azureml-2021.11/catalogue.yaml" in names
    assert f"{top}/config/catalogue/service-tag-names.yaml" in names
    assert f"{top}/LICENSE" in names


def test_version_names_the_package_and_the_shipped_catalogues(installed: Installed) -> None:
    result = _installed_run(installed, "--version")
    assert result.returncode == 0, result.stderr
    first, second = result.stdout.splitlines()
    assert first == f"amlfw {__version__}"
    versions = sorted(p.name for p in (REPO / "config" / "catalogue").iterdir() if (p / "catalogue.yaml").is_file())
    assert second.startswith(f"catalogue {', '.join(versions)} (")
    assert "site-packages" in second  # the packaged copy, not a folder of the clone
    source = _source_run("--version")
    assert source.stdout.splitlines()[0] == first
    assert source.stdout.splitlines()[1].split(" (")[0] == second.split(" (")[0]


def test_catalogue_validate_gives_what_the_source_tree_gives(installed: Installed) -> None:
    packaged, source = _installed_run(installed, "catalogue", "validate"), _source_run("catalogue", "validate")
    assert packaged.returncode == source.returncode == 0, packaged.stderr
    assert packaged.stdout == source.stdout
    assert packaged.stdout.strip()


@pytest.mark.parametrize("example", EXAMPLES, ids=lambda p: p.stem)
@pytest.mark.parametrize("fmt", ["arm", "table"])
def test_render_of_each_example_equals_the_source_tree(installed: Installed, example: Path, fmt: str) -> None:
    packaged = _installed_run(installed, "render", "--config", str(example), "--format", fmt)
    source = _source_run("render", "--config", str(example), "--format", fmt)
    assert packaged.returncode == source.returncode == 0, packaged.stderr
    assert packaged.stdout == source.stdout
    assert len(packaged.stdout) > 200


def test_a_missing_catalogue_names_the_overrides(installed: Installed) -> None:
    result = subprocess.run([str(installed.amlfw), "render", "--config", str(EXAMPLES[0])], cwd=installed.workdir,
                            capture_output=True, text=True, timeout=60, check=False,
                            env={**_clean_env(), "AMLFW_CATALOGUE_DIR": str(installed.workdir / "nowhere")})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: {installed.workdir / 'nowhere'}: catalogue directory not found "
        "(set --catalogue-dir DIR or $AMLFW_CATALOGUE_DIR)"
    ]


def test_the_package_list_names_every_package_and_the_version_matches() -> None:
    """pyproject lists packages explicitly (one is mapped from config/catalogue): a new package must be added."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    listed = set(project["tool"]["setuptools"]["packages"])
    on_disk = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "reconciler").rglob("__init__.py")}
    assert listed - {"reconciler.catalogue_data"} == on_disk
    assert project["tool"]["setuptools"]["package-dir"] == {"reconciler.catalogue_data": "config/catalogue"}
    assert project["project"]["version"] == __version__
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)


def _pins(lock: Path) -> dict[str, str]:
    pins = {}
    for line in lock.read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==(\S+) \\$", line)
        if match:
            pins[re.sub(r"[-_.]+", "-", match.group(1)).lower()] = match.group(2)
    return pins


@pytest.mark.parametrize(("lock", "extras"), [("requirements-test.lock", ("lease", "test")),
                                              ("deploy/requirements.lock", ("lease",))])
def test_the_lock_pins_every_requirement_within_its_range_with_hashes(lock: str, extras: tuple[str, ...]) -> None:
    """`make lock` output is in step with pyproject.toml's ranges (regenerate it when a range changes)."""
    from packaging.requirements import Requirement

    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = [*project["dependencies"], *(r for extra in extras for r in project["optional-dependencies"][extra])]
    pins = _pins(REPO / lock)
    for spec in wanted:
        requirement = Requirement(spec)
        name = re.sub(r"[-_.]+", "-", requirement.name).lower()
        assert name in pins, f"{lock}: {name} is not pinned"
        assert requirement.specifier.contains(pins[name], prereleases=True), f"{lock}: {name}=={pins[name]} !~ {spec}"
    text = (REPO / lock).read_text(encoding="utf-8")
    assert text.count("==") == len(pins) and text.count("--hash=sha256:") >= len(pins)
    options = [line for line in text.splitlines() if line.startswith("-")]
    assert options == [], "no machine-specific index or find-links in the lock"


def test_the_two_locks_agree_on_shared_packages() -> None:
    test, deploy = _pins(REPO / "requirements-test.lock"), _pins(REPO / "deploy" / "requirements.lock")
    assert set(deploy) <= set(test)
    assert {name: test[name] for name in deploy} == deploy
