"""F6: one error boundary. Whatever malformed answer the service gives, the pass ends in a typed error naming the
URL, the status and a short excerpt of the body: never a traceback, and in a fleet every target is reported."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.engine import reconcile_all, reconcile_target
from tests.boundary_support import RewritingProxy, trust_bundle
from tests.emulator import Emulator
from tests.emulator.pytest_plugin import *  # noqa: F403
from tests.engine_support import SUB, compiled, group, seed_policy, unique, write_config, writes

Body = Callable[[dict[str, Any]], Any]


@pytest.fixture
def trusted(emulator: Emulator, arm_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = str(trust_bundle(emulator, tmp_path))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", bundle)
    monkeypatch.setenv("SSL_CERT_FILE", bundle)


@pytest.fixture
def proxy(emulator: Emulator, trusted: None) -> Iterator[RewritingProxy]:
    with RewritingProxy(emulator) as p:
        yield p


def _config(tmp_path: Path, emu: Emulator, proxy: RewritingProxy, policy: str, name: str | None = None) -> Path:
    path = write_config(tmp_path, emu, policy)
    doc = yaml.safe_load(path.read_text())
    doc["arm_endpoint"] = proxy.base_url
    doc["azure"].update(retry_total=0, write_attempts=2)
    if name:
        doc["name"] = name
    path.write_text(json.dumps(doc))
    return path


def _is_list(path: str) -> bool:
    return path.split("?")[0].endswith("/ruleCollectionGroups")


def _is_policy(path: str) -> bool:
    return "/firewallPolicies/" in path and path.split("?")[0].count("/") == 8


def _groups(mutate: Callable[[dict[str, Any]], None]) -> Callable[[str, str, bytes], bytes | None]:
    """Mutate the first foreign group of the LIST answer."""
    def rewrite(method: str, path: str, body: bytes) -> bytes | None:
        if method != "GET" or not _is_list(path):
            return None
        doc = json.loads(body)
        mutate(doc["value"][0])
        return json.dumps(doc).encode()
    return rewrite


def _set(*keys: str | int, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(doc: dict[str, Any]) -> None:
        node: Any = doc
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
    return mutate


def _whole(method: str, match: Callable[[str], bool], body: bytes,
           status: int | None = None) -> Callable[[str, str, bytes], bytes | None]:
    def rewrite(m: str, path: str, old: bytes) -> bytes | None:
        return body if m == method and match(path) else None
    return rewrite


HTML = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>" + b"x" * 5000 + b"</body></html>"

READ_CASES: dict[str, Callable[[str, str, bytes], bytes | None]] = {
    "html-on-200-policy": _whole("GET", _is_policy, HTML),
    "html-on-200-list": _whole("GET", _is_list, HTML),
    "empty-body-policy": _whole("GET", _is_policy, b""),
    "json-null-policy": _whole("GET", _is_policy, b"null"),
    "json-list-policy": _whole("GET", _is_policy, b"[1, 2]"),
    "value-not-a-list": _whole("GET", _is_list, b'{"value": {"name": "x"}}'),
    "value-null-items": _whole("GET", _is_list, b'{"value": [null]}'),
    "value-string-items": _whole("GET", _is_list, b'{"value": ["abc"]}'),
    "priority-abc": _groups(_set("properties", "priority", value="abc")),
    "collection-priority-abc": _groups(_set("properties", "ruleCollections", 0, "priority", value="abc")),
    "rules-null-item": _groups(_set("properties", "ruleCollections", 0, "rules", value=[None])),
    "rules-not-a-list": _groups(_set("properties", "ruleCollections", 0, "rules", value={"a": 1})),
    "collections-not-a-list": _groups(_set("properties", "ruleCollections", value="abc")),
    "collections-null-item": _groups(_set("properties", "ruleCollections", value=[None])),
    "properties-a-string": _groups(_set("properties", value="abc")),
    "ports-a-string": _groups(_set("properties", "ruleCollections", 0, "rules", 0, "destinationPorts", value="53")),
    "ports-numbers": _groups(_set("properties", "ruleCollections", 0, "rules", 0, "destinationPorts", value=[53])),
    "name-a-number": _groups(_set("name", value=7)),
    "action-a-string": _groups(_set("properties", "ruleCollections", 0, "action", value="Allow")),
}


def _install(proxy: RewritingProxy, rewrite: Callable[[str, str, bytes], bytes | None]) -> None:
    def full(method: str, path: str, status: int, headers: dict[str, str], body: bytes
             ) -> tuple[int, dict[str, str], bytes] | None:
        new = rewrite(method, path, body)
        return None if new is None else (status, headers, new)
    proxy.rewrite = full


def _assert_clean_error(error: str | None) -> None:
    assert error
    assert "Traceback" not in error
    assert "url=https://" in error, error
    assert "status=200" in error, error
    assert len(error) < 600, error


@pytest.mark.parametrize("case", sorted(READ_CASES))
def test_malformed_read_is_a_typed_error(case: str, emulator: Emulator, proxy: RewritingProxy,
                                         tmp_path: Path) -> None:
    policy = unique("fwpol")
    seed_policy(emulator, policy)
    _install(proxy, READ_CASES[case])
    target, desired = compiled(_config(tmp_path, emulator, proxy, policy))
    outcome = reconcile_target(target, desired, dry_run=False)
    assert outcome.status == "error"
    _assert_clean_error(outcome.error)
    assert writes(emulator, policy) == [], "nothing is written after a malformed read"


@pytest.mark.parametrize("body", [b"", b"<html>oops</html>", b"null", b'{"properties": "x"}'])
def test_malformed_put_response_is_a_typed_error(body: bytes, emulator: Emulator, proxy: RewritingProxy,
                                                 tmp_path: Path) -> None:
    policy = unique("fwpol")
    seed_policy(emulator, policy)

    def rewrite(method: str, path: str, status: int, headers: dict[str, str], old: bytes
                ) -> tuple[int, dict[str, str], bytes] | None:
        if method == "PUT":
            return 200, {k: v for k, v in headers.items()
                         if k.lower() not in ("azure-asyncoperation", "location")}, body
        return None

    proxy.rewrite = rewrite
    target, desired = compiled(_config(tmp_path, emulator, proxy, policy))
    outcome = reconcile_target(target, desired, dry_run=False)
    assert outcome.status == "error"
    assert outcome.error and "Traceback" not in outcome.error
    assert "url=https://" in outcome.error, outcome.error
    assert len([r for r in emulator.requests() if r.method == "PUT"]) == 1, "a malformed answer is not retried"


def test_fleet_reports_every_target_whatever_happens_to_one(emulator: Emulator, proxy: RewritingProxy,
                                                             tmp_path: Path) -> None:
    good, bad = unique("fwpol-good"), unique("fwpol-bad")
    seed_policy(emulator, good)
    seed_policy(emulator, bad)

    def rewrite(method: str, path: str, body: bytes) -> bytes | None:
        if method == "GET" and _is_list(path) and f"/{bad}/" in path:
            return b'{"value": [null]}'
        return None

    _install(proxy, rewrite)
    pairs = [compiled(_config(tmp_path / n, emulator, proxy, n, name=n)) for n in (good, bad)
             if (tmp_path / n).mkdir() is None]
    outcomes = reconcile_all(pairs, dry_run=False, max_workers=2)
    by_name = {o.target: o for o in outcomes}
    assert by_name[good].status == "applied"
    assert by_name[bad].status == "error"
    assert group(emulator, good) is not None
    assert group(emulator, bad) is None
    _ = SUB
