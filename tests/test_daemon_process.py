"""The daemon as operators run it: `python -m reconciler reconcile --config FILE` (no --once) as a subprocess,
the real Azure SDK over HTTPS against the in-process ARM emulator, probes and metrics over HTTP. The HA
lease runs against Azurite (installed from npm by `tests/azurite.py`; skipped only without npm).

Everything listens on 127.0.0.1; every process is killed in a finally. Intervals are about a second.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from azure.storage.blob import BlobLeaseClient, BlobServiceClient
from prometheus_client.parser import text_string_to_metric_families

from reconciler.azure.lease import BlobLease
from tests.azurite import ACCOUNT_KEY, Azurite, AzuriteUnavailableError, ensure_installed
from tests.emulator import Emulator
from tests.emulator.pytest_plugin import FOREIGN_CREDENTIAL_ENV

REPO = Path(__file__).resolve().parents[1]
SUBS = ("00000000-0000-0000-0000-0000000000d1", "00000000-0000-0000-0000-0000000000d2")
RG = "rg-hub"
GROUP = "azureml-egress"
FAST_AZURE = {"polling_interval": 0, "retry_total": 2, "retry_backoff_max": 0.1, "write_backoff_initial": 0.05,
              "write_backoff_max": 0.2, "settle_poll": 0.05, "write_timeout": 60}
WORKSPACE = {"region": "westus2", "source_addresses": ["10.20.0.0/24"], "features": ["compute"]}


# ---------------------------------------------------------------------------------------------- harness


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(what: str, predicate: Callable[[], Any], timeout: float, every: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(every)


class DaemonProcess:
    """One `amlfw reconcile` daemon; stderr (JSON logs) goes to a file the test can read at any time."""

    def __init__(self, config: Path, env: dict[str, str], workdir: Path, *extra: str) -> None:
        self.config = config
        self.port = free_port()
        self.log_path = workdir / f"daemon-{self.port}.log"
        self._log = self.log_path.open("w", encoding="utf-8")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "reconciler", "reconcile", "--config", str(config),
             "--listen", f"127.0.0.1:{self.port}", *extra],
            cwd=REPO, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self._log,
        )

    def get(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()
        except OSError:
            return 0, ""

    def readyz(self) -> tuple[int, dict[str, Any]]:
        status, body = self.get("/readyz")
        return status, json.loads(body) if body else {}

    def wait_ready(self, timeout: float = 30) -> dict[str, Any]:
        def ready() -> dict[str, Any] | None:
            self.assert_alive()
            status, body = self.readyz()
            return body if status == 200 else None

        result: dict[str, Any] = wait_for("/readyz to answer 200", ready, timeout)
        return result

    def metrics(self) -> list[tuple[str, dict[str, str], float]]:
        status, text = self.get("/metrics")
        assert status == 200
        return [(s.name, s.labels, s.value) for fam in text_string_to_metric_families(text) for s in fam.samples]

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of `name` whose labels include `labels`."""
        return sum(v for n, lab, v in self.metrics() if n == name and all(lab.get(k) == x for k, x in labels.items()))

    def stderr(self) -> str:
        self._log.flush()
        return self.log_path.read_text(encoding="utf-8")

    def events(self, name: str | None = None) -> list[dict[str, Any]]:
        out = []
        for line in self.stderr().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict) and (name is None or event.get("event") == name):
                out.append(event)
        return out

    def assert_alive(self) -> None:
        if self.proc.poll() is not None:
            raise AssertionError(f"daemon exited with {self.proc.returncode}:\n{self.stderr()[-4000:]}")

    def signal(self, sig: signal.Signals) -> None:
        self.proc.send_signal(sig)

    def stop(self, timeout: float = 20) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    emu = Emulator(op_duration=0.0).start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def daemons(tmp_path: Path, emulator: Emulator) -> Iterator[Callable[..., DaemonProcess]]:
    started: list[DaemonProcess] = []
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN_CREDENTIAL_ENV}
    env.update(emulator.env())

    def start(config: Path, *extra: str, extra_env: dict[str, str] | None = None) -> DaemonProcess:
        d = DaemonProcess(config, {**env, **(extra_env or {})}, tmp_path, *extra)
        started.append(d)
        return d

    try:
        yield start
    finally:
        for d in started:
            d.kill()


def seed(emu: Emulator, sub: str, policy: str) -> None:
    emu.add_resource_group(sub, RG)
    emu.register_provider(sub, "Microsoft.Network")
    emu.put_policy(sub, RG, policy, {"location": "westus2",
                                     "properties": {"sku": {"tier": "Standard"}, "dnsSettings": {"enableProxy": True}}})


def storage_account(workspace: str) -> str:
    return "".join(ch for ch in workspace.lower() if ch.isalnum())[:20] + "sa"


def fleet_config(path: Path, emu: Emulator, policies: list[tuple[str, str]], *, daemon: dict[str, Any],
                 workspaces: dict[str, list[str]] | None = None) -> Path:
    """A fleet file: one target per (subscription, policy), each with workspace `ws-<policy>` (or `workspaces`)."""
    targets = []
    for sub, policy in policies:
        names = (workspaces or {}).get(policy) or [f"ws-{policy}"]
        targets.append({
            "name": policy, "subscription_id": sub, "firewall_policy": {"resource_group": RG, "name": policy},
            "workspaces": [{"name": n, "storage_account": storage_account(n), **WORKSPACE} for n in names],
        })
    doc = {
        "daemon": daemon,
        "defaults": {"cloud": "AzureCloud", "arm_endpoint": emu.base_url, "allow_custom_arm_endpoint": True,
                     "rule_collection_group": {"name": GROUP, "priority": 300}, "azure": FAST_AZURE},
        "targets": targets,
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return path


def arm_writes(emu: Emulator, sub: str | None = None) -> list[Any]:
    return [r for r in emu.requests() if r.method in ("PUT", "DELETE", "PATCH")
            and (sub is None or f"/subscriptions/{sub}/" in r.path.lower())]


def collections(emu: Emulator, sub: str, policy: str) -> list[str]:
    group = emu.get_rule_collection_group(sub, RG, policy, GROUP)
    return [c["name"] for c in (group or {}).get("properties", {}).get("ruleCollections", [])]


# ---------------------------------------------------------------------------------------------- tests


def test_fleet_of_20_converges_turns_ready_and_metrics_match_the_arm_traffic(
        tmp_path: Path, emulator: Emulator, daemons: Callable[..., DaemonProcess]) -> None:
    policies = [(SUBS[i % 2], f"fwpol-{i:02d}") for i in range(20)]
    for sub, policy in policies:
        seed(emulator, sub, policy)
    config = fleet_config(tmp_path / "fleet.yaml", emulator, policies,
                          daemon={"interval": 60, "jitter": 0, "max_workers": 4})
    d = daemons(config)
    ready = d.wait_ready(timeout=45)
    assert ready["ready_targets"] == 20
    assert all(t["last_status"] == "applied" for t in ready["targets"].values())
    for sub, policy in policies:
        assert sorted(collections(emulator, sub, policy)) == [f"ws-ws-{policy}-app", f"ws-ws-{policy}-net"]
    # the next passes are a minute away: the counters are settled, compare them with what the emulator saw
    requests = emulator.requests()
    group_puts = [r for r in requests if r.method == "PUT" and "/rulecollectiongroups/" in r.path.lower()]
    assert len(group_puts) == 20
    assert not emulator.overlapping_writes(SUBS[0], RG, "fwpol-00")
    assert d.metric("amlfw_passes_total", outcome="applied") == 20
    assert d.metric("amlfw_passes_total") == 20
    assert d.metric("amlfw_writes_total", kind="rule_collection_group") == 20
    assert d.metric("amlfw_drift_detected_total") == 20
    assert d.metric("amlfw_target_drift") == 0
    assert d.metric("amlfw_changes_applied_total", change="collections_added") == 40
    assert d.metric("amlfw_targets") == 20
    assert d.metric("amlfw_ready") == 1
    assert d.metric("amlfw_catalogue_info") == 20
    assert d.metric("amlfw_last_success_timestamp_seconds", target="fwpol-07") > time.time() - 120
    assert d.metric("amlfw_pass_duration_seconds_count") == 20
    for method in ("GET", "PUT"):
        seen = [r for r in requests if r.method == method]
        assert d.metric("amlfw_arm_requests_total", method=method) == len(seen), method
    assert d.metric("amlfw_arm_requests_total", method="PUT", status="201") == 20
    assert d.metric("amlfw_arm_ratelimit_remaining", subscription=SUBS[0], kind="reads") > 0
    finished = d.events("reconcile.finished")
    assert len(finished) == 20
    assert {e["outcome"] for e in finished} == {"applied"}
    assert all({"duration_ms", "rules_added", "target"} <= set(e) for e in finished)
    assert d.stop() == 0


def test_drift_is_repaired_within_one_interval_and_in_sync_passes_never_write(
        tmp_path: Path, emulator: Emulator, daemons: Callable[..., DaemonProcess]) -> None:
    policies = [(SUBS[0], "fwpol-a"), (SUBS[1], "fwpol-b")]
    for sub, policy in policies:
        seed(emulator, sub, policy)
    interval = 1.0
    config = fleet_config(tmp_path / "c.yaml", emulator, policies, daemon={"interval": interval, "jitter": 0.1})
    d = daemons(config)
    d.wait_ready()
    writes_after_convergence = len(arm_writes(emulator))
    assert writes_after_convergence == 2
    wait_for("three more passes per target", lambda: d.metric("amlfw_passes_total", outcome="in_sync") >= 6, 10)
    assert len(arm_writes(emulator)) == writes_after_convergence, "an in-sync pass must not write"

    # someone deletes a rule collection of the owned group by hand
    group = emulator.get_rule_collection_group(SUBS[0], RG, "fwpol-a", GROUP)
    assert group is not None
    wanted = sorted(c["name"] for c in group["properties"]["ruleCollections"])
    group["properties"]["ruleCollections"] = group["properties"]["ruleCollections"][:1]
    emulator.put_rule_collection_group(SUBS[0], RG, "fwpol-a", GROUP, {"properties": group["properties"]})
    drifted_at = time.monotonic()
    wait_for("the group to be repaired", lambda: sorted(collections(emulator, SUBS[0], "fwpol-a")) == wanted,
             timeout=10, every=0.05)
    repaired_in = time.monotonic() - drifted_at
    assert repaired_in <= interval * 1.1 + 1.0, f"repaired after {repaired_in:.2f}s"
    assert len(arm_writes(emulator, SUBS[0])) == 2
    assert len(arm_writes(emulator, SUBS[1])) == 1, "the other policy was left alone"
    wait_for("the repair to show in metrics",
             lambda: d.metric("amlfw_changes_applied_total", target="fwpol-a", change="collections_added") == 3, 5)
    assert d.metric("amlfw_drift_detected_total", target="fwpol-a") == 2
    assert d.metric("amlfw_writes_total", target="fwpol-a") == 2
    assert d.stop() == 0


def test_sighup_adds_a_new_workspace_and_an_invalid_reload_keeps_the_old_config(
        tmp_path: Path, emulator: Emulator, daemons: Callable[..., DaemonProcess]) -> None:
    policies = [(SUBS[0], "fwpol-hup")]
    seed(emulator, *policies[0])
    config = fleet_config(tmp_path / "c.yaml", emulator, policies, daemon={"interval": 30})
    d = daemons(config)
    d.wait_ready()
    assert sorted(collections(emulator, SUBS[0], "fwpol-hup")) == ["ws-ws-fwpol-hup-app", "ws-ws-fwpol-hup-net"]

    good = config.read_text()
    config.write_text(good.replace("cloud: AzureCloud", "cloud: AzureMars"))
    d.signal(signal.SIGHUP)
    failed = wait_for("config.reload_failed", lambda: d.events("config.reload_failed"), 10)
    assert "unknown cloud 'AzureMars'" in failed[0]["error"]
    assert d.readyz()[0] == 200, "still running on the previous configuration"

    fleet_config(config, emulator, policies, daemon={"interval": 30},
                 workspaces={"fwpol-hup": ["ws-fwpol-hup", "mlws-new"]})
    d.signal(signal.SIGHUP)
    wait_for("the new workspace's collections",
             lambda: "ws-mlws-new-net" in collections(emulator, SUBS[0], "fwpol-hup"), 10)
    reloaded = d.events("config.reloaded")
    assert reloaded[-1]["changed"] == ["fwpol-hup"]
    assert d.metric("amlfw_config_reloads_total", result="ok") == 1
    assert d.metric("amlfw_config_reloads_total", result="error") == 1
    assert d.stop() == 0


def test_sigterm_lets_a_slow_write_and_its_poll_finish_then_exits_0(
        tmp_path: Path, emulator: Emulator, daemons: Callable[..., DaemonProcess]) -> None:
    seed(emulator, SUBS[0], "fwpol-slow")
    emulator.set_operation_duration(3.0)
    config = fleet_config(tmp_path / "c.yaml", emulator, [(SUBS[0], "fwpol-slow")],
                          daemon={"interval": 30, "shutdown_grace": 30})
    d = daemons(config)
    put = wait_for("the PUT of the rule collection group",
                   lambda: [r for r in emulator.requests() if r.method == "PUT"], 30, every=0.05)[0]
    d.signal(signal.SIGTERM)
    signalled = time.time()
    assert d.proc.wait(20) == 0
    exited = time.time()
    write = next(r for r in emulator.requests() if r.request_id == put.request_id)
    assert write.operation_ended is not None
    assert write.operation_ended <= exited, "the daemon waited for the long-running operation"
    assert write.operation_ended > signalled, "the signal came while the write was running"
    group = emulator.get_rule_collection_group(SUBS[0], RG, "fwpol-slow", GROUP)
    assert group is not None
    assert group["properties"]["provisioningState"] == "Succeeded"
    events = [e["event"] for e in d.events()]
    assert events.index("daemon.stopping") < events.index("reconcile.finished") < events.index("daemon.stopped")
    assert d.events("reconcile.finished")[0]["outcome"] == "applied"
    assert d.events("daemon.stopped")[0]["exit_code"] == 0


def test_throttled_subscription_is_paused_while_the_other_keeps_going(
        tmp_path: Path, emulator: Emulator, daemons: Callable[..., DaemonProcess]) -> None:
    policies = [(SUBS[0], "fwpol-t0"), (SUBS[1], "fwpol-t1")]
    for sub, policy in policies:
        seed(emulator, sub, policy)
    config = fleet_config(tmp_path / "c.yaml", emulator, policies, daemon={
        "interval": 0.5, "jitter": 0, "throttle": {"min_remaining_reads": 100, "pause": 3}})
    d = daemons(config)
    d.wait_ready()
    emulator.inject("throttle_headers", 1, method="GET", path_contains=f"/subscriptions/{SUBS[0]}/", value=7)
    wait_for("the pause", lambda: d.metric("amlfw_arm_throttle_pauses_total", subscription=SUBS[0]) == 1, 10)
    paused_at = time.time()
    time.sleep(2.0)
    window = [r for r in emulator.requests() if paused_at + 0.5 < r.started < paused_at + 2.0]
    assert not [r for r in window if SUBS[0] in r.path], "no new pass for the throttled subscription"
    assert [r for r in window if SUBS[1] in r.path], "the other subscription kept its rhythm"
    assert d.metric("amlfw_arm_throttle_pauses_total", subscription=SUBS[0], reason="low_remaining_reads") == 1
    warning = d.events("arm.throttled")[0]
    assert warning["subscription"] == SUBS[0]
    assert warning["level"] == "warning"
    wait_for("passes to resume after the pause",
             lambda: [r for r in emulator.requests() if SUBS[0] in r.path and r.started > paused_at + 2.9], 5)

    emulator.inject("429", 1, method="GET", path_contains=f"/subscriptions/{SUBS[1]}/", retry_after=1)
    wait_for("the 429 pause", lambda: d.metric("amlfw_arm_throttle_pauses_total", subscription=SUBS[1],
                                               reason="429") == 1, 10)
    assert d.metric("amlfw_arm_requests_total", method="GET", status="429") == 1
    assert d.stop() == 0


def test_dry_run_daemon_reports_drift_and_never_writes(
        tmp_path: Path, emulator: Emulator, daemons: Callable[..., DaemonProcess]) -> None:
    seed(emulator, SUBS[0], "fwpol-dry")
    config = fleet_config(tmp_path / "c.yaml", emulator, [(SUBS[0], "fwpol-dry")], daemon={"interval": 0.5})
    d = daemons(config, "--dry-run")
    ready = d.wait_ready()
    assert ready["dry_run"] is True
    wait_for("a few passes", lambda: d.metric("amlfw_passes_total", outcome="drift") >= 3, 10)
    assert arm_writes(emulator) == []
    assert {r.method for r in emulator.requests()} == {"GET"}
    assert d.metric("amlfw_target_drift", target="fwpol-dry") == 1
    assert d.metric("amlfw_target_drift_changes", target="fwpol-dry") > 0
    assert d.metric("amlfw_lease_held") == 0
    assert d.stop() == 0


def test_tokens_and_secrets_never_reach_the_logs_even_with_azure_debug_logging(
        tmp_path: Path, emulator: Emulator, daemons: Callable[..., DaemonProcess]) -> None:
    seed(emulator, SUBS[0], "fwpol-tok")
    config = fleet_config(tmp_path / "c.yaml", emulator, [(SUBS[0], "fwpol-tok")], daemon={
        "interval": 0.5, "log_level": "DEBUG", "azure_log_level": "DEBUG"})
    d = daemons(config)
    d.wait_ready()
    wait_for("a few passes", lambda: d.metric("amlfw_passes_total", outcome="in_sync") >= 2, 10)
    assert d.stop() == 0
    stderr = d.stderr()
    events = d.events()
    text = "\n".join(str(v) for e in events for v in e.values())  # what the JSON escapes, unescaped
    tokens = list(emulator.issuer._tokens)
    assert tokens, "the daemon signed in through the emulator's identity endpoint"
    loggers = {e.get("logger") for e in events}
    assert {"azure.identity._credentials.default", "urllib3.connectionpool"} <= loggers, loggers
    assert any(str(lg).startswith("azure.core") or str(lg).startswith("azure.mgmt") for lg in loggers) or \
        any("/subscriptions/" in str(e.get("event")) for e in events), "ARM requests were logged at DEBUG"
    for token in tokens:
        signature = token.rsplit(".", 1)[1]  # the emulator issues JWT-shaped tokens: header.payload.signature
        decoded = base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))
        escaped = repr(decoded)[2:26]  # azure.identity once logged a token's decoded bytes in a traceback
        for form in (token, token.split(".", 1)[1], signature, escaped, escaped.replace("\\", "\\\\")):
            assert form not in stderr
            assert form not in text
    assert emulator.issuer.identity_header not in stderr


# ---------------------------------------------------------------------------------------------- HA lease


@pytest.fixture(scope="module")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    try:
        entry = ensure_installed()
    except AzuriteUnavailableError as exc:
        pytest.skip(str(exc))
    server = Azurite(tmp_path_factory.mktemp("azurite"), entry=entry).start()
    try:
        yield server
    finally:
        server.stop()


def lease(azurite: Azurite, blob: str, **kwargs: Any) -> BlobLease:
    return BlobLease(container="amlfw-ha", blob=blob, duration=15, connection_string=azurite.connection_string,
                     **kwargs)


def test_lease_one_holder_at_a_time_and_release_hands_over(azurite: Azurite) -> None:
    first, second = lease(azurite, "handover"), lease(azurite, "handover")
    try:
        first.start()
        second.start()
        assert first.may_write()
        assert not second.may_write()
        props = BlobServiceClient.from_connection_string(azurite.connection_string).get_blob_client(
            "amlfw-ha", "handover").get_blob_properties()
        assert props.metadata["holder"] == first.holder
        assert props.lease.state == "leased"
        assert first.stop(release=True)
        wait_for("the standby to take the lease", second.may_write, timeout=second.duration / 6 + 3)
    finally:
        first.stop(release=False)
        second.stop(release=True)


def test_lease_taken_away_stops_writes_at_once(azurite: Azurite) -> None:
    lost: list[str] = []
    holder = lease(azurite, "stolen", on_lost=lost.append)
    try:
        holder.start()
        assert holder.may_write()
        blob = BlobServiceClient.from_connection_string(azurite.connection_string).get_blob_client("amlfw-ha",
                                                                                                   "stolen")
        BlobLeaseClient(blob).break_lease(lease_break_period=0)
        BlobLeaseClient(blob).acquire(lease_duration=15)  # another replica took it
        holder._renew()  # the renewal that would come within duration / 3
        assert not holder.may_write()
        assert lost
        assert "409" in lost[0]
    finally:
        holder.stop(release=False)


def test_lease_unrenewed_stops_writes_before_azure_can_expire_it(azurite: Azurite) -> None:
    now = [0.0]
    holder = lease(azurite, "expiry", clock=lambda: now[0])
    try:
        assert holder._try_acquire()
        now[0] = 15 - 3 - 0.01  # duration - margin (20 %, at least 2 s), just before
        assert holder.may_write()
        now[0] = 15 - 3 + 0.01
        assert not holder.may_write(), "storage unreachable: stop writing before another replica may hold it"
    finally:
        holder.stop(release=True)


def test_with_the_lease_a_second_daemon_stays_passive_and_takes_over_when_the_first_stops(
        tmp_path: Path, emulator: Emulator, azurite: Azurite, daemons: Callable[..., DaemonProcess]) -> None:
    seed(emulator, SUBS[0], "fwpol-ha")
    daemon = {"interval": 1, "jitter": 0.1,
              "lease": {"connection_string_env": "AMLFW_LEASE_CONNECTION_STRING", "container": "amlfw-ha",
                        "blob": "daemon-leader", "duration": 15}}
    config = fleet_config(tmp_path / "c.yaml", emulator, [(SUBS[0], "fwpol-ha")], daemon=daemon)
    env = {"AMLFW_LEASE_CONNECTION_STRING": azurite.connection_string}
    leader = daemons(config, extra_env=env)
    assert leader.wait_ready()["lease"] == "held"
    standby = daemons(config, extra_env=env)
    assert standby.wait_ready()["lease"] == "passive"
    assert standby.metric("amlfw_lease_held") == 0
    assert leader.metric("amlfw_lease_held") == 1

    def drift() -> list[str]:
        group = emulator.get_rule_collection_group(SUBS[0], RG, "fwpol-ha", GROUP)
        assert group is not None
        wanted = sorted(c["name"] for c in group["properties"]["ruleCollections"])
        group["properties"]["ruleCollections"] = group["properties"]["ruleCollections"][:1]
        emulator.put_rule_collection_group(SUBS[0], RG, "fwpol-ha", GROUP, {"properties": group["properties"]})
        return wanted

    wanted = drift()
    wait_for("the leader's repair", lambda: sorted(collections(emulator, SUBS[0], "fwpol-ha")) == wanted, 10)
    wait_for("the standby to see the drift too", lambda: standby.metric("amlfw_passes_total") >= 3, 10)
    assert standby.metric("amlfw_writes_total") == 0
    assert not standby.events("rcg.updated")
    assert leader.metric("amlfw_writes_total", kind="rule_collection_group") == 2

    assert leader.stop() == 0
    assert leader.events("lease.released")
    wait_for("the standby to take over", lambda: standby.readyz()[1].get("lease") == "held", 15 / 6 + 5)
    assert standby.metric("amlfw_lease_transitions_total", event="acquired") == 1
    wanted = drift()
    wait_for("the new leader's repair", lambda: sorted(collections(emulator, SUBS[0], "fwpol-ha")) == wanted, 10)
    wait_for("the write in metrics", lambda: standby.metric("amlfw_writes_total") == 1, 5)
    assert standby.stop() == 0
    for d in (leader, standby):
        assert ACCOUNT_KEY not in d.stderr()
        assert azurite.connection_string not in d.stderr()


def test_azurite_helper_skips_only_when_npm_is_missing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import tests.azurite as helper

    monkeypatch.setattr(helper.shutil, "which", lambda name: None)
    with pytest.raises(AzuriteUnavailableError, match="npm is not installed"):
        helper.ensure_installed(tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_bad_daemon_settings_are_one_line_errors_and_once_ignores_the_section(
        tmp_path: Path, emulator: Emulator) -> None:
    seed(emulator, SUBS[0], "fwpol-bad")
    config = fleet_config(tmp_path / "c.yaml", emulator, [(SUBS[0], "fwpol-bad")],
                          daemon={"interval": "often", "lease": {"container": "x"}})
    env = {**{k: v for k, v in os.environ.items() if k not in FOREIGN_CREDENTIAL_ENV}, **emulator.env()}

    def amlfw(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "reconciler", "reconcile", "--config", str(config), *args],
                              cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False)

    result = amlfw()
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == \
        f"error: {config}:daemon.interval: expected a number, got a string"
    once = amlfw("--once", "--dry-run")
    assert once.returncode == 2, once.stderr  # drift: the section is the daemon's business only
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        fleet_config(config, emulator, [(SUBS[0], "fwpol-bad")], daemon={"interval": 5})
        busy = amlfw("--listen", f"127.0.0.1:{port}")
    assert busy.returncode == 1
    assert f"error: --listen: cannot listen on 127.0.0.1:{port}" in busy.stderr
