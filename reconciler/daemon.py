"""`amlfw reconcile` without `--once`: keep a fleet of targets right, for months, and say when it cannot.

    scheduler (main thread) --due target--> worker threads (max_workers) --> engine.reconcile_target
         ^   SIGHUP: reload            |             |  hooks: on_response -> metrics + per-subscription budget
         |   SIGTERM/SIGINT: drain     |             |         on_retry    -> metrics
         +------- outcome, next due <--+             |         may_write   -> not stopping and lease held
    HealthServer thread: /healthz /readyz /metrics   BlobLease thread (optional): acquire / renew / release

- Every target is reconciled every `interval` seconds (with +/- `jitter`), level-triggered: each pass re-reads
  the world, and an in-sync pass writes nothing. A failing target retries after `retry_initial` seconds,
  doubling up to `retry_max`; the others keep their rhythm.
- At most `max_workers` passes run at once, never two for one target; writes to one firewall policy are
  serialised by `execute.lock_for`. A subscription whose ARM responses show few remaining reads or writes
  (`x-ms-ratelimit-remaining-subscription-*`), or that answered 429, gets no new pass until its pause
  (`throttle.pause`, or Retry-After when longer) is over.
- SIGHUP re-reads the configuration and the catalogue: new or changed targets are reconciled at once; an
  invalid file is logged and the previous configuration kept. SIGTERM/SIGINT stop new work, let passes in
  flight (a write and its poll) finish within `shutdown_grace`, release the lease and exit 0 (1 when the
  grace ran out; a second signal stops waiting).
- With `lease:` configured, only the replica holding the blob lease writes; the others observe and report
  drift. Without it, run a single replica.

Configuration (top-level `daemon:` section of the config file; every key optional; see docs/operations.md):

    daemon:
      interval: 300            # seconds between passes of one target (--interval wins)
      jitter: 0.1              # +/- fraction of the interval, so passes spread out
      max_workers: 4           # passes at once (--max-workers wins)
      listen: 127.0.0.1:9464   # /healthz /readyz /metrics (--listen wins)
      ready_intervals: 3       # /readyz: each target succeeded within this many intervals
      retry_initial: 30        # first retry of a failing target, seconds; doubles each failure ...
      retry_max: 3600          # ... up to this
      shutdown_grace: 600      # seconds passes in flight get to finish after SIGTERM
      log_level: INFO          # amlfw's logs
      azure_log_level: WARNING # the Azure SDK's stdlib loggers
      throttle: {min_remaining_reads: 100, min_remaining_writes: 20, pause: 60}
      lease:                   # optional HA lease; give account_url or connection_string_env
        account_url: https://<account>.blob.core.windows.net
        container: amlfw
        blob: leader
        duration: 30           # 15..60 seconds
        credential: {kind: default}   # default | managed_identity | workload_identity (+ client_id)
        cloud: AzureCloud      # authority for the credential
"""

from __future__ import annotations

import argparse
import os
import queue
import random
import re
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import Any, Protocol

import structlog

from reconciler import logs
from reconciler.config import (
    CREDENTIAL_KINDS,
    DAEMON_KEY,
    CredentialSettings,
    Target,
    _Ctx,
    _k,
    _mapping,
    _number,
    _str,
    _type,
    read_yaml,
)
from reconciler.engine import Hooks, reconcile_target
from reconciler.errors import AmlfwError, UserError
from reconciler.metrics import CONTENT_TYPE, RATELIMIT_HEADERS, Metrics
from reconciler.model import CLOUDS, DesiredTarget
from reconciler.plan import Outcome
from reconciler.server import DEFAULT_HOST, DEFAULT_PORT, HealthServer

log = structlog.get_logger("amlfw.daemon")

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
TICK = 0.25  # the scheduler wakes at least this often (signals are noticed within one tick)
HEARTBEAT_LIMIT = 30.0  # /healthz fails when the scheduler loop has not turned for this long
PASS_MARGIN = 300.0  # a pass may take write_timeout (which bounds its writes) plus this for its reads
CONTAINER_RE = re.compile(r"^(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

Pair = tuple[Target, DesiredTarget]


# ---------------------------------------------------------------------------------------------- settings


@dataclass(frozen=True, slots=True)
class ThrottleSettings:
    min_remaining_reads: int = 100
    min_remaining_writes: int = 20
    pause: float = 60.0


@dataclass(frozen=True, slots=True)
class LeaseSettings:
    container: str
    blob: str = "amlfw-leader"
    duration: int = 30
    account_url: str | None = None
    connection_string_env: str | None = None
    credential: CredentialSettings = field(default_factory=CredentialSettings)
    cloud: str = "AzureCloud"


@dataclass(frozen=True, slots=True)
class DaemonSettings:
    interval: float = 300.0
    jitter: float = 0.1
    max_workers: int = 4
    listen: tuple[str, int] = (DEFAULT_HOST, DEFAULT_PORT)
    ready_intervals: float = 3.0
    retry_initial: float = 30.0
    retry_max: float = 3600.0
    shutdown_grace: float = 600.0
    log_level: str = "INFO"
    azure_log_level: str = "WARNING"
    throttle: ThrottleSettings = field(default_factory=ThrottleSettings)
    lease: LeaseSettings | None = None


_KEYS = {"interval", "jitter", "max_workers", "listen", "ready_intervals", "retry_initial", "retry_max",
         "shutdown_grace", "log_level", "azure_log_level", "throttle", "lease"}
_RANGES: dict[str, tuple[float, float]] = {
    "interval": (0.5, 86400), "jitter": (0, 0.5), "max_workers": (1, 64), "ready_intervals": (1, 1000),
    "retry_initial": (0.1, 86400), "retry_max": (0.1, 86400), "shutdown_grace": (0, 3600),
}
_THROTTLE_RANGES: dict[str, tuple[float, float]] = {
    "min_remaining_reads": (0, 100000), "min_remaining_writes": (0, 100000), "pause": (0, 3600),
}
_LEASE_KEYS = {"account_url", "connection_string_env", "container", "blob", "duration", "credential", "cloud"}


def parse_listen(value: str) -> tuple[str, int] | None:
    """`HOST:PORT` or `[V6]:PORT` -> (host, port); None when malformed."""
    m = re.match(r"^\[([0-9A-Fa-f:.]+)\]:(\d{1,5})$", value) or re.match(r"^([A-Za-z0-9.\-]+):(\d{1,5})$", value)
    if not m or int(m.group(2)) > 65535:
        return None
    return m.group(1), int(m.group(2))


def read_daemon_section(path: str | Path) -> object:
    raw = read_yaml(Path(path))
    return raw.get(DAEMON_KEY) if isinstance(raw, dict) else None


def daemon_settings(file: str, raw: object, args: argparse.Namespace | None = None) -> DaemonSettings:
    """Validate a `daemon:` section (errors as `<file>:daemon.<key>: <reason>`), then apply CLI overrides."""
    ctx = _Ctx(file)
    d = _mapping(ctx, DAEMON_KEY, raw, _KEYS, required=False)
    defaults = DaemonSettings()
    values: dict[str, Any] = {}
    for name, (lo, hi) in _RANGES.items():
        value = _number(ctx, _k(DAEMON_KEY, name), d.get(name, getattr(defaults, name)), lo, hi)
        values[name] = int(value) if name == "max_workers" else value
    if values["retry_max"] < values["retry_initial"]:
        raise ctx.fail("daemon.retry_max", f"{values['retry_max']:g} is below retry_initial "
                       f"({values['retry_initial']:g})")
    listen = defaults.listen
    if "listen" in d:
        text = _str(ctx, "daemon.listen", d["listen"])
        parsed = parse_listen(text or "")
        if parsed is None:
            raise ctx.fail("daemon.listen", f"invalid address {text!r}: expected HOST:PORT, e.g. 127.0.0.1:9464")
        listen = parsed
    for name in ("log_level", "azure_log_level"):
        level = (_str(ctx, _k(DAEMON_KEY, name), d.get(name, getattr(defaults, name))) or "").upper()
        if level not in LOG_LEVELS:
            raise ctx.fail(_k(DAEMON_KEY, name), f"unknown level {level!r} (expected one of {', '.join(LOG_LEVELS)})")
        values[name] = level
    th = _mapping(ctx, "daemon.throttle", d.get("throttle"), set(_THROTTLE_RANGES), required=False)
    th_defaults = ThrottleSettings()
    tv = {name: _number(ctx, f"daemon.throttle.{name}", th.get(name, getattr(th_defaults, name)), lo, hi)
          for name, (lo, hi) in _THROTTLE_RANGES.items()}
    throttle = ThrottleSettings(min_remaining_reads=int(tv["min_remaining_reads"]),
                                min_remaining_writes=int(tv["min_remaining_writes"]), pause=tv["pause"])
    lease = _lease(ctx, d.get("lease")) if d.get("lease") is not None else None
    settings = DaemonSettings(listen=listen, throttle=throttle, lease=lease, **values)
    return _overrides(settings, args) if args is not None else settings


def _lease(ctx: _Ctx, raw: object) -> LeaseSettings:
    key = "daemon.lease"
    le = _mapping(ctx, key, raw, _LEASE_KEYS)
    url = _str(ctx, f"{key}.account_url", le.get("account_url"), required=False)
    env = _str(ctx, f"{key}.connection_string_env", le.get("connection_string_env"), required=False)
    if (url is None) == (env is None):
        raise ctx.fail(key, "give exactly one of account_url (Microsoft Entra sign-in) or connection_string_env")
    if url is not None and not re.match(r"^https://[A-Za-z0-9.\-]+(:\d+)?(/[A-Za-z0-9.\-]*)?$", url):
        raise ctx.fail(f"{key}.account_url", f"invalid URL {url!r}: expected https://<account>.blob.core.windows.net")
    if env is not None and not ENV_NAME_RE.match(env):
        raise ctx.fail(f"{key}.connection_string_env", f"invalid environment variable name {env!r}")
    container = _str(ctx, f"{key}.container", le.get("container")) or ""
    if not CONTAINER_RE.match(container):
        raise ctx.fail(f"{key}.container", f"invalid container name {container!r}: 3-63 lower-case letters, digits "
                       "and single hyphens, starting and ending with a letter or digit")
    blob = _str(ctx, f"{key}.blob", le.get("blob", "amlfw-leader")) or ""
    if len(blob) > 1024 or blob.endswith((".", "/")):
        raise ctx.fail(f"{key}.blob", f"invalid blob name {blob!r}: 1-1024 characters, not ending in '.' or '/'")
    duration = le.get("duration", 30)
    if isinstance(duration, bool) or not isinstance(duration, int):
        raise ctx.fail(f"{key}.duration", f"expected a whole number of seconds, got {_type(duration)}")
    if not 15 <= duration <= 60:
        raise ctx.fail(f"{key}.duration", f"{duration} is outside 15-60 (the durations Azure Storage allows)")
    cred = _mapping(ctx, f"{key}.credential", le.get("credential"), {"kind", "client_id"}, required=False)
    kind = _str(ctx, f"{key}.credential.kind", cred.get("kind", "default")) or ""
    if kind not in CREDENTIAL_KINDS:
        raise ctx.fail(f"{key}.credential.kind",
                       f"unknown credential kind {kind!r} (expected one of {', '.join(CREDENTIAL_KINDS)})")
    if env is not None and cred:
        raise ctx.fail(f"{key}.credential", "only used with account_url (a connection string carries its own key)")
    if env is not None and not os.environ.get(env):
        raise ctx.fail(f"{key}.connection_string_env", f"environment variable {env} is not set")
    cloud = _str(ctx, f"{key}.cloud", le.get("cloud", "AzureCloud")) or ""
    if cloud not in CLOUDS:
        raise ctx.fail(f"{key}.cloud", f"unknown cloud {cloud!r} (expected one of {', '.join(CLOUDS)})")
    client_id = _str(ctx, f"{key}.credential.client_id", cred.get("client_id"), required=False)
    return LeaseSettings(container=container, blob=blob, duration=duration, account_url=url,
                         connection_string_env=env, credential=CredentialSettings(kind=kind, client_id=client_id),
                         cloud=cloud)


def _overrides(settings: DaemonSettings, args: argparse.Namespace) -> DaemonSettings:
    interval = getattr(args, "interval", None)
    if interval is not None:
        lo, hi = _RANGES["interval"]
        if not lo <= interval <= hi:
            raise UserError("--interval", "", f"{interval:g} is outside {lo:g}-{hi:g} seconds")
        settings = replace(settings, interval=float(interval))
    workers = getattr(args, "max_workers", None)
    if workers is not None:
        if not 1 <= workers <= 64:
            raise UserError("--max-workers", "", f"{workers} is outside 1-64")
        settings = replace(settings, max_workers=int(workers))
    listen = getattr(args, "listen", None)
    if listen is not None:
        parsed = parse_listen(listen)
        if parsed is None:
            raise UserError("--listen", "", f"invalid address {listen!r}: expected HOST:PORT, e.g. 127.0.0.1:9464")
        settings = replace(settings, listen=parsed)
    return settings


# ---------------------------------------------------------------------------------------------- budget


class SubscriptionBudget:
    """Per-subscription pause that keeps passes within ARM's request limits."""

    def __init__(self, settings: ThrottleSettings, metrics: Metrics, clock: Callable[[], float]) -> None:
        self.settings = settings
        self._metrics = metrics
        self._clock = clock
        self._lock = threading.Lock()
        self._until: dict[str, float] = {}

    def observe(self, subscription: str, method: str, status: int, headers: dict[str, str]) -> None:
        s = self.settings
        if status == 429:
            self.pause(subscription, max(_seconds(headers.get("retry-after")), s.pause), "429")
            return
        for header, kind in RATELIMIT_HEADERS.items():
            value = _int(headers.get(header))
            floor = s.min_remaining_reads if kind == "reads" else s.min_remaining_writes
            if value is not None and value < floor:
                self.pause(subscription, s.pause, f"low_remaining_{kind}")
                return

    def pause(self, subscription: str, seconds: float, reason: str) -> None:
        now = self._clock()
        until = now + seconds
        with self._lock:
            previous = self._until.get(subscription, 0.0)
            if until <= previous:
                return
            self._until[subscription] = until
        if previous <= now:
            self._metrics.throttle_pauses.labels(subscription, reason).inc()
            log.warning("arm.throttled", subscription=subscription, reason=reason, pause_s=round(seconds, 2))

    def paused_until(self, subscription: str) -> float:
        with self._lock:
            return self._until.get(subscription, 0.0)


def _seconds(value: str | None) -> float:
    try:
        return max(0.0, float(value)) if value is not None else 0.0
    except ValueError:
        return 0.0


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


# ---------------------------------------------------------------------------------------------- daemon


class Reconcile(Protocol):
    def __call__(self, target: Target, desired: DesiredTarget, *, dry_run: bool,
                 hooks: Hooks | None = None) -> Outcome: ...


class Lease(Protocol):
    def start(self) -> Any: ...
    def may_write(self) -> bool: ...
    def stop(self, *, release: bool) -> bool: ...


@dataclass(eq=False)
class TargetState:
    target: Target
    desired: DesiredTarget
    next_due: float
    in_flight: bool = False
    dirty: bool = False  # the configuration changed while a pass was running: run again at once
    removed: bool = False
    failures: int = 0
    passes: int = 0
    last_status: str | None = None
    last_error: str | None = None
    last_end: float | None = None
    last_success: float | None = None
    started: float | None = None  # when the pass in flight was dispatched

    @property
    def name(self) -> str:
        return self.target.name

    def stuck_for(self, now: float) -> float | None:
        """Seconds past its bound (write_timeout + PASS_MARGIN) of the pass in flight, None when within it."""
        if not self.in_flight or self.started is None:
            return None
        over = now - self.started - (self.target.azure.write_timeout + PASS_MARGIN)
        return over if over > 0 else None


Loader = Callable[[], tuple[Sequence[Pair], DaemonSettings]]
LeaseFactory = Callable[[LeaseSettings, Callable[[], None], Callable[[str], None]], Lease]


class Daemon:
    def __init__(
        self,
        settings: DaemonSettings,
        pairs: Sequence[Pair],
        *,
        dry_run: bool = False,
        load: Loader | None = None,
        reconcile: Reconcile = reconcile_target,
        lease_factory: LeaseFactory | None = None,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.settings = settings
        self.dry_run = dry_run
        self.metrics = metrics or Metrics()
        self._load = load
        self._reconcile = reconcile
        self._lease_factory = lease_factory or _blob_lease
        self._clock, self._wall = clock, wall
        self._rng = rng or random.Random()  # noqa: S311 - jitter, not crypto
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._wake = threading.Event()
        self._queue: queue.Queue[TargetState | None] = queue.Queue()
        self._workers = settings.max_workers
        self._running = 0
        self._targets: dict[str, TargetState] = {}
        self._budget = SubscriptionBudget(settings.throttle, self.metrics, clock)
        self._lease: Lease | None = None
        self._stopping = False
        self._force = False
        self._reload_requested = False
        self._heartbeat = clock()
        self._signal: int | None = None
        self.server: HealthServer | None = None
        now = clock()
        for target, desired in pairs:
            self._add(target, desired, now)
        self.metrics.targets.set(len(self._targets))
        self.metrics.ready.set_function(lambda: 1.0 if self.readiness()[0] else 0.0)
        self.metrics.lease_held.set_function(lambda: 1.0 if self._lease_allows() and not self.dry_run else 0.0)

    # ------------------------------------------------------------------------------------------ control

    def request_stop(self) -> None:
        """Stop new work (what SIGTERM/SIGINT do); a second call stops waiting for passes in flight."""
        if self._stopping:
            self._force = True
        self._stopping = True

    def request_reload(self) -> None:
        """Re-read the configuration at the next tick (what SIGHUP does)."""
        self._reload_requested = True

    def run(self, *, install_signals: bool = True) -> int:
        if install_signals:
            self._install_signals()
        host, port = self.settings.listen
        try:
            self.server = HealthServer(host, port, health=self.health, ready=self.readiness,
                                       metrics=lambda: (self.metrics.render(), CONTENT_TYPE))
        except OSError as exc:
            raise UserError("--listen", "", f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        lease = self.settings.lease
        if lease is not None and not self.dry_run:
            try:
                self._lease = self._lease_factory(lease, self._lease_acquired, self._lease_lost)
            except BaseException:
                self.server.stop()
                raise
        elif lease is not None:
            log.info("lease.skipped", reason="a dry-run daemon never writes, so it needs no lease")
        for i in range(self._workers):
            threading.Thread(target=self._worker, name=f"amlfw-worker-{i}", daemon=True).start()
        self.server.start()
        if self._lease is not None:
            self._lease.start()  # one acquisition attempt before the first passes
        log.info("daemon.started", targets=len(self._targets), interval_s=self.settings.interval,
                 max_workers=self._workers, dry_run=self.dry_run, listen=f"{host}:{self.server.address[1]}",
                 lease=self._lease_description())
        try:
            self._loop()
        finally:
            code = self._shutdown()
        return code

    # ------------------------------------------------------------------------------------------ probes

    def health(self) -> tuple[bool, dict[str, Any]]:
        now = self._clock()
        age = now - self._heartbeat
        with self._lock:
            running = self._running
            stuck = sorted(st.name for st in self._targets.values() if st.stuck_for(now) is not None)
        details: dict[str, Any] = {"loop_age_s": round(age, 2), "passes_in_flight": running,
                                   "stopping": self._stopping}
        if stuck:
            details["stuck"] = stuck  # a pass running past write_timeout + PASS_MARGIN: a wait that never ends
        return age < HEARTBEAT_LIMIT and not stuck, details

    def readiness(self) -> tuple[bool, dict[str, Any]]:
        now = self._clock()
        window = self.settings.ready_intervals * self.settings.interval
        details: dict[str, Any] = {}
        ready_count = 0
        with self._lock:
            states = list(self._targets.values())
        for st in states:
            age = None if st.last_success is None else now - st.last_success
            ok = age is not None and age <= window
            ready_count += ok
            details[st.name] = {
                "ready": ok,
                "last_status": st.last_status,
                "last_error": st.last_error,
                "last_success_age_s": None if age is None else round(age, 1),
                "consecutive_failures": st.failures,
                "passes": st.passes,
                "in_flight": st.in_flight,
                "next_pass_in_s": None if st.in_flight else round(max(0.0, st.next_due - now), 1),
            }
        ready = ready_count == len(states) and bool(states) and not self._stopping
        return ready, {"ready_targets": ready_count, "total_targets": len(states), "window_s": window,
                       "stopping": self._stopping, "dry_run": self.dry_run, "lease": self._lease_description(),
                       "targets": details}

    # ------------------------------------------------------------------------------------------ loop

    def _loop(self) -> None:
        while True:
            self._heartbeat = self._clock()
            if self._reload_requested:
                self._reload_requested = False
                self._reload()
            if self._stopping:
                return
            next_due = self._dispatch_due()
            timeout = min(TICK, max(0.0, next_due - self._clock()))
            self._wake.wait(timeout)
            self._wake.clear()

    def _dispatch_due(self) -> float:
        """Hand due targets to idle workers; return when the next one will be due."""
        now = self._clock()
        earliest = now + TICK
        with self._lock:
            free = self._workers - self._running
            waiting = sorted((st for st in self._targets.values() if not st.in_flight), key=lambda s: s.next_due)
            for st in waiting:
                if st.next_due > now:
                    earliest = min(earliest, st.next_due)
                    break
                if free <= 0:
                    break
                paused = self._budget.paused_until(st.target.subscription_id)
                if paused > now:
                    st.next_due = paused
                    continue
                st.in_flight, st.started = True, now
                self._running += 1
                free -= 1
                self._queue.put(st)
        return earliest

    def _worker(self) -> None:
        while True:
            st = self._queue.get()
            if st is None:
                return
            target, desired = st.target, st.desired
            outcome = self._pass(target, desired)
            self._finish(st, outcome)

    def _pass(self, target: Target, desired: DesiredTarget) -> Outcome:
        sub, name = target.subscription_id, target.name

        def on_response(method: str, status: int, headers: dict[str, str]) -> None:
            self.metrics.arm_response(sub, method, status, headers)
            self._budget.observe(sub, method, status, headers)

        def on_retry(what: str, exc: BaseException) -> None:
            self.metrics.retried(name)

        hooks = Hooks(on_response=on_response, on_retry=on_retry, may_write=self._may_write)
        try:
            return self._reconcile(target, desired, dry_run=self.dry_run, hooks=hooks)
        except Exception as exc:  # one broken pass must not take the daemon down (logged with its traceback)
            log.exception("daemon.pass_crashed", target=name, error=f"{type(exc).__name__}: {exc}")
            return Outcome(name, "error", error=f"internal error: {type(exc).__name__}: {exc}")

    def _finish(self, st: TargetState, outcome: Outcome) -> None:
        now = self._clock()
        failed = not outcome.ok  # an error, or a partial apply
        with self._idle:
            self._running -= 1
            st.in_flight = False
            st.passes += 1
            st.failures = st.failures + 1 if failed else 0
            st.last_status, st.last_error, st.last_end = outcome.status, outcome.error, now
            if not failed:
                st.last_success = now
            if st.dirty:
                st.dirty, st.next_due = False, now
            else:
                st.next_due = now + self._delay(st.failures)
            failures, delay = st.failures, st.next_due - now
            self._idle.notify_all()
        if not st.removed:
            self.metrics.pass_finished(outcome, wall_time=self._wall(), failures=failures)
        if failed and not st.removed:
            log.warning("target.backoff", target=st.name, consecutive_failures=failures, retry_in_s=round(delay, 1))
        self._wake.set()

    def _delay(self, failures: int) -> float:
        s = self.settings
        base = s.interval if failures == 0 else min(s.retry_max, s.retry_initial * 2.0 ** (failures - 1))
        return base * self._rng.uniform(1.0 - s.jitter, 1.0 + s.jitter)

    def _may_write(self) -> bool:
        return not self._stopping and self._lease_allows()

    def _lease_allows(self) -> bool:
        return self._lease is None or self._lease.may_write()

    def _lease_description(self) -> str:
        if self.settings.lease is None or self.dry_run:
            return "none"
        return "held" if self._lease_allows() else "passive"

    def _lease_acquired(self) -> None:
        self.metrics.lease_transitions.labels("acquired").inc()
        now = self._clock()
        with self._lock:  # the new leader looks at every target now instead of at its next interval
            for st in self._targets.values():
                if st.in_flight:
                    st.dirty = True
                else:
                    st.next_due = min(st.next_due, now)
        self._wake.set()

    def _lease_lost(self, reason: str) -> None:
        self.metrics.lease_transitions.labels("lost").inc()

    # ------------------------------------------------------------------------------------------ reload

    def _add(self, target: Target, desired: DesiredTarget, now: float) -> None:
        self._targets[target.name] = TargetState(target, desired, next_due=now)
        self.metrics.target_added(target.name, target.catalogue_version)

    def _reload(self) -> None:
        if self._load is None:
            log.warning("config.reload_skipped", reason="no configuration file to reload")
            return
        try:
            pairs, settings = self._load()
        except AmlfwError as exc:
            self.metrics.config_reloads.labels("error").inc()
            log.error("config.reload_failed", error=str(exc), effect="kept the previous configuration")
            return
        except Exception as exc:  # a bad reload must never stop the daemon (logged with its traceback)
            self.metrics.config_reloads.labels("error").inc()
            log.exception("config.reload_failed", error=f"{type(exc).__name__}: {exc}",
                          effect="kept the previous configuration")
            return
        now = self._clock()
        added: list[str] = []
        changed: list[str] = []
        removed: list[str] = []
        with self._lock:
            new = {t.name: (t, d) for t, d in pairs}
            for name in list(self._targets):
                if name not in new:
                    st = self._targets.pop(name)
                    st.removed = True
                    removed.append(name)
            for name, (target, desired) in new.items():
                current = self._targets.get(name)
                if current is None:
                    self._add(target, desired, now)
                    added.append(name)
                elif current.target != target or current.desired != desired:
                    current.target, current.desired = target, desired
                    self.metrics.target_added(name, target.catalogue_version)
                    if current.in_flight:
                        current.dirty = True
                    else:
                        current.next_due = now
                    changed.append(name)
        for name in removed:
            self.metrics.target_removed(name)
        self.metrics.targets.set(len(new))
        self._apply_settings(settings)
        self.metrics.config_reloads.labels("ok").inc()
        log.info("config.reloaded", targets=len(new), added=added, changed=changed, removed=removed)
        self._wake.set()

    def _apply_settings(self, new: DaemonSettings) -> None:
        old = self.settings
        fixed = {"listen": (old.listen, new.listen), "lease": (old.lease, new.lease),
                 "max_workers": (old.max_workers, new.max_workers)}
        needs_restart = sorted(k for k, (a, b) in fixed.items() if a != b)
        if needs_restart:
            log.warning("config.restart_needed", keys=[f"daemon.{k}" for k in needs_restart],
                        effect="these settings take effect when the daemon restarts")
        self.settings = replace(new, listen=old.listen, lease=old.lease, max_workers=old.max_workers)
        self._budget.settings = new.throttle
        if (old.log_level, old.azure_log_level) != (new.log_level, new.azure_log_level):
            logs.configure(level=new.log_level, azure_level=new.azure_log_level)

    # ------------------------------------------------------------------------------------------ stop

    def _install_signals(self) -> None:
        def stop(signum: int, _frame: FrameType | None) -> None:
            self._signal = signum
            self.request_stop()

        def hup(_signum: int, _frame: FrameType | None) -> None:
            self.request_reload()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        if hasattr(signal, "SIGHUP"):
            signal.signal(signal.SIGHUP, hup)

    def _shutdown(self) -> int:
        self._stopping = True
        grace = self.settings.shutdown_grace
        with self._lock:
            in_flight = sorted(st.name for st in self._targets.values() if st.in_flight)
        log.info("daemon.stopping", signal=signal.Signals(self._signal).name if self._signal else None,
                 in_flight=in_flight, grace_s=grace)
        deadline = self._clock() + grace
        with self._idle:
            while self._running > 0 and not self._force and self._clock() < deadline:
                self._idle.wait(TICK)
            left = self._running
        for _ in range(self._workers):
            self._queue.put(None)
        code = 0
        if left:
            code = 1
            with self._lock:
                still = sorted(st.name for st in self._targets.values() if st.in_flight)
            log.error("daemon.shutdown_timeout", in_flight=still, grace_s=grace,
                      effect="exiting with passes in flight; the lease (if any) is left to expire")
        if self._lease is not None and self._lease.stop(release=not left):
            self.metrics.lease_transitions.labels("released").inc()
        if self.server is not None:
            self.server.stop()
        log.info("daemon.stopped", exit_code=code)
        return code


def _blob_lease(settings: LeaseSettings, on_acquired: Callable[[], None], on_lost: Callable[[str], None]) -> Lease:
    try:
        from reconciler.azure.lease import BlobLease, lease_credential
    except ImportError as exc:  # pragma: no cover - the lease extra is part of every install we ship
        raise UserError("daemon.lease", "", f"needs the azure-storage-blob package (pip install "
                        f"'amlfw[lease]'): {exc}") from None
    connection_string = None
    credential = None
    if settings.connection_string_env is not None:
        connection_string = os.environ.get(settings.connection_string_env)
        if not connection_string:
            raise UserError("daemon.lease.connection_string_env", "",
                            f"environment variable {settings.connection_string_env} is not set")
    else:
        credential = lease_credential(settings.credential.kind, settings.credential.client_id, settings.cloud)
    try:
        return BlobLease(container=settings.container, blob=settings.blob, duration=settings.duration,
                         account_url=settings.account_url, connection_string=connection_string,
                         credential=credential, on_acquired=on_acquired, on_lost=on_lost)
    except ValueError as exc:  # e.g. a malformed connection string (the SDK's message never quotes it)
        raise UserError("daemon.lease", "", f"cannot use the lease settings: {exc}") from None


def run_daemon(args: argparse.Namespace, pairs: Sequence[Pair]) -> int:
    """The entry point `amlfw reconcile` calls without --once."""
    from prometheus_client import disable_created_metrics

    from reconciler.cli import load_and_compile

    settings = daemon_settings(str(args.config), read_daemon_section(args.config), args)
    logs.configure(level=settings.log_level, azure_level=settings.azure_log_level)
    # no `*_created` series: they double the scrape size and nothing reads them
    disable_created_metrics()  # type: ignore[no-untyped-call]

    def load() -> tuple[Sequence[Pair], DaemonSettings]:
        _, new_pairs = load_and_compile(args.config, args.catalogue_dir)
        new_settings = daemon_settings(str(args.config), read_daemon_section(args.config), args)
        for _, desired in new_pairs:
            for w in desired.warnings:
                log.warning("compile.warning", target=w.target, workspace=w.workspace, code=w.code,
                            entry_id=w.entry_id, message=w.message)
        return list(new_pairs), new_settings

    daemon = Daemon(settings, pairs, dry_run=bool(args.dry_run), load=load)
    return daemon.run()
