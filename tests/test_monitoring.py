"""Monitoring assets in deploy/: Prometheus alert rules and the Grafana dashboard.

- `promtool check rules` and `promtool test rules` (Debian's `prometheus` package, installed by tests/debian_tools.py
  when absent; the tests skip only when promtool cannot be had).
- Every dashboard query is valid PromQL: promtool checks them as recording rules (Grafana's variables replaced).
- Every metric the rules and the dashboard use exists on a running daemon's /metrics.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tests.debian_tools import ToolUnavailableError, ensure_tool
from tests.emulator import Emulator
from tests.test_daemon_process import SUBS, DaemonProcess, daemons, emulator, fleet_config, seed

__all__ = ["daemons", "emulator"]  # fixtures, used by name

REPO = Path(__file__).resolve().parents[1]
ALERTS = REPO / "deploy" / "prometheus" / "alerts.yaml"
ALERT_TESTS = REPO / "deploy" / "prometheus" / "alerts.test.yaml"
DASHBOARD = REPO / "deploy" / "grafana" / "dashboard.json"
METRIC = re.compile(r"\bamlfw_[a-z0-9_]+\b")


def _promtool() -> str:
    try:
        return ensure_tool("promtool", "prometheus")
    except ToolUnavailableError as exc:
        pytest.skip(str(exc))


def _alert_exprs() -> dict[str, str]:
    doc = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return {r["alert"]: r["expr"] for g in doc["groups"] for r in g["rules"]}


def _dashboard_exprs() -> list[str]:
    doc = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    exprs = [t["expr"] for p in doc["panels"] for t in p.get("targets", [])]
    exprs += [v["query"]["query"] for v in doc["templating"]["list"] if isinstance(v.get("query"), dict)]
    return exprs


def _grafana_to_promql(expr: str) -> str:
    return (expr.replace("$__rate_interval", "5m").replace("$__range", "1h").replace("$__interval", "1m")
            .replace('"$target"', '".*"'))


def test_promtool_checks_and_unit_tests_the_alert_rules() -> None:
    promtool = _promtool()
    check = subprocess.run([promtool, "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60,
                           check=False)
    assert check.returncode == 0, check.stdout + check.stderr
    assert f"SUCCESS: {len(_alert_exprs())} rules found" in check.stdout
    unit = subprocess.run([promtool, "test", "rules", str(ALERT_TESTS)], capture_output=True, text=True,
                          timeout=120, check=False, cwd=ALERT_TESTS.parent)
    assert unit.returncode == 0, unit.stdout + unit.stderr


def test_the_alert_unit_tests_can_fail(tmp_path: Path) -> None:
    """promtool test rules is a real check: a wrong threshold in the rules makes the unit tests fail."""
    promtool = _promtool()
    rules = ALERTS.read_text(encoding="utf-8")
    wrong = rules.replace("(amlfw_target_consecutive_failures) >= 3", "(amlfw_target_consecutive_failures) >= 30")
    assert wrong != rules
    (tmp_path / "alerts.yaml").write_text(wrong, encoding="utf-8")
    (tmp_path / "alerts.test.yaml").write_text(ALERT_TESTS.read_text(encoding="utf-8"), encoding="utf-8")
    unit = subprocess.run([promtool, "test", "rules", "alerts.test.yaml"], capture_output=True, text=True,
                          timeout=120, check=False, cwd=tmp_path)
    assert unit.returncode != 0
    assert "AmlfwPassesFailing" in unit.stdout + unit.stderr


def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    promtool = _promtool()
    exprs = [e for e in _dashboard_exprs() if not e.startswith("label_values(")]
    assert len(exprs) > 15
    rules = {"groups": [{"name": "dashboard", "rules": [
        {"record": f"amlfw_dashboard:query{i}", "expr": _grafana_to_promql(e)} for i, e in enumerate(exprs)]}]}
    path = tmp_path / "dashboard-rules.yaml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    check = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60,
                           check=False)
    assert check.returncode == 0, check.stdout + check.stderr


def test_dashboard_is_grafana_json() -> None:
    doc = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert doc["uid"] == "amlfw" and doc["schemaVersion"] >= 36
    ids = [p["id"] for p in doc["panels"]]
    assert len(ids) == len(set(ids))
    for p in doc["panels"]:
        assert p["type"] in ("stat", "timeseries")
        assert set(p["gridPos"]) == {"x", "y", "w", "h"} and p["gridPos"]["x"] + p["gridPos"]["w"] <= 24
        assert p["targets"] and all(t["expr"] for t in p["targets"])


def _exposed(text: str) -> set[str]:
    """Every sample name a /metrics page can carry, from its `# TYPE` lines (a family with no children yet still
    counts: the metric exists, it has just not been observed)."""
    names: set[str] = set()
    for m in re.finditer(r"^# TYPE (\S+) (\S+)$", text, re.M):
        name, kind = m.groups()
        if kind == "counter":
            names.update({name, f"{name}_total"} if not name.endswith("_total") else {name})
        elif kind == "histogram":
            names.update({name, f"{name}_bucket", f"{name}_sum", f"{name}_count"})
        else:
            names.add(name)
    return names


def test_every_metric_the_rules_and_the_dashboard_use_exists_on_a_running_daemon(
        tmp_path: Path, emulator: Emulator, daemons: Callable[..., DaemonProcess]) -> None:
    seed(emulator, SUBS[0], "fwpol-mon")
    config = fleet_config(tmp_path / "c.yaml", emulator, [(SUBS[0], "fwpol-mon")],
                          daemon={"interval": 1.0, "jitter": 0.1})
    d = daemons(config)
    d.wait_ready()
    status, text = d.get("/metrics")
    assert status == 200
    exposed = _exposed(text)
    used: dict[str, set[str]] = {}
    for name, expr in _alert_exprs().items():
        for metric in METRIC.findall(expr):
            used.setdefault(metric, set()).add(f"alert {name}")
    for expr in _dashboard_exprs():
        for metric in METRIC.findall(expr):
            used.setdefault(metric, set()).add("dashboard")
    assert len(used) >= 15
    missing = {m: sorted(w) for m, w in used.items() if m not in exposed}
    assert not missing, f"used but not served by the daemon: {missing}"
    # and the check would see a wrong name
    assert "amlfw_drift_unresolved_total" not in exposed
    assert d.stop() == 0


def test_operations_doc_shows_the_alerts_and_the_dashboard() -> None:
    doc = (REPO / "docs" / "operations.md").read_text(encoding="utf-8")
    for alert in _alert_exprs():
        assert alert in doc, alert
    assert "deploy/grafana/dashboard.json" in doc and "deploy/prometheus/alerts.yaml" in doc
