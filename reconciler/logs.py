"""structlog set-up: JSON lines when stderr is not a terminal, a console renderer when it is.

Azure SDK stdlib loggers go through the same processors (at WARNING by default). A redaction processor
drops anything that looks like a credential, whichever key it hides under. The credential libraries
(`azure.identity`, `msal`) never log below INFO/WARNING, whatever the Azure level: at DEBUG they log
token-cache events and decode tokens to log the account, which can put token material in an exception.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

EVENT_PASS_FINISHED = "reconcile.finished"  # noqa: S105 - an event name, not a password
_SECRET_KEYS = re.compile(r"(token|authorization|secret|password|credential|signature|sig|key)$", re.IGNORECASE)
_SECRET_VALUES = [
    re.compile(r"(?i)bearer\s+[A-Za-z0-9\-._~+/]+=*"),
    re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}"),  # a JWT
    re.compile(r"(?i)(x-identity-header|client_secret|sig|access_token)=([^&\s\"']+)"),
    re.compile(r"(?i)(accountkey|sharedaccesssignature)=([^;&\s\"']+)"),  # storage connection strings
]
REDACTED = "[redacted]"


def redact_text(text: str) -> str:
    for pattern in _SECRET_VALUES:
        text = pattern.sub(lambda m: (m.group(1) + "=" + REDACTED) if m.lastindex == 2 else REDACTED, text)
    return text


def redact(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for k, v in list(event.items()):
        if _SECRET_KEYS.search(k) and k not in ("event",):
            event[k] = REDACTED
        elif isinstance(v, str):
            event[k] = redact_text(v)
    return event


def configure(*, json_logs: bool | None = None, level: str = "INFO", azure_level: str = "WARNING",
              stream: Any = None) -> None:
    """Configure structlog and stdlib logging once, in the shell."""
    stream = stream or sys.stderr
    if json_logs is None:
        json_logs = not (hasattr(stream, "isatty") and stream.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact,
    ]
    renderer: Any = structlog.processors.JSONRenderer() if json_logs else structlog.dev.ConsoleRenderer(
        colors=hasattr(stream, "isatty") and stream.isatty())
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared[:-1], structlog.stdlib.ExtraAdder(), redact],
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    # JSON: tracebacks as one string (then redacted); the console renderer prints its own
                    *([structlog.processors.format_exc_info] if json_logs else []), redact, renderer],
    )
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_amlfw", False):
            root.removeHandler(h)
    handler._amlfw = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level.upper())
    logging.getLogger("azure").setLevel(azure_level.upper())
    azure = logging.getLevelName(azure_level.upper())
    logging.getLogger("azure.core.pipeline.policies.http_logging_policy").setLevel(max(azure, logging.WARNING))
    logging.getLogger("azure.identity").setLevel(max(azure, logging.INFO))
    logging.getLogger("msal").setLevel(max(azure, logging.WARNING))
