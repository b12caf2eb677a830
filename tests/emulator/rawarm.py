"""Raw ARM calls (status lines, headers) to an emulator, with a bearer token from a real credential."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import requests

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from .api import Emulator

ARM_SCOPE = "https://management.azure.com/.default"


class ArmHttp:
    """Raw ARM calls to the emulator (``requests``, verifying its CA) with a token from the real credential."""

    def __init__(self, emulator: Emulator, credential: TokenCredential) -> None:
        self.base_url = emulator.base_url
        self._ca_bundle = emulator.ca_bundle
        self._token = credential.get_token(ARM_SCOPE).token
        self.session = requests.Session()

    def request(
        self,
        method: str,
        path: str,
        *,
        api_version: str | None = "2026-03-01",
        body: Any = None,
        data: bytes | None = None,
        headers: dict[str, str] | None = None,
        authenticated: bool = True,
    ) -> requests.Response:
        url = self.base_url + path if path.startswith("/") else path
        params = {"api-version": api_version} if api_version and "api-version=" not in url else None
        all_headers = {"Authorization": f"Bearer {self._token}"} if authenticated else {}
        all_headers.update(headers or {})
        return self.session.request(
            method, url, params=params, json=body, data=data, headers=all_headers, verify=self._ca_bundle, timeout=10
        )
