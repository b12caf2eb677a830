"""Shared fixtures. Keep this file small and generic: helpers used by one test module live in that module."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from reconciler.catalogue import CatalogueStore
from reconciler.model import Catalogue

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    """`config/examples/` of this checkout."""
    return REPO / "config" / "examples"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The shared reference folder: `$AMLFW_SHARED_DIR`, else `../shared` beside the repository."""
    override = os.environ.get("AMLFW_SHARED_DIR")
    return Path(override) if override else REPO.parent / "shared"


@pytest.fixture(scope="session")
def catalogue_store() -> CatalogueStore:
    """The shipped catalogue store (`config/catalogue`), loaded once per session."""
    return CatalogueStore(REPO / "config" / "catalogue")


@pytest.fixture(scope="session")
def catalogue(catalogue_store: CatalogueStore) -> Catalogue:
    """The newest shipped catalogue version."""
    return catalogue_store.get()


RunAmlfw = Callable[..., "subprocess.CompletedProcess[str]"]


@pytest.fixture(scope="session")
def run_amlfw() -> RunAmlfw:
    """Run `python -m reconciler ARGS...` as a subprocess; returns the CompletedProcess (text mode).

    Keyword arguments: `cwd`, `env` (merged over a copy of os.environ), `timeout` (default 60 s).
    """

    def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "reconciler", *args],
            capture_output=True, text=True, cwd=cwd or REPO, env={**os.environ, **(env or {})},
            timeout=timeout, check=False,
        )

    return run


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "azcli: drives the real Azure CLI against the emulator (opt-in: AMLFW_AZCLI=1)")
