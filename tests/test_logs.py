"""`reconciler.logs`: JSON off a terminal, console on one; Azure's stdlib loggers through the same formatter
at WARNING by default; credentials redacted whatever key or text they hide in.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from reconciler import logs

TOUCHED = ("", "azure", "azure.core.pipeline.policies.http_logging_policy", "azure.identity", "msal")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    levels = {name: logging.getLogger(name).level for name in TOUCHED}
    yield
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_amlfw", False):
            root.removeHandler(h)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    structlog.reset_defaults()


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_json_lines_when_not_a_terminal() -> None:
    out = io.StringIO()
    logs.configure(stream=out)
    structlog.get_logger("amlfw").info(logs.EVENT_PASS_FINISHED, target="t1", outcome="in_sync", duration_ms=12,
                                       rules_added=0)
    [event] = lines(out)
    assert event["event"] == "reconcile.finished"
    assert event["level"] == "info"
    assert event["logger"] == "amlfw"
    assert (event["target"], event["outcome"], event["duration_ms"]) == ("t1", "in_sync", 12)
    assert event["timestamp"].endswith("Z")


def test_console_renderer_on_a_terminal() -> None:
    out = Tty()
    logs.configure(stream=out)
    structlog.get_logger("amlfw").warning("target.backoff", target="t1", retry_in_s=30)
    text = out.getvalue()
    assert "target.backoff" in text
    assert "retry_in_s" in text
    with pytest.raises(ValueError):
        json.loads(text)


def test_azure_stdlib_logs_share_the_formatter_at_warning_by_default() -> None:
    out = io.StringIO()
    logs.configure(stream=out)
    azure = logging.getLogger("azure.core.pipeline.policies._universal")
    azure.info("an info line nobody asked for")
    azure.warning("retrying %s", "GET")
    [event] = lines(out)
    assert event == {**event, "event": "retrying GET", "level": "warning",
                     "logger": "azure.core.pipeline.policies._universal"}


def test_azure_debug_on_request_but_credential_loggers_stay_quiet() -> None:
    out = io.StringIO()
    logs.configure(stream=out, level="DEBUG", azure_level="DEBUG")
    logging.getLogger("azure.mgmt.network").debug("visible")
    logging.getLogger("azure.identity._credentials.default").debug("token details")
    logging.getLogger("azure.identity._credentials.default").info("acquired a token")
    logging.getLogger("msal.application").info("cache event")
    logging.getLogger("azure.core.pipeline.policies.http_logging_policy").info("Request headers: ...")
    assert [e["event"] for e in lines(out)] == ["visible", "acquired a token"]


@pytest.mark.parametrize(("key", "value"), [
    ("token", "abc"), ("access_token", "abc"), ("Authorization", "Bearer abc"), ("client_secret", "abc"),
    ("password", "abc"), ("account_key", "abc"), ("sig", "abc"), ("credential", "abc"),
])
def test_secret_keys_are_redacted(key: str, value: str) -> None:
    out = io.StringIO()
    logs.configure(stream=out)
    structlog.get_logger("amlfw").info("x", **{key: value})
    assert lines(out)[0][key] == logs.REDACTED


@pytest.mark.parametrize(("text", "secret"), [
    ("Authorization: Bearer eyJ0eXAi.abc.def", "eyJ0eXAi.abc.def"),
    ("token eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJodHRwcyJ9.c2lnbmF0dXJlc2ln in text", "eyJhdWQiOiJodHRwcyJ9"),
    ("GET https://a.blob.core.windows.net/c/b?sv=2024&sig=SeCrEt%2Bsig&se=1", "SeCrEt%2Bsig"),
    ("DefaultEndpointsProtocol=https;AccountName=a;AccountKey=S3cr3tKey==;EndpointSuffix=x", "S3cr3tKey=="),
    ("x-identity-header=hdr-secret", "hdr-secret"),
])
def test_secret_values_are_redacted_in_structlog_and_stdlib_lines(text: str, secret: str) -> None:
    out = io.StringIO()
    logs.configure(stream=out)
    structlog.get_logger("amlfw").info("x", detail=text)
    logging.getLogger("azure.storage.blob").warning("failed: %s", text)
    raw = out.getvalue()
    assert secret not in raw
    assert logs.REDACTED in lines(out)[0]["detail"]


def test_tracebacks_are_one_redacted_string() -> None:
    out = io.StringIO()
    logs.configure(stream=out)
    try:
        raise RuntimeError("auth failed for Bearer abc.def.ghi")
    except RuntimeError:
        structlog.get_logger("amlfw").exception("daemon.pass_crashed", target="t")
    [event] = lines(out)
    assert isinstance(event["exception"], str)
    assert "RuntimeError" in event["exception"]
    assert "abc.def.ghi" not in out.getvalue()
