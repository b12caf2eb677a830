"""The error tree of amlfw.

    AmlfwError
    ├── UserError                 bad input: one line, exit 1, never a traceback
    │   ├── ConfigError           a configuration file: "<file>:<key>: <reason>"
    │   └── CatalogueError        the endpoint catalogue: "<file>:<key>: <reason>"
    ├── PlanError                 the live state cannot be reconciled safely (foreign group clash, limits)
    │   └── LostUpdateError       a read-back after our write shows foreign content changed or gone
    ├── FencedError               the HA lease was lost: the write path stops at once
    ├── PreflightError            a pre-flight check failed; the message names the fix
    └── AzureError                an Azure call failed (defined in reconciler.azure.errors, which adds
        ├── TransientAzureError   429, 5xx, 409 AnotherOperationInProgress, connection, LRO Failed: retried
        │   └── OperationFailedError  our long-running operation ended Failed/Canceled: re-observe, re-plan
        ├── WriteTimeoutError     the whole write (PUT, polls, waits) took longer than write_timeout
        ├── ConcurrentModification  412 or etag moved: re-observe and re-plan
        ├── NotFoundError
        ├── AuthError             401/403: never retried
        └── BadResponseError      an answer amlfw refuses: malformed, over the size cap, a paging loop;
            └── ForeignUrlError   a link (nextLink, Azure-AsyncOperation, Location) off the ARM origin.
                                  Carries the URL, status and a short excerpt of the body; never retried

The error type, not the call site, decides whether an operation is retried.
"""

from __future__ import annotations

QUOTE_LIMIT = 80


def quote(value: object, limit: int = QUOTE_LIMIT) -> str:
    """repr(value) for an error message, at most about `limit` characters: bad input is named, never echoed whole."""
    text = repr(value)
    if len(text) <= limit:
        return text
    size = f"{len(value):,} characters" if isinstance(value, str | bytes | list | dict) else "shortened"
    return f"{text[: limit - 4]}...{text[-1]} ({size})"


class AmlfwError(Exception):
    applied: object = None  # set by execute.apply_plan: what was written before this error
    """Base of every error amlfw raises on purpose."""


class UserError(AmlfwError):
    """A mistake in the user's input. Printed as one line; exit code 1."""

    def __init__(self, file: str, key: str, reason: str) -> None:
        # the safety net: a key or reason built from a huge input never floods the terminal
        key = key if len(key) <= 120 else f"{key[:80]}... ({len(key):,} characters)"
        reason = " ".join(reason.split()) if "\n" in reason else reason
        reason = reason if len(reason) <= 400 else f"{reason[:390]}... (shortened)"
        self.file = file
        self.key = key
        self.reason = reason
        super().__init__(f"{file}:{key}: {reason}" if key else f"{file}: {reason}")


class ConfigError(UserError):
    """A configuration file is unreadable or invalid."""


class CatalogueError(UserError):
    """The endpoint catalogue is unreadable or invalid."""


class PlanError(AmlfwError):
    """The live state cannot be reconciled without touching what amlfw does not own."""


class StalePlanError(AmlfwError):
    """A saved plan no longer matches the live state (or the configuration): nothing is written."""


class LostUpdateError(PlanError):
    """After our write, foreign content that was there before is changed or gone. Never retried."""


class FencedError(AmlfwError):
    """The HA lease is no longer held: no further write may be sent."""


class PreflightError(AmlfwError):
    """A pre-flight check failed; the message says how to fix it."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        super().__init__(message)


class AzureError(AmlfwError):
    """An Azure Resource Manager call failed. Carries the status and ARM's request id."""

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.request_id = request_id
        self.retry_after = retry_after
        super().__init__(message)

    def describe(self) -> str:
        parts = [str(self)]
        if self.status is not None:
            parts.append(f"status={self.status}")
        if self.code:
            parts.append(f"code={self.code}")
        if self.request_id:
            parts.append(f"x-ms-request-id={self.request_id}")
        return " ".join(parts)


class TransientAzureError(AzureError):
    """Worth retrying after a delay: throttling, another operation in progress, 5xx, network, LRO Failed."""

    retryable = True


class ConcurrentModificationError(AzureError):
    """The resource changed since it was observed (412, or the etag moved): re-observe and re-plan."""


class NotFoundError(AzureError):
    """The resource does not exist."""


class AuthError(AzureError):
    """Authentication or authorisation failed; never retried."""


class OperationFailedError(TransientAzureError):
    """A long-running operation we started ended Failed or Canceled; its effect is unknown until re-read."""


class WriteTimeoutError(AzureError):
    """The whole write, polls and waits included, ran past write_timeout."""


def excerpt(text: str | bytes | None, limit: int = 80) -> str:
    """At most about `limit` characters of `text` on one line, for error messages."""
    if text is None:
        return ""
    if isinstance(text, bytes):
        text = text[: limit * 4].decode("utf-8", "replace")
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


class BadResponseError(AzureError):
    """The service answered something amlfw cannot use safely (malformed, too large, a paging loop). The
    message names the URL, the status and a short excerpt of the body. Never retried."""

    def __init__(self, message: str, *, url: str | None = None, status: int | None = None,
                 body: str | bytes | None = None, request_id: str | None = None) -> None:
        self.url = url
        self.body_excerpt = excerpt(body)
        parts = [message]
        if url:
            parts.append(f"url={excerpt(url, 160)}")
        if self.body_excerpt:
            parts.append(f"body={self.body_excerpt!r}")
        super().__init__(" ".join(parts) if len(parts) > 1 else message, status=status, request_id=request_id)


class ForeignUrlError(BadResponseError):
    """A URL the service told the SDK to follow is not on the Resource Manager endpoint's origin; it was not
    requested, so the bearer token never left for it."""
