"""Fault injection: the next N matching ARM requests fail (or slow down) the way Azure makes them fail."""

from __future__ import annotations

import math
import random
import threading
from dataclasses import dataclass, field
from typing import Any, Protocol

from .errors import ArmError

FAILURE_KINDS = frozenset({"429", "409", "500", "503", "reset", "lost_response"})
FAULT_PARAMS: dict[str, dict[str, Any]] = {
    # kind: {param: default}
    "429": {"retry_after": 0, "code": "SubscriptionRequestsThrottled", "message": None},
    "409": {"code": "AnotherOperationInProgress", "message": None},
    "500": {"code": "InternalServerError", "message": "An error occurred."},
    "503": {"retry_after": None, "code": "ServiceUnavailable", "message": None},
    "reset": {},
    "lost_response": {},
    "slow": {"seconds": 1.0},
    "lro_failed": {"code": None, "message": None},
    "throttle_headers": {"value": 0},
}


@dataclass
class Fault:
    kind: str
    remaining: int
    method: str | None = None
    path_contains: str | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method.upper():
            return False
        return self.path_contains is None or self.path_contains.casefold() in path.casefold()

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "remaining": self.remaining,
            "method": self.method,
            "path_contains": self.path_contains,
            "params": self.params,
        }


WRITE_ONLY_KINDS = frozenset({"409", "lro_failed"})


class FaultInjector:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []
        self._chaos_rate = 0.0
        self._chaos_kinds: tuple[str, ...] = ()
        self._chaos_path: str | None = None
        self._chaos_params: dict[str, dict[str, Any]] = {}
        self._rng = random.Random()
        self.chaos_counts: dict[str, int] = {}

    def set_chaos(
        self,
        rate: float,
        kinds: tuple[str, ...] = ("reset", "lost_response", "500", "503", "429", "409", "lro_failed"),
        *,
        seed: int | None = None,
        path_contains: str | None = None,
        params: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        """Random faults: each matching ARM request (and each operation, for ``lro_failed``) fails with
        probability ``rate``, with a kind drawn from ``kinds`` (409 and lro_failed only for writes).
        ``rate=0`` turns it off; ``chaos_counts`` counts what was injected."""
        unknown = set(kinds) - set(FAULT_PARAMS)
        if unknown or not 0.0 <= rate <= 1.0:
            raise ValueError(f"bad chaos settings: rate {rate}, unknown kinds {sorted(unknown)}")
        with self._lock:
            self._chaos_rate, self._chaos_kinds, self._chaos_path = rate, tuple(kinds), path_contains
            self._chaos_params = {k: {**FAULT_PARAMS[k], **(params or {}).get(k, {})} for k in kinds}
            if seed is not None:
                self._rng = random.Random(seed)

    def roll(self, method: str, path: str, candidates: frozenset[str]) -> Fault | None:
        """A random fault of one of ``candidates`` for this request, or None (see ``set_chaos``)."""
        with self._lock:
            if self._chaos_rate <= 0.0:
                return None
            if self._chaos_path is not None and self._chaos_path.casefold() not in path.casefold():
                return None
            write = method.upper() in ("PUT", "PATCH", "POST", "DELETE")
            allowed = [k for k in self._chaos_kinds if k in candidates and (write or k not in WRITE_ONLY_KINDS)]
            if not allowed or self._rng.random() >= self._chaos_rate:
                return None
            kind = self._rng.choice(allowed)
            label = f"{kind} on poll" if "/operations/" in path.casefold() else kind
            self.chaos_counts[label] = self.chaos_counts.get(label, 0) + 1
            return Fault(kind, 1, method, None, dict(self._chaos_params[kind]))

    def inject(
        self, kind: str, count: int = 1, method: str | None = None, path_contains: str | None = None, **params: Any
    ) -> Fault:
        if kind not in FAULT_PARAMS:
            raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_PARAMS)}")
        unknown = set(params) - set(FAULT_PARAMS[kind])
        if unknown:
            raise ValueError(f"fault {kind!r} takes no parameter(s) {', '.join(sorted(unknown))}")
        if count < 1:
            raise ValueError("count must be at least 1")
        fault = Fault(kind, count, method, path_contains, {**FAULT_PARAMS[kind], **params})
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, method: str, path: str, kinds: frozenset[str]) -> Fault | None:
        """Consume one use of the oldest pending fault of one of ``kinds`` that matches the request."""
        with self._lock:
            for fault in self._faults:
                if fault.kind in kinds and fault.matches(method, path):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def pending(self) -> list[Fault]:
        with self._lock:
            return list(self._faults)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()


def failure_error(fault: Fault, sub: str, method: str) -> ArmError:
    """The ARM answer for an injected 429/409/500/503."""
    params = fault.params
    headers: dict[str, str] = {}
    if params.get("retry_after") is not None:
        headers.update(retry_after_headers(params["retry_after"]))
    operation = "write" if method.upper() in ("PUT", "PATCH", "POST") else method.lower()
    defaults = {
        "429": f"Number of '{operation}' requests for subscription '{sub}' actor 'emulator' exceeded. Please try "
        f"again after '{params.get('retry_after')}' seconds after additional tokens are available. Refer to "
        "https://aka.ms/arm-throttling for additional information.",
        "409": "Another operation on this or dependent resource is in progress. To retrieve status of the operation "
        "use uri: (injected fault, no operation).",
        "503": "The server (leader) is currently unable to handle the request. Please try again later.",
    }
    message = params.get("message") or defaults.get(fault.kind, "An error occurred.")
    return ArmError(int(fault.kind), params["code"], message, headers=headers)


def retry_after_headers(seconds: float) -> dict[str, str]:
    """``Retry-After`` in whole seconds, as Azure sends it (the SDK parses it as an int on LRO responses).

    A fractional value (only ever configured by tests) is rounded up in ``Retry-After`` and sent exactly in
    ``retry-after-ms``, which azure-core's retry and polling code read first.
    """
    if float(seconds).is_integer():
        return {"Retry-After": str(int(seconds))}
    return {"Retry-After": str(math.ceil(seconds)), "retry-after-ms": str(round(seconds * 1000))}


class ForeignWriterHost(Protocol):
    """What the foreign writer needs from the state (implemented by ``state.ArmState``)."""

    def begin_foreign_write(
        self, sub: str, rg: str, policy: str, hold_seconds: float, group: str | None, body: dict[str, Any] | None
    ) -> str | None: ...

    def end_foreign_write(self, operation_id: str) -> None: ...


class ForeignWriter:
    """Another tool writing to the same policy: takes the policy's write lock ``times`` times for ``hold_seconds``.

    While it holds the lock, the policy is ``Updating`` and our writes get 409 (or 429). Between holds it
    waits ``interval`` seconds. ``start()`` returns once the first hold has begun.
    """

    def __init__(
        self,
        host: ForeignWriterHost,
        sub: str,
        rg: str,
        policy: str,
        *,
        hold_seconds: float,
        times: int = 1,
        interval: float = 0.05,
        group: str | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        self._host = host
        self._target = (sub, rg, policy)
        self._hold = hold_seconds
        self._times = times
        self._interval = interval
        self._group = group
        self._body = body
        self._stop = threading.Event()
        self._first_hold = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"foreign-writer-{policy}", daemon=True)

    def start(self, timeout: float = 5.0) -> None:
        self._thread.start()
        if not self._first_hold.wait(timeout):
            self.stop()
            raise TimeoutError(f"foreign writer could not take the write lock of {self._target[2]} in {timeout}s")

    def _run(self) -> None:
        sub, rg, policy = self._target
        for index in range(self._times):
            operation_id = None
            while operation_id is None and not self._stop.is_set():
                operation_id = self._host.begin_foreign_write(sub, rg, policy, self._hold, self._group, self._body)
                if operation_id is None:
                    self._stop.wait(0.005)
            if operation_id is None:
                return
            self._first_hold.set()
            self._stop.wait(self._hold)
            self._host.end_foreign_write(operation_id)
            if index + 1 < self._times:
                self._stop.wait(self._interval)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
