"""F2: the token stays home. Links the service hands out (nextLink, Azure-AsyncOperation, Location) are followed
only on the arm_endpoint's origin, and response bodies are size-capped. Real SDK over HTTPS, emulator behind a
rewriting proxy, a second HTTPS server on another loopback host that records what it receives."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from reconciler.azure.clients import SameOriginPolicy
from reconciler.config import url_origin
from reconciler.engine import reconcile_target
from tests.boundary_support import Recorder, RewritingProxy, trust_bundle
from tests.emulator import Emulator
from tests.emulator.pytest_plugin import *  # noqa: F403
from tests.engine_support import FOREIGN_GROUP, compiled, group, seed_policy, unique, write_config


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    with Recorder("127.0.0.2") as rec:
        yield rec


@pytest.fixture
def trusted(emulator: Emulator, arm_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bundle = str(trust_bundle(emulator, tmp_path))
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", bundle)
    monkeypatch.setenv("SSL_CERT_FILE", bundle)


def _config(tmp_path: Path, emu: Emulator, proxy: RewritingProxy, policy: str, **azure: object) -> Path:
    path = write_config(tmp_path, emu, policy)
    doc = yaml.safe_load(path.read_text())
    doc["arm_endpoint"] = proxy.base_url
    doc["azure"].update(azure)
    path.write_text(json.dumps(doc))
    return path


def test_next_link_to_another_host_gets_no_token(emulator: Emulator, trusted: None, recorder: Recorder,
                                                 tmp_path: Path) -> None:
    policy = unique("fwpol")
    seed_policy(emulator, policy)
    for i in range(3):  # page_size is 2: the LIST has a second page
        emulator.put_rule_collection_group("00000000-0000-0000-0000-0000000000aa", "rg-hub", policy, f"other-{i}",
                                           json.loads(json.dumps({**FOREIGN_GROUP, "properties": {
                                               **FOREIGN_GROUP["properties"], "priority": 1000 + i}})))
    with RewritingProxy(emulator) as proxy:
        move = proxy.to_recorder(recorder)

        def rewrite(method: str, path: str, status: int, headers: dict[str, str], body: bytes
                    ) -> tuple[int, dict[str, str], bytes] | None:
            if b'"nextLink"' not in body:
                return None
            doc = json.loads(body)
            doc["nextLink"] = move(doc["nextLink"])
            return status, headers, json.dumps(doc).encode()

        proxy.rewrite = rewrite
        target, desired = compiled(_config(tmp_path, emulator, proxy, policy))
        outcome = reconcile_target(target, desired, dry_run=True)
    assert recorder.requests == [], "the foreign host was never contacted"
    assert recorder.authorizations() == []
    assert outcome.status == "error"
    assert "off the Resource Manager origin" in (outcome.error or "")
    assert recorder.base_url in (outcome.error or "")


def test_async_operation_on_another_host_gets_no_token(emulator: Emulator, trusted: None, recorder: Recorder,
                                                       tmp_path: Path) -> None:
    policy = unique("fwpol")
    seed_policy(emulator, policy)
    emulator.set_operation_duration(0.3)  # the PUT answers 201 + Azure-AsyncOperation: there is something to poll
    with RewritingProxy(emulator) as proxy:
        move = proxy.to_recorder(recorder)

        def rewrite(method: str, path: str, status: int, headers: dict[str, str], body: bytes
                    ) -> tuple[int, dict[str, str], bytes] | None:
            if method != "PUT":
                return None
            moved = {k: (move(v) if k.lower() in ("azure-asyncoperation", "location") else v)
                     for k, v in headers.items()}
            return status, moved, body

        proxy.rewrite = rewrite
        target, desired = compiled(_config(tmp_path, emulator, proxy, policy))
        outcome = reconcile_target(target, desired, dry_run=False)
    assert recorder.authorizations() == []
    assert recorder.requests == []
    assert outcome.status == "error"
    assert "off the Resource Manager origin" in (outcome.error or "")
    puts = [r for r in emulator.requests() if r.method == "PUT"]
    assert len(puts) == 1, "a refused link is not retried"


def test_redirect_to_another_host_gets_no_token(emulator: Emulator, trusted: None, recorder: Recorder,
                                                tmp_path: Path) -> None:
    policy = unique("fwpol")
    seed_policy(emulator, policy)
    with RewritingProxy(emulator) as proxy:
        proxy.rewrite = lambda m, p, s, h, b: (307, {"Location": recorder.base_url + p}, b"")
        target, desired = compiled(_config(tmp_path, emulator, proxy, policy))
        outcome = reconcile_target(target, desired, dry_run=True)
    assert recorder.authorizations() == []  # azure-core's redirect policy strips it; amlfw does not even go
    assert recorder.requests == []
    assert outcome.status == "error"
    assert "off the Resource Manager origin" in (outcome.error or "")


@pytest.mark.parametrize(("url", "same"), [
    ("https://arm.test/subscriptions/x?api-version=1", True),
    ("https://ARM.test:443/x", True),
    ("https://arm.test./x", True),
    ("http://arm.test/x", False),
    ("https://arm.test:8443/x", False),
    ("https://arm.test.evil.test/x", False),
    ("https://evil.test/https://arm.test/x", False),
    ("https://arm.test@evil.test/x", False),
    ("https://arm.test:bad/x", False),
    ("/relative", False),
])
def test_origin_comparison(url: str, same: bool) -> None:
    policy = SameOriginPolicy("https://arm.test")
    assert (url_origin(url) == policy.origin) is same


def test_oversized_body_is_refused_while_streaming(emulator: Emulator, trusted: None, tmp_path: Path) -> None:
    """A 78 MB LIST page (sent chunked, no Content-Length) stops at the cap, with a typed error."""
    policy = unique("fwpol")
    seed_policy(emulator, policy)
    total = 78 * 1024 * 1024

    def stream(method: str, path: str) -> Iterator[bytes] | None:
        if "ruleCollectionGroups" not in path or method != "GET":
            return None

        def chunks() -> Iterator[bytes]:
            yield b'{"value": ['
            piece = json.dumps({"name": "g", "properties": {"priority": 100, "ruleCollections": []}}).encode()
            block = b",".join([piece] * (1024 * 1024 // len(piece)))
            sent = 0
            while sent < total:
                yield block + b","
                sent += len(block) + 1
            yield piece + b"]}"
        return chunks()

    with RewritingProxy(emulator, stream=stream) as proxy:
        target, desired = compiled(_config(tmp_path, emulator, proxy, policy, max_response_bytes=1024 * 1024))
        outcome = reconcile_target(target, desired, dry_run=True)
        sent = proxy.bytes_sent
    assert outcome.status == "error"
    assert "larger than azure.max_response_bytes" in (outcome.error or "")
    assert sent < 16 * 1024 * 1024, f"the client stopped reading early ({sent:,} of {total:,} bytes sent)"


def test_declared_oversized_body_is_refused_unread(emulator: Emulator, trusted: None, tmp_path: Path) -> None:
    policy = unique("fwpol")
    seed_policy(emulator, policy)
    with RewritingProxy(emulator) as proxy:
        big = b'{"value": [], "pad": "' + b"x" * 200_000 + b'"}'
        proxy.rewrite = lambda m, p, s, h, b: (s, h, big) if "ruleCollectionGroups" in p else None
        target, desired = compiled(_config(tmp_path, emulator, proxy, policy, max_response_bytes=65536))
        outcome = reconcile_target(target, desired, dry_run=True)
    assert outcome.status == "error"
    assert "refused unread" in (outcome.error or "")
    assert group(emulator, policy) is None


# ---------------------------------------------------------------------------------------------- F5 bounds


def _list_gets(proxy: RewritingProxy) -> list[str]:
    return [p for m, p in proxy.seen if m == "GET" and p.split("?")[0].endswith("/ruleCollectionGroups")]


def test_self_pointing_next_link_stops(emulator: Emulator, trusted: None, tmp_path: Path) -> None:
    policy = unique("fwpol")
    seed_policy(emulator, policy)
    with RewritingProxy(emulator) as proxy:
        def rewrite(method: str, path: str, status: int, headers: dict[str, str], body: bytes
                    ) -> tuple[int, dict[str, str], bytes] | None:
            if not path.split("?")[0].endswith("/ruleCollectionGroups"):
                return None
            doc = json.loads(body)
            # point at itself; give up after 50 so that the old code fails instead of hanging
            if len(_list_gets(proxy)) < 50:
                doc["nextLink"] = proxy.base_url + path
            return status, headers, json.dumps(doc).encode()

        proxy.rewrite = rewrite
        target, desired = compiled(_config(tmp_path, emulator, proxy, policy))
        outcome = reconcile_target(target, desired, dry_run=True)
        gets = _list_gets(proxy)
    assert outcome.status == "error"
    assert "repeated a nextLink" in (outcome.error or "")
    assert len(gets) == 2


def test_endless_pages_stop_at_the_page_bound(emulator: Emulator, trusted: None, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from reconciler.azure import observe

    monkeypatch.setattr(observe, "MAX_PAGES", 5)
    policy = unique("fwpol")
    seed_policy(emulator, policy)
    with RewritingProxy(emulator) as proxy:
        def rewrite(method: str, path: str, status: int, headers: dict[str, str], body: bytes
                    ) -> tuple[int, dict[str, str], bytes] | None:
            if not path.split("?")[0].endswith("/ruleCollectionGroups"):
                return None
            doc = json.loads(body)
            n = len(_list_gets(proxy))
            if n < 50:  # a fresh link each time: only the page bound stops this
                doc["nextLink"] = f"{proxy.base_url}{path.split('&page=')[0]}&page={n}"
            return status, headers, json.dumps(doc).encode()

        proxy.rewrite = rewrite
        target, desired = compiled(_config(tmp_path, emulator, proxy, policy))
        outcome = reconcile_target(target, desired, dry_run=True)
        gets = _list_gets(proxy)
    assert outcome.status == "error"
    assert "more than 5 pages" in (outcome.error or "")
    assert len(gets) == 5


def test_an_endpoint_that_never_answers_times_out(emulator: Emulator, arm_env: dict[str, str],
                                                  tmp_path: Path) -> None:
    """Connect and read timeouts apply: a listener that accepts and never says a word ends the pass in error."""
    import socket

    policy = unique("fwpol")
    seed_policy(emulator, policy)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        path = write_config(tmp_path, emulator, policy)
        doc = yaml.safe_load(path.read_text())
        doc["arm_endpoint"] = f"https://127.0.0.1:{silent.getsockname()[1]}"
        doc["azure"].update(retry_total=0, connection_timeout=0.3, read_timeout=0.3)
        path.write_text(json.dumps(doc))
        target, desired = compiled(path)
        outcome = reconcile_target(target, desired, dry_run=True)
    assert outcome.status == "error"
    assert "connection failed" in (outcome.error or "")


def test_a_token_endpoint_that_never_answers_times_out(emulator: Emulator, arm_env: dict[str, str], tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Token requests get the read timeout too (azure-identity's default is 300 s)."""
    import socket

    policy = unique("fwpol")
    seed_policy(emulator, policy)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        monkeypatch.setenv("IDENTITY_ENDPOINT", f"http://127.0.0.1:{silent.getsockname()[1]}/token")
        path = write_config(tmp_path, emulator, policy, extra={"credential": {"kind": "managed_identity"}})
        doc = yaml.safe_load(path.read_text())
        doc["azure"].update(retry_total=0, read_timeout=0.3)
        path.write_text(json.dumps(doc))
        target, desired = compiled(path)
        outcome = reconcile_target(target, desired, dry_run=True)
    assert outcome.status == "error"
