"""Test servers for the trust boundary: a header-recording HTTPS server and a rewriting proxy before the emulator.

`Recorder` is "another host": it answers anything with a small JSON body and records each request's headers.
`RewritingProxy` sits between the SDK and the emulator and can point the emulator's `nextLink`,
`Azure-AsyncOperation` and `Location` at the recorder, replace a response body, or stream a huge one. Both use a
throwaway CA of their own; `trust_bundle()` writes a bundle trusting it and the emulator's CA.
"""

from __future__ import annotations

import http.client
import json
import re
import ssl
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import trustme

from tests.emulator import Emulator

_CA = trustme.CA(organization_name="amlfw boundary tests (throwaway CA)")


def trust_bundle(emu: Emulator, directory: Path) -> Path:
    path = directory / "bundle.pem"
    path.write_bytes(Path(emu.ca_bundle).read_bytes() + _CA.cert_pem.bytes())
    return path


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, host: str, handler: type[BaseHTTPRequestHandler]) -> None:
        super().__init__((host, 0), handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        _CA.issue_cert(host, "localhost").configure_cert(context)
        self.socket = context.wrap_socket(self.socket, server_side=True)


class _Base:
    def __init__(self, host: str) -> None:
        self.host = host
        self._server: _Server | None = None
        self.base_url = ""

    def _start(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self._server = _Server(self.host, handler)
        self._server.owner = self  # type: ignore[attr-defined]
        self.base_url = f"https://{self.host}:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class Recorder(_Base):
    """Another origin. Records (method, path, headers) of each request; answers a harmless JSON body."""

    def __init__(self, host: str = "127.0.0.2") -> None:
        super().__init__(host)
        self.requests: list[tuple[str, str, dict[str, str]]] = []

    def __enter__(self) -> Recorder:
        self._start(_RecorderHandler)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def authorizations(self) -> list[str]:
        return [h["authorization"] for _, _, h in self.requests if "authorization" in h]


class _RecorderHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _any(self) -> None:
        owner: Recorder = self.server.owner  # type: ignore[attr-defined]
        owner.requests.append((self.command, self.path, {k.lower(): v for k, v in self.headers.items()}))
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = json.dumps({"status": "Succeeded", "value": []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _any  # noqa: N815


Rewrite = Callable[[str, str, int, dict[str, str], bytes], tuple[int, dict[str, str], bytes] | None]


@dataclass
class RewritingProxy(_Base):
    """HTTPS in front of the emulator. `rewrite(method, path, status, headers, body)` may return a replacement
    (status, headers, body); `stream` may return an iterator of chunks sent chunked instead of the body."""

    emu: Emulator
    host: str = "127.0.0.1"
    rewrite: Rewrite | None = None
    stream: Callable[[str, str], Iterator[bytes] | None] | None = None
    bytes_sent: int = 0
    seen: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.host)
        self._upstream = ssl.create_default_context(cafile=self.emu.ca_bundle)

    def __enter__(self) -> RewritingProxy:
        self._start(_ProxyHandler)
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def forward(self, method: str, path: str, headers: dict[str, str], body: bytes
                ) -> tuple[int, dict[str, str], bytes]:
        parts = urlsplit(self.emu.base_url)
        conn = http.client.HTTPSConnection(parts.hostname or "", parts.port, context=self._upstream, timeout=30)
        try:
            send = {k: v for k, v in headers.items() if k.lower() not in ("host", "connection", "accept-encoding")}
            conn.request(method, path, body=body or None, headers=send)
            resp = conn.getresponse()
            data = resp.read()
            out = {k: v for k, v in resp.getheaders()
                   if k.lower() not in ("content-length", "transfer-encoding", "connection", "content-encoding")}
            return resp.status, out, data
        finally:
            conn.close()

    def to_recorder(self, recorder: Recorder) -> Callable[[str], str]:
        """A function moving an absolute URL on this proxy (or the emulator) onto the recorder's origin."""
        pattern = re.compile(re.escape(self.base_url) + "|" + re.escape(self.emu.base_url))
        return lambda url: pattern.sub(recorder.base_url, url)


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _any(self) -> None:
        proxy: RewritingProxy = self.server.owner  # type: ignore[attr-defined]
        proxy.seen.append((self.command, self.path))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        chunks = proxy.stream(self.command, self.path) if proxy.stream else None
        if chunks is not None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                for chunk in chunks:
                    self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    proxy.bytes_sent += len(chunk)
                self.wfile.write(b"0\r\n\r\n")
            except OSError:
                self.close_connection = True
            return
        status, headers, data = proxy.forward(self.command, self.path, dict(self.headers.items()), body)
        # the emulator names its own origin in links; the SDK must see the proxy's
        data = data.replace(proxy.emu.base_url.encode(), proxy.base_url.encode())
        headers = {k: v.replace(proxy.emu.base_url, proxy.base_url) for k, v in headers.items()}
        if proxy.rewrite is not None:
            replaced = proxy.rewrite(self.command, self.path, status, headers, data)
            if replaced is not None:
                status, headers, data = replaced
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        try:
            self.wfile.write(data)
        except OSError:
            self.close_connection = True

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _any  # noqa: N815
