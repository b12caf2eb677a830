"""Pytest fixtures for tests that talk to the emulator.

Use them with ``from tests.emulator.pytest_plugin import *`` in a test module, or register this module once in
the root conftest (``pytest_plugins = ["tests.emulator.pytest_plugin"]``). Do not list it in ``pytest_plugins``
of a test module: if any module imported it before, pytest refuses that (it cannot rewrite its asserts) and
``filterwarnings = error`` turns the warning into a collection error.

* ``emulator``: a fresh, started ``Emulator`` per test (start-up is ~10 ms once trustme is imported), built
  with ``emulator_options`` (parametrize that name to configure it).
* ``arm_env``: the emulator's environment applied with monkeypatch, and every variable that would make
  ``DefaultAzureCredential`` pick another credential removed.
* ``credential``: a real ``DefaultAzureCredential`` (it gets its token from the emulator).
* ``network_client`` / ``resource_client``: factories for the real SDK clients pointed at the emulator;
  use them as context managers (``with network_client(retry_total=0) as net:``).
* ``arm_http``: raw HTTPS calls with a real bearer token, for checks at the level of status lines and headers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from azure.identity import DefaultAzureCredential
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient

from .api import FOREIGN_CREDENTIAL_ENV, Emulator
from .examples import EXAMPLE_SUB
from .rawarm import ARM_SCOPE, ArmHttp

__all__ = ["arm_env", "arm_http", "credential", "emulator", "emulator_options", "network_client", "resource_client"]


@pytest.fixture
def emulator_options() -> dict[str, Any]:
    """Keyword arguments for ``Emulator``; override with ``@pytest.mark.parametrize("emulator_options", [...])``."""
    return {}


@pytest.fixture
def emulator(emulator_options: dict[str, Any]) -> Iterator[Emulator]:
    with Emulator(**emulator_options) as emu:
        yield emu


@pytest.fixture
def arm_env(emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    for name in FOREIGN_CREDENTIAL_ENV:
        monkeypatch.delenv(name, raising=False)
    env = emulator.env()
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def credential(arm_env: dict[str, str]) -> Iterator[DefaultAzureCredential]:
    cred = DefaultAzureCredential()
    with cred:
        yield cred


@pytest.fixture
def network_client(emulator: Emulator, credential: DefaultAzureCredential) -> Callable[..., NetworkManagementClient]:
    def make(subscription: str = EXAMPLE_SUB, **kwargs: Any) -> NetworkManagementClient:
        return NetworkManagementClient(
            credential,
            subscription,
            base_url=emulator.base_url,
            polling_interval=0,
            credential_scopes=[ARM_SCOPE],
            **kwargs,
        )

    return make


@pytest.fixture
def resource_client(emulator: Emulator, credential: DefaultAzureCredential) -> Callable[..., ResourceManagementClient]:
    def make(subscription: str = EXAMPLE_SUB, **kwargs: Any) -> ResourceManagementClient:
        return ResourceManagementClient(
            credential, subscription, base_url=emulator.base_url, credential_scopes=[ARM_SCOPE], **kwargs
        )

    return make


@pytest.fixture
def arm_http(emulator: Emulator, credential: DefaultAzureCredential) -> Iterator[ArmHttp]:
    client = ArmHttp(emulator, credential)
    with client.session:
        yield client
