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
from tests.emulator.reference import ReferenceData

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO


@pytest.fixture(scope="session")
def examples_dir() -> Path:
    """`config/examples/` of this checkout."""
    return REPO / "config" / "examples"


@pytest.fixture(scope="session")
def reference() -> ReferenceData:
    """The vendored reference data (`reference/`, or `$AMLFW_REFERENCE_DIR`): one loader for every test."""
    return ReferenceData.at()


@pytest.fixture(scope="session")
def spec_dir(reference: ReferenceData) -> Path:
    """The main swagger folder (api-version 2026-03-01); fails, never skips, when it is missing."""
    return reference.path("azure-rest-api-specs", "2026-03-01")


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
