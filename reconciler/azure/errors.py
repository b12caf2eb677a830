"""Translate Azure SDK exceptions into amlfw's error tree, in exactly one place.

    HttpResponseError 429, 5xx, 408          -> TransientAzureError (retry_after from Retry-After)
    409 AnotherOperationInProgress / *NotAllowedWhenUpdatingOrDeleting -> TransientAzureError
    LRO ended Failed/Canceled                -> TransientAzureError (a re-PUT repairs it)
    412                                      -> ConcurrentModificationError (re-observe, re-plan)
    404                                      -> NotFoundError
    401, 403, ClientAuthenticationError      -> AuthError (never retried)
    ServiceRequestError/ServiceResponseError -> TransientAzureError (connection trouble)
    anything else from the SDK               -> AzureError (not retried)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from azure.core.exceptions import (
    AzureError as SdkAzureError,
)
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

from reconciler.errors import (
    AuthError,
    AzureError,
    ConcurrentModificationError,
    NotFoundError,
    TransientAzureError,
)

_BUSY_CODES = {
    "anotheroperationinprogress",
    "retryableerrorduetoanotheroperation",
    "firewallpolicyrulecollectiongroupupdatenotallowedwhenupdatingordeleting",
    "firewallpolicyrulecollectiongroupdeletenotallowedwhenupdatingordeleting",
    "firewallpolicyupdatenotallowedwhenupdatingordeleting",
}


def _header(exc: HttpResponseError, name: str) -> str | None:
    response: Any = exc.response
    if response is None:
        return None
    value = response.headers.get(name)
    return str(value) if value is not None else None


def _retry_after(exc: HttpResponseError) -> float | None:
    for name in ("retry-after-ms", "x-ms-retry-after-ms"):
        v = _header(exc, name)
        if v and v.replace(".", "", 1).isdigit():
            return float(v) / 1000.0
    v = _header(exc, "Retry-After")
    if v and v.replace(".", "", 1).isdigit():
        return float(v)
    return None


def _code(exc: HttpResponseError) -> str | None:
    err = getattr(exc, "error", None)
    code = getattr(err, "code", None) if err is not None else None
    if code:
        return str(code)
    response: Any = exc.response
    if response is not None:
        with contextlib.suppress(Exception):
            body = response.json()
            if isinstance(body, dict):
                inner = body.get("error") or {}
                if isinstance(inner, dict) and inner.get("code"):
                    return str(inner["code"])
    return None


def _message(exc: SdkAzureError) -> str:
    err = getattr(exc, "error", None)
    msg = getattr(err, "message", None) if err is not None else None
    text = str(msg or exc.message or exc)
    return text.splitlines()[0] if text else type(exc).__name__


def translate(exc: BaseException, action: str) -> AzureError:
    """An amlfw error for an SDK exception raised while doing `action` (e.g. "PUT rule collection group x")."""
    if isinstance(exc, ClientAuthenticationError):
        status = exc.status_code
        return AuthError(f"{action}: authentication failed: {_message(exc)}", status=status)
    if isinstance(exc, ServiceRequestError | ServiceResponseError):
        return TransientAzureError(f"{action}: connection failed: {_message(exc)}")
    if isinstance(exc, HttpResponseError):
        status = exc.status_code
        code = _code(exc)
        rid = _header(exc, "x-ms-request-id")
        kw: dict[str, Any] = {"status": status, "code": code, "request_id": rid, "retry_after": _retry_after(exc)}
        msg = f"{action}: {_message(exc)}"
        if status is not None and 200 <= status < 300:
            # a 2xx carrying an error is a long-running operation that ended Failed or Canceled
            return TransientAzureError(f"{action}: the long-running operation ended Failed: {_message(exc)}", **kw)
        if status in (401, 403):
            return AuthError(msg, **kw)
        if status == 404:
            return NotFoundError(msg, **kw)
        if status == 412:
            return ConcurrentModificationError(msg, **kw)
        if status == 409 and (code or "").lower() in _BUSY_CODES:
            return TransientAzureError(msg, **kw)
        if status in (408, 429) or (status is not None and status >= 500):
            return TransientAzureError(msg, **kw)
        return AzureError(msg, **kw)
    if isinstance(exc, SdkAzureError):
        return AzureError(f"{action}: {_message(exc)}")
    return AzureError(f"{action}: {type(exc).__name__}: {exc}")


@contextlib.contextmanager
def translated(action: str) -> Iterator[None]:
    """`with translated("GET policy x"): ...` raises amlfw errors instead of SDK ones."""
    try:
        yield
    except (SdkAzureError, OSError) as exc:
        raise translate(exc, action) from exc
