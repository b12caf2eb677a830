"""Prometheus metrics of the daemon, in a registry of its own (never the process-global one).

Every name starts with `amlfw_`. Labels stay low-cardinality: `target` is the configured target name,
`subscription` a subscription id, `method`/`status` the HTTP verb and status code of an ARM request.

    amlfw_passes_total{target,outcome}                 passes by outcome: in_sync | drift | applied | error
    amlfw_pass_duration_seconds{outcome}               histogram of pass durations
    amlfw_target_drift{target}                         1 while the target is known to differ from desired
    amlfw_target_drift_changes{target}                 changes the last pass planned (rules, collections, routes)
    amlfw_drift_detected_total{target}                 passes that found drift (repaired or not)
    amlfw_changes_applied_total{target,change}         applied changes: rules_added, routes_removed, ...
    amlfw_writes_total{target,kind}                    writes: rule_collection_group | route
    amlfw_retries_total{target}                        retried Azure operations inside passes
    amlfw_arm_requests_total{method,status}            ARM responses seen
    amlfw_arm_ratelimit_remaining{subscription,kind}   last x-ms-ratelimit-remaining-subscription-* value
    amlfw_arm_throttle_pauses_total{subscription,reason}  times a subscription's passes were delayed
    amlfw_last_success_timestamp_seconds{target}       end of the last pass that did not fail (Unix time)
    amlfw_last_pass_timestamp_seconds{target}          end of the last pass (Unix time)
    amlfw_target_consecutive_failures{target}          failed passes in a row
    amlfw_catalogue_info{target,catalogue_version}     1 for the catalogue version a target compiles from
    amlfw_targets                                      configured targets
    amlfw_ready                                        1 when /readyz answers 200
    amlfw_lease_held                                   1 while this replica holds the HA lease (or needs none)
    amlfw_lease_transitions_total{event}               acquired | lost | released
    amlfw_config_reloads_total{result}                 SIGHUP reloads: ok | error
    amlfw_build_info{version}                          always 1
"""

from __future__ import annotations

import contextlib

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from reconciler import __version__
from reconciler.plan import Outcome

PASS_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1200.0, 1800.0)
RATELIMIT_HEADERS = {
    "x-ms-ratelimit-remaining-subscription-reads": "reads",
    "x-ms-ratelimit-remaining-subscription-writes": "writes",
    "x-ms-ratelimit-remaining-subscription-deletes": "deletes",
}
CONTENT_TYPE = CONTENT_TYPE_LATEST


class Metrics:
    """The daemon's metrics. `render()` is what /metrics serves."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        r = self.registry = registry or CollectorRegistry(auto_describe=True)
        self.passes = Counter("amlfw_passes", "Reconcile passes by outcome.", ["target", "outcome"], registry=r)
        self.pass_duration = Histogram("amlfw_pass_duration_seconds", "Duration of one reconcile pass.",
                                       ["outcome"], buckets=PASS_BUCKETS, registry=r)
        self.drift = Gauge("amlfw_target_drift", "1 while the target is known to differ from its desired state.",
                           ["target"], registry=r)
        self.drift_changes = Gauge("amlfw_target_drift_changes",
                                   "Changes (rules, collections, routes) the last pass planned.", ["target"],
                                   registry=r)
        self.drift_detected = Counter("amlfw_drift_detected", "Passes that found drift, repaired or not.",
                                      ["target"], registry=r)
        self.changes_applied = Counter("amlfw_changes_applied", "Changes applied to Azure, by kind of change.",
                                       ["target", "change"], registry=r)
        self.writes = Counter("amlfw_writes", "Azure writes: rule_collection_group or route.", ["target", "kind"],
                              registry=r)
        self.retries = Counter("amlfw_retries", "Retried Azure operations inside passes.", ["target"], registry=r)
        self.arm_requests = Counter("amlfw_arm_requests", "ARM responses by HTTP method and status.",
                                    ["method", "status"], registry=r)
        self.ratelimit_remaining = Gauge("amlfw_arm_ratelimit_remaining",
                                         "Last x-ms-ratelimit-remaining-subscription-* value seen.",
                                         ["subscription", "kind"], registry=r)
        self.throttle_pauses = Counter("amlfw_arm_throttle_pauses",
                                       "Times a subscription's passes were delayed to respect ARM limits.",
                                       ["subscription", "reason"], registry=r)
        self.last_success = Gauge("amlfw_last_success_timestamp_seconds",
                                  "Unix time at which the last pass that did not fail ended.", ["target"], registry=r)
        self.last_pass = Gauge("amlfw_last_pass_timestamp_seconds", "Unix time at which the last pass ended.",
                               ["target"], registry=r)
        self.failures = Gauge("amlfw_target_consecutive_failures", "Failed passes in a row.", ["target"], registry=r)
        self.catalogue = Gauge("amlfw_catalogue_info", "The catalogue version a target compiles from (always 1).",
                               ["target", "catalogue_version"], registry=r)
        self.targets = Gauge("amlfw_targets", "Configured targets.", registry=r)
        self.ready = Gauge("amlfw_ready", "1 when /readyz answers 200.", registry=r)
        self.lease_held = Gauge("amlfw_lease_held", "1 while this replica may write (holds the lease or needs none).",
                                registry=r)
        self.lease_transitions = Counter("amlfw_lease_transitions", "Lease events: acquired, lost, released.",
                                         ["event"], registry=r)
        self.config_reloads = Counter("amlfw_config_reloads", "Configuration reloads on SIGHUP, by result.",
                                      ["result"], registry=r)
        build = Gauge("amlfw_build_info", "amlfw version (always 1).", ["version"], registry=r)
        build.labels(__version__).set(1)
        self._catalogue_versions: dict[str, str] = {}

    def render(self) -> bytes:
        return generate_latest(self.registry)

    # ------------------------------------------------------------------------------------------ targets

    def target_added(self, target: str, catalogue_version: str) -> None:
        old = self._catalogue_versions.get(target)
        if old is not None and old != catalogue_version:
            self.catalogue.remove(target, old)
        self._catalogue_versions[target] = catalogue_version
        self.catalogue.labels(target, catalogue_version).set(1)
        self.failures.labels(target).set(0)

    def target_removed(self, target: str) -> None:
        """Drop every series of a target that left the configuration."""
        for metric in (self.drift, self.drift_changes, self.drift_detected, self.retries, self.last_success,
                       self.last_pass, self.failures):
            _remove(metric, target)
        for metric, values in ((self.passes, ("in_sync", "drift", "applied", "partial", "error")),
                               (self.writes, ("rule_collection_group", "route"))):
            for value in values:
                _remove(metric, target, value)
        for change in _CHANGE_KEYS:
            _remove(self.changes_applied, target, change)
        version = self._catalogue_versions.pop(target, None)
        if version is not None:
            _remove(self.catalogue, target, version)

    def pass_finished(self, outcome: Outcome, *, wall_time: float, failures: int) -> None:
        """Record one pass. `failures` is the target's consecutive-failure count after it."""
        t = outcome.target
        self.passes.labels(t, outcome.status).inc()
        self.pass_duration.labels(outcome.status).observe(outcome.duration_ms / 1000.0)
        self.last_pass.labels(t).set(wall_time)
        self.failures.labels(t).set(failures)
        if outcome.ok:
            self.last_success.labels(t).set(wall_time)
        plan = outcome.plan
        if plan is not None:
            counts = plan.counts
            self.drift_changes.labels(t).set(sum(counts.values()) + (1 if _group_only(plan.group_action, counts)
                                                                     else 0))
            if plan.drift:
                self.drift_detected.labels(t).inc()
            repaired = outcome.status == "applied" or outcome.status == "in_sync"
            self.drift.labels(t).set(0 if repaired or not plan.drift else 1)
        if outcome.group_written:
            self.writes.labels(t, "rule_collection_group").inc()
            if plan is not None:
                for key, value in plan.counts.items():
                    if value and not key.startswith("routes_"):
                        self.changes_applied.labels(t, key).inc(value)
        if outcome.routes_written:
            self.writes.labels(t, "route").inc(outcome.routes_written)
            if plan is not None:
                for key, value in plan.counts.items():
                    if value and key.startswith("routes_"):
                        self.changes_applied.labels(t, key).inc(value)

    def retried(self, target: str) -> None:
        self.retries.labels(target).inc()

    # ------------------------------------------------------------------------------------------ ARM

    def arm_response(self, subscription: str, method: str, status: int, headers: dict[str, str]) -> None:
        self.arm_requests.labels(method.upper(), str(status)).inc()
        for header, kind in RATELIMIT_HEADERS.items():
            value = _int(headers.get(header))
            if value is not None:
                self.ratelimit_remaining.labels(subscription, kind).set(value)


_CHANGE_KEYS = ("collections_added", "collections_removed", "collections_changed", "rules_added", "rules_removed",
                "rules_changed", "routes_added", "routes_removed", "routes_changed")


def _group_only(action: str, counts: dict[str, int]) -> bool:
    """A group write with no collection- or rule-level change (e.g. its priority) still counts as one change."""
    return action != "none" and not any(v for k, v in counts.items() if not k.startswith("routes_"))


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        return None


def _remove(metric: Counter | Gauge, *labels: str) -> None:
    with contextlib.suppress(KeyError):
        metric.remove(*labels)
