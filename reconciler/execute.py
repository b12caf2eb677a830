"""Apply a plan: one complete PUT per changed owned group, routes one by one. The shell around the pure plan.

The group write (`_apply_group`) is built so that nothing foreign is lost and no two of our writes overlap:

- Writes to one firewall policy are serial: a process-wide lock per policy id plus an flock file per policy id
  (`policy_write_lock`), so that targets and processes of one config on one host never overlap. Across hosts
  the HA lease is the guard (see docs/reliability.md).
- Every attempt re-reads the owned group right before its PUT and re-plans against what is there; a create
  carries `If-None-Match: *`, an update `If-Match` with the etag just read. A stale body is never re-sent.
- The PUT is sent once per attempt (SDK retries off). Its long-running operation is then polled on its own:
  a failed poll (reset, 5xx, 429) is retried, honouring Retry-After, and resumes the same operation URL; we
  never re-PUT while our own operation may still run.
- An unclear outcome (the operation ended Failed, the poll or the response was lost, 409/429 busy) waits until
  the policy and the group are no longer Updating, then re-observes and re-plans.
- After the operation succeeded the group is read back: the write is `applied` only if every foreign
  collection is the same JSON value as before and ours are as planned. A foreign collection that our own
  PUT changed (what is there is what we sent, and it differs from what was there) is a `LostUpdateError`;
  other differences (someone wrote after us) re-observe and re-plan.
- With an HA lease, `fence()` is checked before every PUT attempt: a lost lease (or a stopping daemon) stops
  the write path; the poll of an operation Azure already accepted continues to its end (within write_timeout).
- `write_timeout` (`RetrySettings.total_seconds`) bounds the whole write, lock wait, polls and waits included.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, TypeVar

import structlog
from tenacity import RetryCallState, Retrying, retry_if_exception_type, stop_after_attempt, stop_after_delay

from reconciler.arm import collection_from_arm, group_from_arm, group_to_arm, route_to_arm
from reconciler.config import ResourceRef
from reconciler.errors import (
    AmlfwError,
    AzureError,
    ConcurrentModificationError,
    FencedError,
    LostUpdateError,
    OperationFailedError,
    PlanError,
    TransientAzureError,
    WriteTimeoutError,
)
from reconciler.model import Route, RuleCollectionGroup
from reconciler.plan import ObservedGroup, TargetPlan, is_owned_collection

T = TypeVar("T")
log = structlog.get_logger("amlfw.apply")
BUSY = ("updating", "deleting", "creating")
LOCK_DIR_ENV = "AMLFW_LOCK_DIR"


@dataclass(frozen=True, slots=True)
class GroupRead:
    """The owned group as read: the model (None = absent) and the wire JSON it came from."""

    observed: ObservedGroup | None
    raw: Mapping[str, Any] | None


@dataclass(frozen=True, slots=True)
class WriteOperation:
    """A PUT Azure accepted: its status URL (None when it finished at once) and the delay it asked for."""

    action: str
    status: int
    url: str | None
    retry_after: float | None = None
    done: bool = False
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class PollResult:
    status: str  # InProgress | Succeeded (Failed raises OperationFailedError)
    retry_after: float | None = None


class Reader(Protocol):
    def read_group(self) -> GroupRead: ...
    def policy_state(self) -> str | None: ...


class Writer(Protocol):
    def start_group_put(self, body: dict[str, Any], *, if_match: str | None,
                        if_none_match: str | None) -> WriteOperation: ...
    def poll_group_put(self, operation: WriteOperation) -> PollResult: ...
    def put_route(self, table: ResourceRef, body: dict[str, Any]) -> None: ...
    def delete_route(self, table: ResourceRef, name: str) -> None: ...


@dataclass(frozen=True, slots=True)
class RetrySettings:
    attempts: int = 8
    initial_delay: float = 2.0
    max_delay: float = 60.0
    total_seconds: float = 1800.0  # write_timeout: real updates take minutes; give up after half an hour
    settle_poll: float = 10.0
    settle_timeout: float = 900.0
    replans: int = 3
    poll_interval: float = 30.0  # between polls when Azure sends no Retry-After
    poll_failures: int = 20  # consecutive failed polls of one operation before its outcome counts as unknown
    progress_interval: float = 10.0  # a "still updating" line this often while our operation runs


@dataclass
class ApplyResult:
    group_written: bool = False
    routes_written: int = 0
    retries: int = 0
    replanned: bool = False
    plan: TargetPlan | None = None
    puts: int = 0
    routes_done: list[str] = field(default_factory=list)  # "add amlfw-X", "remove amlfw-Y", in order


_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def lock_for(key: str) -> threading.Lock:
    """The process-wide write lock of one firewall policy (or route table), by resource id."""
    with _locks_guard:
        return _locks.setdefault(key.lower(), threading.Lock())


def lock_dir() -> Path:
    return Path(os.environ.get(LOCK_DIR_ENV) or Path(tempfile.gettempdir()) / "amlfw-locks")


@contextlib.contextmanager
def policy_write_lock(key: str, deadline: float, *, clock: Callable[[], float] = time.monotonic,
                      sleep: Callable[[float], None] = time.sleep) -> Iterator[bool]:
    """Hold the write lock of one policy: the process-wide lock, then an flock file shared by every amlfw
    process on this host (`$AMLFW_LOCK_DIR`, default `<tmp>/amlfw-locks`). Waits at most until `deadline`.
    Yields True when another write held it first (the policy may still be settling: re-check its state)."""
    thread_lock = lock_for(key)
    waited = not thread_lock.acquire(blocking=False)
    if waited and not thread_lock.acquire(timeout=max(0.0, deadline - clock())):
        raise WriteTimeoutError(f"waited past write_timeout for this process's other write to {key}")
    try:
        with _file_lock(key, deadline, clock, sleep) as file_waited:
            yield waited or file_waited
    finally:
        thread_lock.release()


@contextlib.contextmanager
def _file_lock(key: str, deadline: float, clock: Callable[[], float], sleep: Callable[[float], None]) -> Iterator[bool]:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: the process-wide lock and the lease remain
        yield False
        return
    directory = lock_dir()
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(directory / (hashlib.sha256(key.lower().encode()).hexdigest()[:32] + ".lock"),
                     os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        log.warning("lock.file_unavailable", directory=str(directory), error=str(exc))
        yield False
        return
    waited = False
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                waited = True
                if clock() >= deadline:
                    raise WriteTimeoutError(
                        f"waited past write_timeout for another amlfw process writing {key}") from None
                sleep(0.05)
        try:
            yield waited
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _backoff(settings: RetrySettings, attempt: int, retry_after: float | None) -> float:
    ceiling = min(settings.max_delay, settings.initial_delay * (2 ** max(0, attempt - 1)))
    return max(float(retry_after or 0.0), random.uniform(0, ceiling))  # noqa: S311 - jitter, not crypto


def _wait(settings: RetrySettings) -> Callable[[RetryCallState], float]:
    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        return _backoff(settings, state.attempt_number, getattr(exc, "retry_after", None))

    return wait


def with_retries(fn: Callable[[], T], settings: RetrySettings, what: str, *,
                 sleep: Callable[[float], None] = time.sleep,
                 on_retry: Callable[[str, BaseException], None] | None = None) -> T:
    """Run `fn`, retrying TransientAzureError with capped exponential backoff, full jitter and Retry-After.
    For reads and for route writes; the group write has its own loop (`_apply_group`)."""

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
                       clock: Callable[[], float] = time.monotonic, deadline: float | None = None,
                       group: bool = False) -> None:
    """Block while the policy (and, with `group`, the owned group) is Updating/Deleting, up to settle_timeout
    and `deadline`."""
    limit = clock() + settings.settle_timeout
    if deadline is not None:
        limit = min(limit, deadline)
    while True:
        state = (reader.policy_state() or "").lower()
        if state not in BUSY and group:
            live = reader.read_group().observed
            state = (live.provisioning_state or "").lower() if live else ""
        if state not in BUSY:
            return
        if clock() >= limit:
            if deadline is not None and clock() >= deadline:
                raise WriteTimeoutError(f"the firewall policy or group stayed {state} past write_timeout")
            raise TransientAzureError(f"the firewall policy stayed {state} for {settings.settle_timeout:g}s")
        log.info("policy.busy", state=state, wait_s=settings.settle_poll)
        sleep(max(0.0, min(settings.settle_poll, limit - clock())))


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
    clock: Callable[[], float] = time.monotonic,
    on_retry: Callable[[str, BaseException], None] | None = None,
    fence: Callable[[], bool] | None = None,
    progress: Callable[[str], None] | None = None,
) -> ApplyResult:
    """Write the plan. An AmlfwError raised here carries `applied`, the ApplyResult of what was written before it
    (the group, routes one by one); `progress` receives one line per phase and a "still updating" line every
    `settings.progress_interval` seconds while an operation runs."""
    if not plan.applyable:
        raise PlanError("; ".join(e.message for e in plan.errors if e.blocking))
    result = ApplyResult(plan=plan)

    def count_retry(what: str, exc: BaseException) -> None:
        result.retries += 1
        if on_retry is not None:
            on_retry(what, exc)

    try:
        _apply(plan, reader, writer, replan, route_table, settings, policy_busy, sleep, clock, count_retry, fence,
               progress or (lambda _line: None), result)
    except AmlfwError as exc:
        exc.applied = result  # what was written before the failure: the caller reports a partial apply honestly
        raise
    return result


def _apply(plan: TargetPlan, reader: Reader, writer: Writer, replan: Callable[[ObservedGroup | None], TargetPlan],
           route_table: ResourceRef | None, settings: RetrySettings, policy_busy: bool,
           sleep: Callable[[float], None], clock: Callable[[], float],
           count_retry: Callable[[str, BaseException], None], fence: Callable[[], bool] | None,
           progress: Callable[[str], None], result: ApplyResult) -> None:
    if plan.group_action != "none":
        deadline = clock() + settings.total_seconds
        with policy_write_lock(plan.policy_id, deadline, clock=clock, sleep=sleep) as waited:
            progress(f"{plan.group_name}: writing the rule collection group ({plan.group_action})")
            _GroupWrite(plan, reader, writer, replan, settings, sleep, clock, count_retry, fence, result,
                        deadline, progress).run(policy_busy or waited)
    if plan.routes:
        if route_table is None:  # pragma: no cover - plan only has route changes when a table is configured
            raise PlanError("route changes planned without a route table")
        table_id = f"{route_table.subscription_id}/{route_table.resource_group}/{route_table.name}"
        desired = {r.name.lower(): r for r in plan.desired_routes}
        with lock_for(table_id):
            for number, change in enumerate(plan.routes, start=1):
                _check_fence(fence)
                progress(f"writing route {number} of {len(plan.routes)} ({change.action} {change.route})")
                if change.action == "remove":
                    with_retries(_bind(writer.delete_route, route_table, change.route), settings,
                                 f"DELETE route {change.route}", sleep=sleep, on_retry=_fenced(count_retry, fence))
                else:
                    route: Route = desired[change.route.lower()]
                    with_retries(_bind(writer.put_route, route_table, route_to_arm(route)), settings,
                                 f"PUT route {change.route}", sleep=sleep, on_retry=_fenced(count_retry, fence))
                result.routes_written += 1
                result.routes_done.append(f"{change.action} {change.route}")
                log.info("route.applied", target=plan.target, route=change.route, action=change.action)


def _check_fence(fence: Callable[[], bool] | None) -> None:
    if fence is not None and not fence():
        raise FencedError("this replica may no longer write (the HA lease was lost, or the daemon is stopping); "
                          "no further PUT was sent")


def _fenced(on_retry: Callable[[str, BaseException], None],
            fence: Callable[[], bool] | None) -> Callable[[str, BaseException], None]:
    """A retry callback that also stops the retries when the lease is lost (tenacity calls it before sleeping)."""

    def call(what: str, exc: BaseException) -> None:
        on_retry(what, exc)
        _check_fence(fence)

    return call


def _collections(raw: Mapping[str, Any] | None) -> list[Any]:
    if not isinstance(raw, Mapping):
        return []
    props = raw.get("properties")
    cols = props.get("ruleCollections") if isinstance(props, Mapping) else None
    return list(cols) if isinstance(cols, list) else []


def _foreign(raw: Mapping[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for c in _collections(raw):
        name = str(c.get("name", "")) if isinstance(c, Mapping) else ""
        if not is_owned_collection(name):
            out[name.lower()] = c
    return out


def verify_write(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None,
                 planned: RuleCollectionGroup, sent: Mapping[str, Any] | None = None) -> tuple[list[str], list[str]]:
    """Compare the group read before our PUT, read back after it, the body we sent and our plan:
    (lost, other differences).

    `lost`: a foreign collection is no longer the same JSON value as before, and what is there now is what
    amlfw sent: our own write did not carry it through byte-identically. `other`: a foreign collection
    changed into something we did not send, appeared or is gone (our PUT carried it, so someone wrote after
    us), or our collections or the group priority are not as planned."""
    fb, fa, fs = _foreign(before), _foreign(after), _foreign(sent)
    lost: list[str] = []
    other = [f"foreign collection {n!r} appeared" for n in fa if n not in fb]
    other += [f"foreign collection {n!r} is gone (removed after amlfw's write)" for n in fb if n not in fa]
    for n in fb:
        if n in fa and fb[n] != fa[n]:
            ours_now = n in fs and _same_collection(fs[n], fa[n])
            if ours_now or sent is None:
                lost.append(f"foreign collection {n!r} changed (amlfw's write did not carry it through as it was)")
            else:
                other.append(f"foreign collection {n!r} changed (edited after amlfw's write)")
    if after is None:
        return lost, [*other, "the group is gone"]
    got = group_from_arm(after)
    if got.priority != planned.priority:
        other.append(f"group priority is {got.priority}, planned {planned.priority}")
    ours_got = {c.name.lower(): c for c in got.rule_collections if is_owned_collection(c.name)}
    ours_want = {c.name.lower(): c for c in planned.rule_collections if is_owned_collection(c.name)}
    for name in sorted(set(ours_got) | set(ours_want)):
        if ours_got.get(name) != ours_want.get(name):
            state = "missing" if name not in ours_got else "unplanned" if name not in ours_want else "not as planned"
            other.append(f"collection {name!r} is {state}")
    return lost, other


def _same_collection(a: Any, b: Any) -> bool:
    """The same collection for the model (server defaults and order of set-like lists aside)."""
    if not isinstance(a, Mapping) or not isinstance(b, Mapping):
        return bool(a == b)
    return bool(collection_from_arm(a) == collection_from_arm(b))


class _GroupWrite:
    """One group write: attempts, each re-observing and re-planning; see the module docstring."""

    def __init__(self, plan: TargetPlan, reader: Reader, writer: Writer,
                 replan: Callable[[ObservedGroup | None], TargetPlan], settings: RetrySettings,
                 sleep: Callable[[float], None], clock: Callable[[], float],
                 on_retry: Callable[[str, BaseException], None], fence: Callable[[], bool] | None,
                 result: ApplyResult, deadline: float, progress: Callable[[str], None] | None = None) -> None:
        self.plan, self.reader, self.writer, self.replan = plan, reader, writer, replan
        self.settings, self.sleep, self.clock, self.on_retry = settings, sleep, clock, on_retry
        self.fence, self.result, self.deadline = fence, result, deadline
        self.progress = progress or (lambda _line: None)
        self.log = log.bind(target=plan.target, group=plan.group_name)

    def _remaining(self) -> float:
        return self.deadline - self.clock()

    def _check_deadline(self, what: str) -> None:
        if self._remaining() <= 0:
            raise WriteTimeoutError(f"PUT rule collection group {self.plan.group_name}: {what} ran past "
                                    f"write_timeout ({self.settings.total_seconds:g}s)")

    def _pause(self, seconds: float) -> None:
        self.sleep(max(0.0, min(seconds, self._remaining())))

    def _read(self) -> GroupRead:
        bounded = replace(self.settings, total_seconds=max(0.001, self._remaining()))
        return with_retries(self.reader.read_group, bounded, "GET owned group", sleep=self.sleep,
                            on_retry=self.on_retry)

    def run(self, policy_busy: bool) -> None:
        current = self.plan
        unclear = policy_busy
        failures = replans = 0
        first = True
        maybe_landed = False  # a PUT Azure accepted, or whose answer was lost
        while True:
            _check_fence(self.fence)
            self._check_deadline("the write")
            if unclear:
                wait_until_settled(self.reader, self.settings, sleep=self.sleep, clock=self.clock,
                                   deadline=self.deadline, group=True)
            before = self._read()
            live = before.observed
            live_etag = live.etag if live else None
            if not first or live_etag != current.observed_etag:
                self.log.info("plan.refresh", observed_etag=current.observed_etag, live_etag=live_etag)
                current = self.replan(live)
                self.result.replanned, self.result.plan = True, current
                if not current.applyable:
                    raise PlanError("; ".join(e.message for e in current.errors if e.blocking))
                if current.group_action == "none":
                    # nothing (left) to do; if one of our PUTs may have landed, it is what made it so
                    self.result.group_written = self.result.group_written or maybe_landed
                    return
            first = False
            assert current.body is not None
            body = group_to_arm(current.body)
            _check_fence(self.fence)
            self._check_deadline("the write")
            try:
                operation = self.writer.start_group_put(body, if_match=live_etag,
                                                        if_none_match=None if live is not None else "*")
            except ConcurrentModificationError as exc:
                replans += 1
                self.log.warning("rcg.precondition_failed", error=exc.describe())
                if replans > self.settings.replans:
                    raise self._kept_changing(exc.describe()) from exc
                unclear = True
                continue
            except TransientAzureError as exc:
                maybe_landed = maybe_landed or exc.status is None  # no answer: it may have been carried out
                failures = self._failed(failures, exc, "PUT")
                unclear = True
                continue
            self.result.puts += 1
            maybe_landed = True
            try:
                self._wait_operation(operation)
            except WriteTimeoutError:
                raise
            except TransientAzureError as exc:  # ended Failed, or we lost track of it: outcome unknown
                failures = self._failed(failures, exc, "operation")
                unclear = True
                continue
            self.result.group_written = True  # our operation succeeded; the read-back says whether it stuck
            after = self._read()
            lost, other = verify_write(before.raw, after.raw, current.body, body)
            if lost:
                raise LostUpdateError(f"rule collection group {current.group_name}: after amlfw's write "
                                      f"{'; '.join(lost)}; check the group")
            if other:
                replans += 1
                self.log.warning("rcg.readback_differs", differences=other)
                if replans > self.settings.replans:
                    raise self._kept_changing("; ".join(other))
                unclear = False
                continue
            self.log.info("rcg.updated" if live is not None else "rcg.created", action=current.group_action,
                          **current.counts)
            return

    def _kept_changing(self, detail: str) -> PlanError:
        return PlanError(f"rule collection group {self.plan.group_name} kept changing while amlfw tried to write "
                         f"it ({self.settings.replans + 1} attempts); someone else is editing it: {detail}")

    def _failed(self, failures: int, exc: TransientAzureError, what: str) -> int:
        failures += 1
        if failures >= self.settings.attempts:
            raise exc
        wait = _backoff(self.settings, failures, exc.retry_after)
        self.log.warning("azure.retry", what=f"{what} of rule collection group {self.plan.group_name}",
                         attempt=failures, wait_s=round(wait, 2), error=exc.describe())
        self.on_retry(f"PUT rule collection group {self.plan.group_name}", exc)
        self._check_deadline("the write")
        self._pause(wait)
        return failures

    def _wait_operation(self, operation: WriteOperation) -> None:
        if operation.done:
            return
        if operation.url is None:
            raise TransientAzureError(f"{operation.action}: Azure answered {operation.status} without a status URL")
        delay = operation.retry_after
        poll_failures = 0
        started = self.clock()
        status = "InProgress"
        every = max(0.1, self.settings.progress_interval)
        last_line = started
        while True:  # no fence here: polling our own operation is not a write, and it runs to its end anyway
            self._check_deadline("polling its operation")
            left = delay if delay is not None else self.settings.poll_interval
            first = True
            while True:  # wait for the next poll, saying every `every` seconds (wall clock) that we still wait
                now = self.clock()
                if now - last_line >= every:
                    last_line = now
                    self.progress(f"{self.plan.group_name}: still updating ({status}, {now - started:.0f}s "
                                  "elapsed)")
                if (left <= 0 and not first) or self._remaining() <= 0:
                    break
                first = False
                chunk = min(left, every)
                self._pause(chunk)
                left -= chunk
            self._check_deadline("polling its operation")
            try:
                polled = self.writer.poll_group_put(operation)
            except OperationFailedError:
                raise
            except TransientAzureError as exc:
                poll_failures += 1
                self.on_retry(f"poll {operation.action}", exc)
                if poll_failures > self.settings.poll_failures:
                    raise TransientAzureError(f"{operation.action}: lost track of the operation after "
                                              f"{poll_failures} failed polls: {exc}") from exc
                delay = _backoff(self.settings, poll_failures, exc.retry_after)
                self.log.warning("poll.retry", attempt=poll_failures, wait_s=round(delay, 2), error=exc.describe())
                continue
            poll_failures = 0
            status = polled.status
            if polled.status.lower() == "succeeded":
                return
            delay = polled.retry_after


def _bind(fn: Callable[[ResourceRef, Any], None], table: ResourceRef, arg: Any) -> Callable[[], None]:
    def call() -> None:
        fn(table, arg)

    return call
