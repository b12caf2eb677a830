"""An App Service style managed-identity endpoint, and ARM's bearer-token check.

azure-identity 1.27 (through MSAL 1.39, ``msal/managed_identity.py::_obtain_token_on_app_service``) calls
``GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=<resource>`` with the header ``X-IDENTITY-HEADER``
and reads ``access_token``, ``expires_on`` (epoch seconds), ``resource`` and ``token_type``. So the real
``DefaultAzureCredential`` works unchanged once ``IDENTITY_ENDPOINT``/``IDENTITY_HEADER`` are set.

Tokens are JWT-shaped (``header.payload.signature``, HS256 under a per-emulator random key) with the claims a
client may read (``aud``, ``iss``, ``tid``, ``oid``, ``appid``, ``exp``...), remembered in memory and never
logged. Like ARM, ``check`` accepts only a token whose audience is a Resource Manager audience
(``InvalidAuthenticationTokenAudience`` otherwise): a token obtained for storage or Key Vault is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from typing import Any

from .errors import ArmError

TOKEN_PATH = "/msi/token"
TOKEN_API_VERSION = "2019-08-01"
TOKEN_LIFETIME = 3600
TENANT_ID = "00000000-0000-0000-0000-00000000e0e0"
CLIENT_ID = "00000000-0000-0000-0000-00000000e000"
# The audiences Resource Manager accepts (its own error message lists the public ones), for each cloud the
# emulator stands in for; compared without a trailing slash.
ARM_AUDIENCES = frozenset({
    "https://management.azure.com", "https://management.core.windows.net",
    "https://management.usgovcloudapi.net", "https://management.core.usgovcloudapi.net",
    "https://management.chinacloudapi.cn", "https://management.core.chinacloudapi.cn",
})
_AUDIENCE_MESSAGE = (
    "The access token has been obtained for wrong audience or resource '{}'. It should exactly match with one of "
    "the allowed audiences 'https://management.core.windows.net/','https://management.core.windows.net',"
    "'https://management.azure.com/','https://management.azure.com'."
)
_CHALLENGE = 'Bearer authorization_uri="https://login.windows.net/", error="invalid_token", error_description="{}"'


class TokenIssuer:
    def __init__(self) -> None:
        self.identity_header = secrets.token_urlsafe(24)
        self._lock = threading.Lock()
        self._tokens: dict[str, float] = {}
        self._audiences: dict[str, str] = {}
        self._key = secrets.token_bytes(32)
        self.principal_id = str(uuid.uuid4())

    def _jwt(self, audience: str, issued: int, expires_on: int) -> str:
        def part(data: dict[str, Any]) -> bytes:
            return base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).rstrip(b"=")

        claims = {"aud": audience, "iss": f"https://sts.windows.net/{TENANT_ID}/", "iat": issued, "nbf": issued,
                  "exp": expires_on, "appid": CLIENT_ID, "appidacr": "2", "idtyp": "app", "oid": self.principal_id,
                  "sub": self.principal_id, "tid": TENANT_ID, "ver": "1.0", "uti": secrets.token_urlsafe(16),
                  "xms_mirid": "/subscriptions/emulator/resourcegroups/emulator/providers/"
                               "Microsoft.ManagedIdentity/userAssignedIdentities/amlfw-emulator"}
        signing_input = part({"typ": "JWT", "alg": "HS256", "kid": "amlfw-emulator"}) + b"." + part(claims)
        signature = base64.urlsafe_b64encode(hmac.new(self._key, signing_input, hashlib.sha256).digest()).rstrip(b"=")
        return (signing_input + b"." + signature).decode()

    def issue(self, query: dict[str, str], headers: dict[str, str]) -> tuple[int, dict[str, Any]]:
        """Answer a token request the way App Service's identity endpoint does."""
        if headers.get("x-identity-header") != self.identity_header:
            return 401, {"statusCode": 401, "message": "Unauthorized: the X-IDENTITY-HEADER is missing or wrong."}
        if query.get("api-version") != TOKEN_API_VERSION:
            return 400, {"statusCode": 400, "message": f"api-version must be {TOKEN_API_VERSION}."}
        resource = query.get("resource")
        if not resource:
            return 400, {"statusCode": 400, "message": "The 'resource' query parameter is required."}
        issued = int(time.time())
        expires_on = issued + TOKEN_LIFETIME
        token = self._jwt(resource, issued, expires_on)
        with self._lock:
            self._tokens[token] = expires_on
            self._audiences[token] = resource
        return 200, {
            "access_token": token,
            "expires_on": str(expires_on),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": CLIENT_ID,
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
            audience = self._audiences.get(token.strip(), "")
        if scheme.lower() != "bearer" or expires_on is None or expires_on < time.time():
            raise ArmError(
                401,
                "InvalidAuthenticationToken",
                "The access token is invalid.",
                headers={"WWW-Authenticate": _CHALLENGE.format("The access token is invalid.")},
            )
        if audience.rstrip("/").lower() not in ARM_AUDIENCES:
            raise ArmError(
                401,
                "InvalidAuthenticationTokenAudience",
                _AUDIENCE_MESSAGE.format(audience),
                headers={"WWW-Authenticate": _CHALLENGE.format("The access token has been obtained for wrong "
                                                               "audience or resource.")},
            )
