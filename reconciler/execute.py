"""Apply a plan: one complete PUT per changed owned group, routes one by one. The shell around the pure plan.

- Writes to one firewall policy are strictly serial (a process-wide lock per policy id); different policies
  proceed concurrently.
- Right before the write the owned group is read again; if its etag moved since the plan, the plan is
  recomputed against what is there now (and may turn out empty). The PUT carries `If-Match` with that etag;
  a 412 re-observes and re-plans instead of retrying blindly.
- Transient failures (429 with Retry-After, 409 AnotherOperationInProgress, 5xx, connection errors, an
  operation ending Failed) retry the whole write-and-poll with capped exponential backoff and full jitter.
  The Azure clients send writes with their own retries off, so nothing is retried by two layers.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import structlog
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, stop_after_delay

from reconciler.arm import group_to_arm, route_to_arm
from reconciler.config import ResourceRef
from reconciler.errors import AzureError, ConcurrentModificationError, PlanError, TransientAzureError
from reconciler.model import Route
from reconciler.plan import ObservedGroup, TargetPlan

T = TypeVar("T")
log = structlog.get_logger("amlfw.apply")


class Reader(Protocol):
    def get_group(self) -> ObservedGroup | None: ...
    def policy_state(self) -> str | None: ...


class Writer(Protocol):
    def put_group(self, body: dict[str, Any], if_match: str | None) -> ObservedGroup: ...
    def put_route(self, table: ResourceRef, body: dict[str, Any]) -> None: ...
    def delete_route(self, table: ResourceRef, name: str) -> None: ...


@dataclass(frozen=True, slots=True)
class RetrySettings:
    attempts: int = 8
    initial_delay: float = 2.0
    max_delay: float = 60.0
    total_seconds: float = 1800.0  # real updates take minutes; give up after half an hour
    settle_poll: float = 10.0
    settle_timeout: float = 900.0
    replans: int = 3


@dataclass
class ApplyResult:
    group_written: bool = False
    routes_written: int = 0
    retries: int = 0
    replanned: bool = False
    plan: TargetPlan | None = None


_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def lock_for(key: str) -> threading.Lock:
    """The process-wide write lock of one firewall policy (or route table), by resource id."""
    with _locks_guard:
        return _locks.setdefault(key.lower(), threading.Lock())


def _wait(settings: RetrySettings) -> Callable[[RetryCallState], float]:
    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        retry_after = getattr(exc, "retry_after", None) or 0.0
        ceiling = min(settings.max_delay, settings.initial_delay * (2 ** (state.attempt_number - 1)))
        return max(float(retry_after), random.uniform(0, ceiling))  # noqa: S311 - jitter, not crypto

    return wait


def with_retries(fn: Callable[[], T], settings: RetrySettings, what: str, *,
                 sleep: Callable[[float], None] = time.sleep,
                 on_retry: Callable[[str, BaseException], None] | None = None) -> T:
    """Run `fn`, retrying TransientAzureError with capped exponential backoff, full jitter and Retry-After."""

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning("azure.retry", what=what, attempt=state.attempt_number, wait_s=round(wait, 2),
                    error=exc.describe() if isinstance(exc, AzureError) else str(exc))
        if on_retry is not None and exc is not None:
            on_retry(what, exc)

    retrying = Retrying(
        retry=retry_if_exception_type(TransientAzureError),
        stop=stop_after_attempt(settings.attempts) | stop_after_delay(settings.total_seconds),
        wait=_wait(settings),
        sleep=sleep,
        before_sleep=before_sleep,
        reraise=True,
    )
    return retrying(fn)


def wait_until_settled(reader: Reader, settings: RetrySettings, *, sleep: Callable[[float], None] = time.sleep,
                       clock: Callable[[], float] = time.monotonic) -> None:
    """Block while the policy is Updating/Deleting (someone else is writing), up to settle_timeout."""
    deadline = clock() + settings.settle_timeout
    while True:
        state = (reader.policy_state() or "").lower()
        if state not in ("updating", "deleting", "creating"):
            return
        if clock() >= deadline:
            raise TransientAzureError(f"the firewall policy stayed {state} for {settings.settle_timeout:g}s")
        log.info("policy.busy", state=state, wait_s=settings.settle_poll)
        sleep(settings.settle_poll)


def apply_plan(
    plan: TargetPlan,
    *,
    reader: Reader,
    writer: Writer,
    replan: Callable[[ObservedGroup | None], TargetPlan],
    route_table: ResourceRef | None,
    settings: RetrySettings,
    policy_busy: bool = False,
    sleep: Callable[[float], None] = time.sleep,
    on_retry: Callable[[str, BaseException], None] | None = None,
) -> ApplyResult:
    if not plan.applyable:
        raise PlanError("; ".join(e.message for e in plan.errors if e.blocking))
    result = ApplyResult(plan=plan)

    def count_retry(what: str, exc: BaseException) -> None:
        result.retries += 1
        if on_retry is not None:
            on_retry(what, exc)

    if plan.group_action != "none":
        with lock_for(plan.policy_id):
            _apply_group(plan, reader, writer, replan, settings, policy_busy, sleep, count_retry, result)
    if plan.routes:
        if route_table is None:  # pragma: no cover - plan only has route changes when a table is configured
            raise PlanError("route changes planned without a route table")
        table_id = f"{route_table.subscription_id}/{route_table.resource_group}/{route_table.name}"
        desired = {r.name.lower(): r for r in plan.desired_routes}
        with lock_for(table_id):
            for change in plan.routes:
                if change.action == "remove":
                    with_retries(_bind(writer.delete_route, route_table, change.route), settings,
                                 f"DELETE route {change.route}", sleep=sleep, on_retry=count_retry)
                else:
                    route: Route = desired[change.route.lower()]
                    with_retries(_bind(writer.put_route, route_table, route_to_arm(route)), settings,
                                 f"PUT route {change.route}", sleep=sleep, on_retry=count_retry)
                result.routes_written += 1
                log.info("route.applied", target=plan.target, route=change.route, action=change.action)
    return result


def _apply_group(plan: TargetPlan, reader: Reader, writer: Writer, replan: Callable[[ObservedGroup | None], TargetPlan],
                 settings: RetrySettings, policy_busy: bool, sleep: Callable[[float], None],
                 on_retry: Callable[[str, BaseException], None], result: ApplyResult) -> None:
    current = plan
    stale = False  # a 412 says the group moved even if our read shows the etag we planned against
    for _ in range(settings.replans + 1):
        if policy_busy:
            wait_until_settled(reader, settings, sleep=sleep)
        live = with_retries(reader.get_group, settings, "GET owned group", sleep=sleep, on_retry=on_retry)
        live_etag = live.etag if live else None
        if stale or live_etag != current.observed_etag:
            stale = False
            log.info("plan.stale", target=plan.target, observed_etag=current.observed_etag, live_etag=live_etag)
            current = replan(live)
            result.replanned = True
            result.plan = current
            if not current.applyable:
                raise PlanError("; ".join(e.message for e in current.errors if e.blocking))
            if current.group_action == "none":
                return
        assert current.body is not None
        body = group_to_arm(current.body)
        try:
            with_retries(_put(writer, body, live_etag), settings,
                         f"PUT rule collection group {current.group_name}", sleep=sleep, on_retry=on_retry)
        except ConcurrentModificationError as exc:
            log.warning("rcg.precondition_failed", target=plan.target, error=exc.describe())
            policy_busy = stale = True
            continue
        result.group_written = True
        counts = current.counts
        log.info("rcg.updated" if live is not None else "rcg.created", target=plan.target,
                 group=current.group_name, action=current.group_action, **counts)
        return
    raise PlanError(f"rule collection group {plan.group_name} kept changing while amlfw tried to write it "
                    f"({settings.replans + 1} attempts); someone else is editing it")


def _put(writer: Writer, body: dict[str, Any], if_match: str | None) -> Callable[[], ObservedGroup]:
    def call() -> ObservedGroup:
        return writer.put_group(body, if_match)

    return call


def _bind(fn: Callable[[ResourceRef, Any], None], table: ResourceRef, arg: Any) -> Callable[[], None]:
    def call() -> None:
        fn(table, arg)

    return call
