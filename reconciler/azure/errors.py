"""Translate Azure SDK exceptions into amlfw's error tree, in exactly one place.

    HttpResponseError 429, 5xx, 408          -> TransientAzureError (retry_after from Retry-After)
    409 AnotherOperationInProgress / *NotAllowedWhenUpdatingOrDeleting -> TransientAzureError
    LRO ended Failed/Canceled                -> TransientAzureError (a re-PUT repairs it)
    412                                      -> ConcurrentModificationError (re-observe, re-plan)
    404                                      -> NotFoundError
    401, 403, ClientAuthenticationError      -> AuthError (never retried)
    ServiceRequestError/ServiceResponseError -> TransientAzureError (connection trouble)
    a body that does not parse, or parses into the wrong shape (DecodeError, ValueError, TypeError,
    AttributeError, KeyError while reading it)  -> BadResponseError with the URL, status and a body excerpt
                                                  of the last response on this thread (not retried)
    anything else from the SDK               -> AzureError (not retried)
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from azure.core.exceptions import (
    AzureError as SdkAzureError,
)
from azure.core.exceptions import (
    ClientAuthenticationError,
    DecodeError,
    HttpResponseError,
    ServiceRequestError,
    ServiceRequestTimeoutError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)

from reconciler.arm import MalformedArm
from reconciler.errors import (
    AuthError,
    AzureError,
    BadResponseError,
    ConcurrentModificationError,
    NotFoundError,
    TransientAzureError,
)


@dataclass(frozen=True, slots=True)
class SeenResponse:
    method: str
    url: str
    status: int
    head: bytes  # the first bytes of the body, for error messages
    request_id: str | None


_seen = threading.local()
_MALFORMED = (DecodeError, ValueError, TypeError, AttributeError, KeyError, IndexError)


def record_response(seen: SeenResponse) -> None:
    """Called by the clients' pipeline for every response: the last one per thread names a malformed answer."""
    _seen.last = seen


def last_response() -> SeenResponse | None:
    last: SeenResponse | None = getattr(_seen, "last", None)
    return last


def _from_exception(exc: BaseException) -> SeenResponse | None:
    """The response an SDK error carries (polls run in the poller's own thread, so this beats the thread's)."""
    response: Any = getattr(exc, "response", None)
    if response is None:
        return None
    with contextlib.suppress(Exception):
        request = response.request
        return SeenResponse(str(request.method), str(request.url), int(response.status_code),
                            bytes(response.body()[:240]), response.headers.get("x-ms-request-id"))
    return None


def malformed(exc: BaseException, action: str) -> BadResponseError:
    """A BadResponseError for an answer that could not be read, naming the response it came from."""
    seen = _from_exception(exc) or last_response()
    if isinstance(exc, MalformedArm):
        reason = str(exc)
    elif isinstance(exc, SdkAzureError):
        reason = _message(exc)
    else:
        reason = f"{type(exc).__name__}: {exc}" if str(exc).strip() else f"{type(exc).__name__} (does not fit the API)"
    message = f"{action}: malformed answer from the service: {reason.splitlines()[0] if reason else ''}"
    if seen is None:
        return BadResponseError(message)
    return BadResponseError(message, url=seen.url, status=seen.status, body=seen.head, request_id=seen.request_id)


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
    if isinstance(exc, _MALFORMED):
        return malformed(exc, action)
    if isinstance(exc, ClientAuthenticationError):
        status = exc.status_code
        return AuthError(f"{action}: authentication failed: {_message(exc)}", status=status)
    if isinstance(exc, ServiceResponseTimeoutError):
        return TransientAzureError(f"{action}: connection failed: no answer within azure.read_timeout "
                                   f"(raise it in the configuration if the endpoint is this slow): {_message(exc)}")
    if isinstance(exc, ServiceRequestTimeoutError):
        return TransientAzureError(f"{action}: connection failed: no connection within azure.connection_timeout: "
                                   f"{_message(exc)}")
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
    """`with translated("GET policy x"): ...` raises amlfw errors instead of SDK ones. Parse the answer inside
    the block too: a malformed one then becomes a BadResponseError naming the response."""
    _seen.last = None
    try:
        yield
    except (SdkAzureError, OSError, *_MALFORMED) as exc:
        raise translate(exc, action) from exc
