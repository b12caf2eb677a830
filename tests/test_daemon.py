"""`reconciler.daemon` in-process: settings, scheduling, backoff, ARM budget, readiness, reload, shutdown.

The scheduler is driven by hand with a fake clock (`_dispatch_due` then each queued pass run synchronously),
so timing assertions are exact. `test_daemon_process.py` runs the real daemon as a subprocess.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from structlog.testing import capture_logs

from reconciler.config import ResourceRef, Target
from reconciler.daemon import (
    Daemon,
    DaemonSettings,
    LeaseSettings,
    SubscriptionBudget,
    ThrottleSettings,
    daemon_settings,
    parse_listen,
    read_daemon_section,
)
from reconciler.engine import Hooks
from reconciler.errors import ConfigError, UserError
from reconciler.metrics import Metrics
from reconciler.plan import Outcome, TargetPlan

SUB_A = "00000000-0000-0000-0000-0000000000a1"
SUB_B = "00000000-0000-0000-0000-0000000000b2"


class Clock:
    def __init__(self, t: float = 1000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


def target(name: str, sub: str = SUB_A, *, version: str = "azureml-2021.11", priority: int = 300) -> Target:
    return Target(name=name, cloud="AzureCloud", subscription_id=sub, policy=ResourceRef(sub, "rg-hub", f"fw-{name}"),
                  group_name="azureml-egress", group_priority=priority, workspaces=(), catalogue_version=version)


class FakeReconcile:
    """Returns the status scripted per target (default in_sync); records calls and the hooks it was given."""

    def __init__(self, statuses: dict[str, list[str]] | None = None, *, delay: float = 0.0) -> None:
        self.statuses = statuses or {}
        self.calls: list[str] = []
        self.hooks: list[Hooks] = []
        self.delay = delay
        self.started = threading.Event()

    def __call__(self, target: Target, desired: Any, *, dry_run: bool, hooks: Hooks | None = None) -> Outcome:
        self.calls.append(target.name)
        assert hooks is not None
        self.hooks.append(hooks)
        self.started.set()
        if self.delay:
            time.sleep(self.delay)
        script = self.statuses.get(target.name) or ["in_sync"]
        status = script.pop(0) if len(script) > 1 else script[0]
        if status == "crash":
            raise RuntimeError("boom")
        return Outcome(target.name, status, error="it failed" if status == "error" else None, duration_ms=5)


def make(pairs: list[tuple[Target, Any]], *, reconcile: FakeReconcile | None = None, clock: Clock | None = None,
         **settings: Any) -> Daemon:
    base: dict[str, Any] = {"interval": 100.0, "jitter": 0.0, "retry_initial": 10.0, "retry_max": 50.0}
    base.update(settings)
    return Daemon(DaemonSettings(**base), pairs, reconcile=reconcile or FakeReconcile(), clock=clock or Clock(),
                  wall=lambda: 1_700_000_000.0)


def run_due(d: Daemon) -> list[str]:
    """One scheduler turn, with every dispatched pass run synchronously."""
    d._dispatch_due()
    ran = []
    while not d._queue.empty():
        st = d._queue.get_nowait()
        assert st is not None
        d._finish(st, d._pass(st.target, st.desired))
        ran.append(st.name)
    return sorted(ran)


def sample(d: Daemon, name: str, **labels: str) -> float | None:
    return d.metrics.registry.get_sample_value(name, labels)


# ---------------------------------------------------------------------------------------------- settings


def write(tmp_path: Path, daemon: Any) -> Path:
    path = tmp_path / "amlfw.yaml"
    path.write_text(yaml.safe_dump({"daemon": daemon, "targets": []}), encoding="utf-8")
    return path


def test_settings_defaults_when_section_is_absent() -> None:
    s = daemon_settings("amlfw.yaml", None)
    assert s == DaemonSettings()
    assert (s.interval, s.jitter, s.max_workers, s.listen) == (300.0, 0.1, 4, ("127.0.0.1", 9464))
    assert (s.ready_intervals, s.retry_initial, s.retry_max, s.shutdown_grace) == (3.0, 30.0, 3600.0, 600.0)
    assert s.throttle == ThrottleSettings(min_remaining_reads=100, min_remaining_writes=20, pause=60.0)
    assert s.lease is None


def test_settings_full_section(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEASE_CS", "UseDevelopmentStorage=true")
    path = write(tmp_path, {
        "interval": 60, "jitter": 0.2, "max_workers": 8, "listen": "0.0.0.0:8080", "ready_intervals": 2,
        "retry_initial": 5, "retry_max": 600, "shutdown_grace": 30, "log_level": "debug", "azure_log_level": "info",
        "throttle": {"min_remaining_reads": 50, "min_remaining_writes": 5, "pause": 10},
        "lease": {"connection_string_env": "LEASE_CS", "container": "amlfw-ha", "blob": "leader", "duration": 15},
    })
    s = daemon_settings(str(path), read_daemon_section(path))
    assert s.interval == 60
    assert s.max_workers == 8
    assert s.listen == ("0.0.0.0", 8080)
    assert s.log_level == "DEBUG"
    assert s.azure_log_level == "INFO"
    assert s.throttle == ThrottleSettings(50, 5, 10.0)
    assert s.lease == LeaseSettings(container="amlfw-ha", blob="leader", duration=15, connection_string_env="LEASE_CS")


@pytest.mark.parametrize(("section", "key", "reason"), [
    ("every 5 minutes", "daemon", "expected a mapping"),
    ({"intervall": 5}, "daemon.intervall", "unknown key (allowed: azure_log_level"),
    ({"interval": 0}, "daemon.interval", "0 is outside 0.5-86400"),
    ({"interval": "5m"}, "daemon.interval", "expected a number, got a string"),
    ({"jitter": 0.9}, "daemon.jitter", "outside 0-0.5"),
    ({"max_workers": 0}, "daemon.max_workers", "outside 1-64"),
    ({"listen": "localhost"}, "daemon.listen", "invalid address 'localhost': expected HOST:PORT"),
    ({"listen": "127.0.0.1:99999"}, "daemon.listen", "invalid address"),
    ({"retry_initial": 100, "retry_max": 10}, "daemon.retry_max", "below retry_initial"),
    ({"log_level": "verbose"}, "daemon.log_level", "unknown level 'VERBOSE'"),
    ({"throttle": {"pause": -1}}, "daemon.throttle.pause", "outside 0-3600"),
    ({"throttle": {"reads": 5}}, "daemon.throttle.reads", "unknown key"),
    ({"lease": {"container": "amlfw"}}, "daemon.lease", "give exactly one of account_url"),
    ({"lease": {"container": "amlfw", "account_url": "https://a.blob.core.windows.net",
                "connection_string_env": "X"}}, "daemon.lease", "exactly one"),
    ({"lease": {"container": "amlfw", "account_url": "http://a.blob.core.windows.net"}},
     "daemon.lease.account_url", "expected https://"),
    ({"lease": {"container": "Amlfw", "account_url": "https://a.blob.core.windows.net"}},
     "daemon.lease.container", "invalid container name 'Amlfw'"),
    ({"lease": {"container": "amlfw", "account_url": "https://a.blob.core.windows.net", "duration": 10}},
     "daemon.lease.duration", "10 is outside 15-60"),
    ({"lease": {"container": "amlfw", "account_url": "https://a.blob.core.windows.net", "duration": "30s"}},
     "daemon.lease.duration", "expected a whole number of seconds"),
    ({"lease": {"container": "amlfw", "account_url": "https://a.blob.core.windows.net",
                "credential": {"kind": "password"}}}, "daemon.lease.credential.kind", "unknown credential kind"),
    ({"lease": {"container": "amlfw", "account_url": "https://a.blob.core.windows.net", "cloud": "Mars"}},
     "daemon.lease.cloud", "unknown cloud 'Mars'"),
    ({"lease": {"container": "amlfw", "connection_string_env": "AMLFW_TEST_UNSET_VARIABLE"}},
     "daemon.lease.connection_string_env", "environment variable AMLFW_TEST_UNSET_VARIABLE is not set"),
    ({"lease": {"container": "amlfw", "connection_string_env": "bad name"}},
     "daemon.lease.connection_string_env", "invalid environment variable name"),
])
def test_settings_errors_name_file_key_and_reason(tmp_path: Path, section: Any, key: str, reason: str) -> None:
    path = write(tmp_path, section)
    with pytest.raises(ConfigError) as info:
        daemon_settings(str(path), read_daemon_section(path))
    assert str(info.value).startswith(f"{path}:{key}: ")
    assert reason in str(info.value)


def test_command_line_overrides_the_file() -> None:
    import argparse

    args = argparse.Namespace(interval=2.5, listen="[::1]:9000", max_workers=16)
    s = daemon_settings("f.yaml", {"interval": 60, "listen": "127.0.0.1:1", "max_workers": 2}, args)
    assert (s.interval, s.listen, s.max_workers) == (2.5, ("::1", 9000), 16)
    with pytest.raises(UserError, match="--listen: invalid address"):
        daemon_settings("f.yaml", None, argparse.Namespace(interval=None, listen="nope", max_workers=None))
    with pytest.raises(UserError, match=r"--interval: 0\.1 is outside"):
        daemon_settings("f.yaml", None, argparse.Namespace(interval=0.1, listen=None, max_workers=None))


@pytest.mark.parametrize(("text", "parsed"), [
    ("127.0.0.1:9464", ("127.0.0.1", 9464)), ("0.0.0.0:0", ("0.0.0.0", 0)), ("[::]:80", ("::", 80)),
    ("localhost:1", ("localhost", 1)), ("9464", None), (":9464", None), ("a:b", None), ("1.2.3.4:65536", None),
])
def test_parse_listen(text: str, parsed: tuple[str, int] | None) -> None:
    assert parse_listen(text) == parsed


# ---------------------------------------------------------------------------------------------- scheduling


def test_failing_target_backs_off_exponentially_while_healthy_ones_keep_their_rhythm() -> None:
    clock = Clock()
    rec = FakeReconcile({"bad": ["error"]})
    d = make([(target("good"), "d1"), (target("bad"), "d2")], reconcile=rec, clock=clock)
    timeline = []
    for _ in range(400):  # 400 one-second ticks
        for name in run_due(d):
            timeline.append((round(clock.t - 1000), name))
        clock.advance(1)
    good = [t for t, n in timeline if n == "good"]
    bad = [t for t, n in timeline if n == "bad"]
    assert good == [0, 100, 200, 300]
    # retry_initial 10, doubling, capped at retry_max 50
    assert bad[:6] == [0, 10, 30, 70, 120, 170]
    assert d._targets["bad"].failures == len(bad)
    assert sample(d, "amlfw_target_consecutive_failures", target="bad") == len(bad)
    assert sample(d, "amlfw_passes_total", target="good", outcome="in_sync") == 4


def test_failure_count_resets_after_a_success() -> None:
    clock = Clock()
    rec = FakeReconcile({"t": ["error", "error", "in_sync"]})
    d = make([(target("t"), "d")], reconcile=rec, clock=clock)
    assert run_due(d) == ["t"]
    clock.advance(10)
    assert run_due(d) == ["t"]
    clock.advance(20)
    assert run_due(d) == ["t"]
    st = d._targets["t"]
    assert st.failures == 0
    assert st.next_due == clock.t + 100


def test_jitter_spreads_passes_within_bounds() -> None:
    d = make([], jitter=0.1)
    delays = [d._delay(0) for _ in range(500)]
    assert min(delays) >= 90
    assert max(delays) <= 110
    assert len({round(x, 3) for x in delays}) > 100
    failing = [d._delay(3) for _ in range(200)]  # 10 * 2**2 = 40, +/- 10 %
    assert min(failing) >= 36
    assert max(failing) <= 44


def test_workers_bound_the_passes_in_flight() -> None:
    d = make([(target(f"t{i}"), "d") for i in range(5)], max_workers=2)
    d._dispatch_due()
    assert d._queue.qsize() == 2
    assert d._running == 2
    d._dispatch_due()
    assert d._queue.qsize() == 2, "no more work while both workers are busy"
    assert sum(st.in_flight for st in d._targets.values()) == 2


def test_a_target_never_runs_twice_at_once() -> None:
    clock = Clock()
    d = make([(target("t"), "d")], clock=clock, max_workers=4)
    d._dispatch_due()
    clock.advance(500)
    d._dispatch_due()
    assert d._queue.qsize() == 1


def test_throttled_subscription_waits_while_others_proceed() -> None:
    clock = Clock()
    d = make([(target("a1", SUB_A), "d"), (target("b1", SUB_B), "d")], clock=clock)
    d._budget.pause(SUB_A, 30, "429")
    assert run_due(d) == ["b1"]
    assert d._targets["a1"].next_due == clock.t + 30
    clock.advance(29)
    assert run_due(d) == []
    clock.advance(1)
    assert run_due(d) == ["a1"]


def test_budget_reacts_to_429_retry_after_and_low_remaining_headers() -> None:
    clock = Clock()
    metrics = Metrics()
    budget = SubscriptionBudget(ThrottleSettings(min_remaining_reads=100, min_remaining_writes=20, pause=60),
                                metrics, clock)
    budget.observe(SUB_A, "GET", 200, {"x-ms-ratelimit-remaining-subscription-reads": "11999"})
    assert budget.paused_until(SUB_A) == 0
    budget.observe(SUB_A, "GET", 200, {"x-ms-ratelimit-remaining-subscription-reads": "99"})
    assert budget.paused_until(SUB_A) == clock.t + 60
    budget.observe(SUB_B, "PUT", 429, {"retry-after": "120"})
    assert budget.paused_until(SUB_B) == clock.t + 120
    budget.observe(SUB_B, "PUT", 429, {"retry-after": "5"})  # never shortens a pause
    assert budget.paused_until(SUB_B) == clock.t + 120
    budget.observe(SUB_A, "PUT", 201, {"x-ms-ratelimit-remaining-subscription-writes": "3"})
    reg = metrics.registry
    assert reg.get_sample_value("amlfw_arm_throttle_pauses_total",
                                {"subscription": SUB_A, "reason": "low_remaining_reads"}) == 1
    assert reg.get_sample_value("amlfw_arm_throttle_pauses_total", {"subscription": SUB_B, "reason": "429"}) == 1
    assert reg.get_sample_value("amlfw_arm_throttle_pauses_total",
                                {"subscription": SUB_A, "reason": "low_remaining_writes"}) is None, \
        "a pause that is already running is extended, not counted again"


def test_response_hook_feeds_metrics_and_budget() -> None:
    clock = Clock()
    rec = FakeReconcile()
    d = make([(target("a1", SUB_A), "d")], reconcile=rec, clock=clock,
             throttle=ThrottleSettings(min_remaining_reads=100, min_remaining_writes=20, pause=45))
    run_due(d)
    hooks = rec.hooks[0]
    assert hooks.on_response is not None
    assert hooks.on_retry is not None
    hooks.on_response("GET", 200, {"x-ms-ratelimit-remaining-subscription-reads": "42"})
    hooks.on_response("PUT", 429, {"retry-after": "7"})
    hooks.on_retry("PUT rule collection group x", RuntimeError("429"))
    assert sample(d, "amlfw_arm_requests_total", method="GET", status="200") == 1
    assert sample(d, "amlfw_arm_requests_total", method="PUT", status="429") == 1
    assert sample(d, "amlfw_arm_ratelimit_remaining", subscription=SUB_A, kind="reads") == 42
    assert sample(d, "amlfw_retries_total", target="a1") == 1
    assert d._budget.paused_until(SUB_A) == clock.t + 45


def test_a_crashing_pass_is_an_error_outcome_not_a_dead_daemon() -> None:
    d = make([(target("t"), "d")], reconcile=FakeReconcile({"t": ["crash"]}))
    with capture_logs() as logs:
        assert run_due(d) == ["t"]
    st = d._targets["t"]
    assert st.last_status == "error"
    assert "RuntimeError: boom" in (st.last_error or "")
    assert any(e["event"] == "daemon.pass_crashed" for e in logs)


# ---------------------------------------------------------------------------------------------- readiness


def test_readiness_needs_a_recent_success_for_every_target() -> None:
    clock = Clock()
    d = make([(target("a"), "d"), (target("b"), "d")], reconcile=FakeReconcile({"b": ["error", "in_sync"]}),
             clock=clock, ready_intervals=2)
    ready, details = d.readiness()
    assert not ready
    assert details["ready_targets"] == 0
    assert details["total_targets"] == 2
    run_due(d)
    ready, details = d.readiness()
    assert not ready
    assert details["targets"]["b"]["last_error"] == "it failed"
    assert details["targets"]["a"]["ready"] is True
    clock.advance(10)
    run_due(d)  # b succeeds on its retry
    assert d.readiness()[0]
    assert sample(d, "amlfw_ready") == 1
    d._targets["a"].next_due = float("inf")  # a stops passing: unready once its success is 2 intervals old
    clock.advance(185)
    assert d.readiness()[0]
    clock.advance(10)
    ready, details = d.readiness()
    assert not ready
    assert details["targets"]["a"]["ready"] is False
    assert sample(d, "amlfw_ready") == 0


def test_health_follows_the_scheduler_heartbeat() -> None:
    clock = Clock()
    d = make([], clock=clock)
    assert d.health()[0]
    clock.advance(31)
    ok, details = d.health()
    assert not ok
    assert details["loop_age_s"] == 31


def test_health_fails_while_a_pass_is_stuck_past_its_bound() -> None:
    from reconciler.daemon import PASS_MARGIN

    clock = Clock()
    d = make([(target("a"), None)], clock=clock)
    d._dispatch_due()  # the pass is dispatched and never finishes
    bound = target("a").azure.write_timeout + PASS_MARGIN
    clock.advance(bound - 1)
    d._heartbeat = clock()  # the scheduler loop itself keeps turning
    assert d.health()[0]
    clock.advance(2)
    d._heartbeat = clock()
    ok, details = d.health()
    assert not ok and details["stuck"] == ["a"]
    st = d._queue.get_nowait()
    assert st is not None
    d._finish(st, d._pass(st.target, st.desired))
    assert d.health()[0]


# ---------------------------------------------------------------------------------------------- writes


def test_no_write_once_stopping_or_without_the_lease() -> None:
    class FakeLease:
        allow = True

        def start(self) -> None: ...
        def may_write(self) -> bool: return self.allow
        def stop(self, *, release: bool) -> bool: return release

    lease = FakeLease()
    d = make([(target("t"), "d")], lease=LeaseSettings(container="amlfw", account_url="https://x"))
    d._lease = lease
    assert d._may_write()
    lease.allow = False
    assert not d._may_write()
    assert sample(d, "amlfw_lease_held") == 0
    lease.allow = True
    assert sample(d, "amlfw_lease_held") == 1
    d.request_stop()
    assert not d._may_write(), "SIGTERM: passes already running must not start a write"


def test_taking_over_the_lease_looks_at_every_target_at_once() -> None:
    clock = Clock()
    d = make([(target("a"), "d"), (target("b"), "d")], clock=clock)
    run_due(d)
    clock.advance(5)
    assert run_due(d) == []
    d._lease_acquired()
    assert run_due(d) == ["a", "b"]
    assert sample(d, "amlfw_lease_transitions_total", event="acquired") == 1


# ---------------------------------------------------------------------------------------------- reload


def test_reload_adds_changes_and_removes_targets() -> None:
    clock = Clock()
    new_pairs: list[tuple[Target, Any]] = [(target("keep"), "d"), (target("change"), "d-v2"), (target("new"), "d")]
    d = make([(target("keep"), "d"), (target("change"), "d"), (target("gone"), "d")], clock=clock)
    d._load = lambda: (new_pairs, DaemonSettings(interval=50, jitter=0.0, retry_initial=10, retry_max=50))
    run_due(d)
    assert sample(d, "amlfw_passes_total", target="gone", outcome="in_sync") == 1
    clock.advance(1)
    with capture_logs() as logs:
        d._reload()
    event = next(e for e in logs if e["event"] == "config.reloaded")
    assert (event["added"], event["changed"], event["removed"]) == (["new"], ["change"], ["gone"])
    assert run_due(d) == ["change", "new"], "new and changed targets are reconciled at once, the others wait"
    assert d._targets["change"].desired == "d-v2"
    assert d.settings.interval == 50
    assert sample(d, "amlfw_passes_total", target="gone", outcome="in_sync") is None, "series of removed targets go"
    assert sample(d, "amlfw_targets") == 3
    assert sample(d, "amlfw_config_reloads_total", result="ok") == 1


def test_invalid_reload_keeps_the_old_configuration() -> None:
    d = make([(target("t"), "d")])

    def broken() -> Any:
        raise ConfigError("amlfw.yaml", "targets[0].cloud", "unknown cloud 'Mars'")

    d._load = broken
    with capture_logs() as logs:
        d._reload()
    assert list(d._targets) == ["t"]
    failed = next(e for e in logs if e["event"] == "config.reload_failed")
    assert failed["error"] == "amlfw.yaml:targets[0].cloud: unknown cloud 'Mars'"
    assert failed["log_level"] == "error"
    assert sample(d, "amlfw_config_reloads_total", result="error") == 1


def test_reload_during_a_pass_runs_the_target_again_when_it_ends() -> None:
    clock = Clock()
    d = make([(target("t"), "d")], clock=clock)
    d._dispatch_due()
    st = d._queue.get_nowait()
    assert st is not None
    d._load = lambda: ([(target("t"), "d-v2")], d.settings)
    d._reload()
    d._finish(st, Outcome("t", "applied"))
    assert st.next_due == clock.t
    assert st.desired == "d-v2"


def test_settings_that_need_a_restart_are_kept_and_reported() -> None:
    d = make([], listen=("127.0.0.1", 1111), max_workers=2)
    with capture_logs() as logs:
        d._apply_settings(DaemonSettings(listen=("0.0.0.0", 2222), max_workers=9, interval=42))
    assert d.settings.listen == ("127.0.0.1", 1111)
    assert d.settings.max_workers == 2
    assert d.settings.interval == 42
    warning = next(e for e in logs if e["event"] == "config.restart_needed")
    assert warning["keys"] == ["daemon.listen", "daemon.max_workers"]


# ---------------------------------------------------------------------------------------------- metrics


def test_metrics_record_outcomes_writes_and_drift() -> None:
    from reconciler.plan import CollectionChange, RuleChange

    m = Metrics()
    plan = TargetPlan(target="t", policy_id="p", group_name="g", group_action="update", collections=(
        CollectionChange("change", "ws-a-net", rules=(RuleChange("add", "ws-a-net", "r1", "NetworkRule"),
                                                      RuleChange("remove", "ws-a-net", "r2", "NetworkRule"))),))
    m.target_added("t", "v1")
    m.pass_finished(Outcome("t", "drift", plan, duration_ms=1500), wall_time=10.0, failures=0)
    get = m.registry.get_sample_value
    assert get("amlfw_target_drift", {"target": "t"}) == 1
    assert get("amlfw_target_drift_changes", {"target": "t"}) == 2
    assert get("amlfw_writes_total", {"target": "t", "kind": "rule_collection_group"}) is None
    m.pass_finished(Outcome("t", "applied", plan, group_written=True, duration_ms=2000), wall_time=20.0,
                    failures=0)
    assert get("amlfw_target_drift", {"target": "t"}) == 0
    assert get("amlfw_drift_detected_total", {"target": "t"}) == 2
    assert get("amlfw_writes_total", {"target": "t", "kind": "rule_collection_group"}) == 1
    assert get("amlfw_changes_applied_total", {"target": "t", "change": "rules_added"}) == 1
    assert get("amlfw_changes_applied_total", {"target": "t", "change": "rules_removed"}) == 1
    assert get("amlfw_last_success_timestamp_seconds", {"target": "t"}) == 20.0
    assert get("amlfw_pass_duration_seconds_count", {"outcome": "applied"}) == 1
    assert get("amlfw_pass_duration_seconds_sum", {"outcome": "applied"}) == 2.0
    m.pass_finished(Outcome("t", "error", None, error="x"), wall_time=30.0, failures=1)
    assert get("amlfw_last_success_timestamp_seconds", {"target": "t"}) == 20.0
    assert get("amlfw_last_pass_timestamp_seconds", {"target": "t"}) == 30.0
    assert get("amlfw_catalogue_info", {"target": "t", "catalogue_version": "v1"}) == 1
    m.target_added("t", "v2")
    assert get("amlfw_catalogue_info", {"target": "t", "catalogue_version": "v1"}) is None
    m.target_removed("t")
    text = m.render().decode()
    assert 'target="t"' not in text
    assert "amlfw_build_info" in text


# ---------------------------------------------------------------------------------------------- run()


@pytest.fixture
def running() -> Iterator[Callable[..., tuple[Daemon, threading.Thread, dict[str, int]]]]:
    started: list[tuple[Daemon, threading.Thread]] = []

    def start(d: Daemon) -> tuple[Daemon, threading.Thread, dict[str, int]]:
        result: dict[str, int] = {}
        thread = threading.Thread(target=lambda: result.setdefault("code", d.run(install_signals=False)),
                                  daemon=True)
        thread.start()
        started.append((d, thread))
        deadline = time.monotonic() + 5
        while d.server is None or not d.server._thread.is_alive():
            assert time.monotonic() < deadline, "daemon did not start"
            time.sleep(0.01)
        return d, thread, result

    yield start
    for d, thread in started:
        d.request_stop()
        d.request_stop()
        thread.join(timeout=10)


def get(d: Daemon, path: str) -> tuple[int, str, str]:
    assert d.server is not None
    host, port = d.server.address
    try:
        with urllib.request.urlopen(f"http://{host}:{port}{path}", timeout=5) as r:
            return r.status, r.headers["Content-Type"], r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers["Content-Type"], e.read().decode()


def test_run_serves_probes_and_metrics_and_drains_on_stop(running: Any) -> None:
    rec = FakeReconcile(delay=0.3)
    d = Daemon(DaemonSettings(interval=60, listen=("127.0.0.1", 0)), [(target("t"), "d")], reconcile=rec)
    d, thread, result = running(d)
    status, ctype, body = get(d, "/readyz")
    assert status == 503
    assert ctype == "application/json"
    assert json.loads(body)["targets"]["t"]["in_flight"] is True
    assert get(d, "/healthz")[0] == 200
    deadline = time.monotonic() + 5
    while get(d, "/readyz")[0] != 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    status, ctype, body = get(d, "/metrics")
    assert status == 200
    assert ctype.startswith("text/plain")
    assert 'amlfw_passes_total{outcome="in_sync",target="t"} 1.0' in body
    assert get(d, "/nope")[0] == 404
    d.request_reload()  # no loader: logged and ignored
    d._targets["t"].next_due = 0  # make it run again, then stop while that pass is in flight
    rec.started.clear()
    assert rec.started.wait(5)
    d.request_stop()
    thread.join(timeout=5)
    assert result["code"] == 0
    assert d._targets["t"].passes == 2, "the pass in flight finished before the daemon stopped"


def test_run_gives_up_after_the_grace_period(running: Any) -> None:
    rec = FakeReconcile(delay=3)
    d = Daemon(DaemonSettings(interval=60, listen=("127.0.0.1", 0), shutdown_grace=0.3), [(target("t"), "d")],
               reconcile=rec)
    d, thread, result = running(d)
    assert rec.started.wait(5)
    started = time.monotonic()
    with capture_logs() as logs:
        d.request_stop()
        thread.join(timeout=5)
    assert result["code"] == 1
    assert time.monotonic() - started < 2
    assert any(e["event"] == "daemon.shutdown_timeout" and e["in_flight"] == ["t"] for e in logs)


def test_run_refuses_an_address_in_use() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        d = Daemon(DaemonSettings(listen=("127.0.0.1", port)), [], reconcile=FakeReconcile())
        with pytest.raises(UserError, match=f"--listen: cannot listen on 127.0.0.1:{port}"):
            d.run(install_signals=False)


def test_a_malformed_lease_connection_string_is_a_user_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.daemon import _blob_lease

    monkeypatch.setenv("AMLFW_TEST_LEASE_CS", "not a connection string")
    settings = LeaseSettings(container="amlfw", connection_string_env="AMLFW_TEST_LEASE_CS")
    with pytest.raises(UserError, match=r"daemon\.lease: cannot use the lease settings") as info:
        _blob_lease(settings, lambda: None, lambda reason: None)
    assert "not a connection string" not in str(info.value)
    monkeypatch.delenv("AMLFW_TEST_LEASE_CS")
    with pytest.raises(UserError, match="AMLFW_TEST_LEASE_CS is not set"):
        _blob_lease(settings, lambda: None, lambda reason: None)
