"""The ARM request log: one record per ARM request (admin and token calls are not ARM and are not logged)."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import unquote

WRITE_METHODS = frozenset({"PUT", "PATCH", "POST", "DELETE"})


@dataclass(frozen=True)
class RequestRecord:
    """One ARM request as the emulator saw it.

    ``started`` is when the request arrived and ``ended`` when its answer was ready (it is logged just before
    it is sent, so a client never sees an answer the log lacks); both are ``time.time()`` values. ``status``
    is 0 when the emulator reset the connection instead of answering. A request that started a long-running
    operation carries its ``operation_id``; ``operation_ended`` is when that operation reached a terminal
    state (``None`` while it runs).
    """

    method: str
    path: str
    query: dict[str, str]
    status: int
    started: float
    ended: float
    is_write: bool
    request_id: str
    operation_id: str | None = None
    operation_ended: float | None = None

    def write_span(self) -> tuple[float, float]:
        """From the request until its operation ended (``inf`` while it runs); rejected writes end with the response."""
        if self.operation_id is None:
            return self.started, self.ended
        end = math.inf if self.operation_ended is None else max(self.ended, self.operation_ended)
        return self.started, end

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "status": self.status,
            "started": self.started,
            "ended": self.ended,
            "is_write": self.is_write,
            "request_id": self.request_id,
            "operation_id": self.operation_id,
            "operation_ended": self.operation_ended,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> RequestRecord:
        return cls(**data)


class RequestLog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._records: list[RequestRecord] = []

    def append(self, record: RequestRecord) -> None:
        with self._lock:
            self._records.append(record)

    def snapshot(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._records)

    def clear(self) -> None:
        with self._lock:
            self._records.clear()


def with_operation_end(record: RequestRecord, ended: float | None) -> RequestRecord:
    return replace(record, operation_ended=ended)


def policy_prefix(sub: str, rg: str, policy: str) -> str:
    return f"/subscriptions/{sub}/resourcegroups/{rg}/providers/microsoft.network/firewallpolicies/{policy}".casefold()


def overlapping_writes(
    records: list[RequestRecord], sub: str, rg: str, policy: str
) -> list[tuple[RequestRecord, RequestRecord]]:
    """Pairs of writes to one policy (the policy or its children) whose spans overlap; ``[]`` when serial.

    A write's span runs from its request until its long-running operation reached a terminal state; a write
    that was rejected (409, 429, 400...) spans its HTTP exchange only. It still counts: a client that sends it
    while another write runs did not serialise.
    """
    prefix = policy_prefix(sub, rg, policy)
    writes = sorted(
        (r for r in records if r.is_write and (unquote(r.path).casefold() + "/").startswith(prefix + "/")),
        key=lambda r: r.started,
    )
    pairs: list[tuple[RequestRecord, RequestRecord]] = []
    for index, first in enumerate(writes):
        _, first_end = first.write_span()
        for second in writes[index + 1 :]:
            if second.started < first_end:
                pairs.append((first, second))
    return pairs
