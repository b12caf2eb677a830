"""An App Service style managed-identity endpoint, and ARM's bearer-token check.

azure-identity 1.27 (through MSAL 1.39, ``msal/managed_identity.py::_obtain_token_on_app_service``) calls
``GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=<resource>`` with the header ``X-IDENTITY-HEADER``
and reads ``access_token``, ``expires_on`` (epoch seconds), ``resource`` and ``token_type``. So the real
``DefaultAzureCredential`` works unchanged once ``IDENTITY_ENDPOINT``/``IDENTITY_HEADER`` are set.

Tokens are random opaque strings, remembered in memory and never logged.
"""

from __future__ import annotations

import secrets
import threading
import time
from typing import Any

from .errors import ArmError

TOKEN_PATH = "/msi/token"
TOKEN_API_VERSION = "2019-08-01"
TOKEN_LIFETIME = 3600
_CHALLENGE = 'Bearer authorization_uri="https://login.windows.net/", error="invalid_token", error_description="{}"'


class TokenIssuer:
    def __init__(self) -> None:
        self.identity_header = secrets.token_urlsafe(24)
        self._lock = threading.Lock()
        self._tokens: dict[str, float] = {}

    def issue(self, query: dict[str, str], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """Answer a token request the way App Service's identity endpoint does."""
        if headers.get("x-identity-header") != self.identity_header:
            return 401, {"statusCode": 401, "message": "Unauthorized: the X-IDENTITY-HEADER is missing or wrong."}
        if query.get("api-version") != TOKEN_API_VERSION:
            return 400, {"statusCode": 400, "message": f"api-version must be {TOKEN_API_VERSION}."}
        resource = query.get("resource")
        if not resource:
            return 400, {"statusCode": 400, "message": "The 'resource' query parameter is required."}
        token = "emu." + secrets.token_urlsafe(32)
        expires_on = int(time.time()) + TOKEN_LIFETIME
        with self._lock:
            self._tokens[token] = expires_on
        return 200, {
            "access_token": token,
            "expires_on": str(expires_on),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": "00000000-0000-0000-0000-00000000e000",
        }

    def check(self, authorization: str | None) -> None:
        """Raise ARM's 401 unless ``authorization`` carries a token this endpoint issued and that has not expired."""
        if not authorization:
            raise ArmError(
                401,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.",
                headers={
                    "WWW-Authenticate": _CHALLENGE.format(
                        "The authentication failed because of missing 'Authorization' header."
                    )
                },
            )
        scheme, _, token = authorization.partition(" ")
        with self._lock:
            expires_on = self._tokens.get(token.strip())
        if scheme.lower() != "bearer" or expires_on is None or expires_on < time.time():
            raise ArmError(
                401,
                "InvalidAuthenticationToken",
                "The access token is invalid.",
                headers={"WWW-Authenticate": _CHALLENGE.format("The access token is invalid.")},
            )
