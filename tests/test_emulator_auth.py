"""The emulator's identity side is as strict as ARM: tokens are JWT-shaped and carry their audience, ARM refuses
a token obtained for another resource, and /metadata/endpoints answers without a token."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import requests
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.identity import DefaultAzureCredential
from azure.mgmt.network import NetworkManagementClient

from tests.emulator import Emulator
from tests.emulator.examples import EXAMPLE_SUB
from tests.emulator.pytest_plugin import *  # noqa: F403


def _claims(token: str) -> dict[str, Any]:
    header, payload, signature = token.split(".")
    assert signature
    assert json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["typ"] == "JWT"
    claims: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims


def test_tokens_are_jwt_shaped_with_their_audience(credential: DefaultAzureCredential) -> None:
    token = credential.get_token("https://management.azure.com/.default")
    claims = _claims(token.token)
    assert claims["aud"].rstrip("/") == "https://management.azure.com"
    assert claims["exp"] == token.expires_on
    assert claims["tid"] and claims["oid"]


def test_a_token_for_another_audience_is_refused(emulator: Emulator, credential: DefaultAzureCredential) -> None:
    emulator.seed_examples()
    with (NetworkManagementClient(credential, EXAMPLE_SUB, base_url=emulator.base_url, polling_interval=0,
                                  credential_scopes=["https://storage.azure.com/.default"], retry_total=0) as net,
          pytest.raises((ClientAuthenticationError, HttpResponseError)) as caught):
        list(net.firewall_policies.list_all())
    assert caught.value.status_code == 401
    assert "InvalidAuthenticationTokenAudience" in str(caught.value)


@pytest.mark.parametrize("scope", ["https://management.azure.com/.default",
                                   "https://management.core.windows.net//.default"])
def test_arm_audiences_are_accepted(emulator: Emulator, credential: DefaultAzureCredential, scope: str) -> None:
    emulator.seed_examples()
    with NetworkManagementClient(credential, EXAMPLE_SUB, base_url=emulator.base_url, polling_interval=0,
                                 credential_scopes=[scope], retry_total=0) as net:
        assert list(net.firewall_policies.list_all())


@pytest.mark.parametrize("api_version", ["2022-09-01", "2019-05-01"])
def test_metadata_endpoints_need_no_token(emulator: Emulator, api_version: str) -> None:
    r = requests.get(f"{emulator.base_url}/metadata/endpoints", params={"api-version": api_version},
                     verify=emulator.ca_bundle, timeout=10)
    assert r.status_code == 200
    cloud = r.json() if api_version >= "2022-09-01" else r.json()[0]  # one object since 2022-09-01
    assert cloud["resourceManager"] == emulator.base_url + "/"
    assert "https://management.core.windows.net/" in cloud["authentication"]["audiences"]


def test_metadata_endpoints_2015_shape(emulator: Emulator) -> None:
    r = requests.get(f"{emulator.base_url}/metadata/endpoints?api-version=2015-01-01", verify=emulator.ca_bundle,
                     timeout=10)
    assert r.status_code == 200
    assert set(r.json()) >= {"galleryEndpoint", "graphEndpoint", "portalEndpoint", "authentication"}
