"""The daemon's HTTP endpoint: stdlib `http.server` in a thread, three read-only routes.

    GET /healthz   200 while the scheduler loop is alive, else 503
    GET /readyz    200 when every target had a successful pass recently, else 503; JSON details
    GET /metrics   Prometheus text format

It binds to loopback unless told otherwise (`--listen` / `daemon.listen`); Kubernetes probes need the pod
address, so the manifests pass `--listen 0.0.0.0:9464` and a NetworkPolicy limits who may connect.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import structlog

HEALTH_PATH, READY_PATH, METRICS_PATH = "/healthz", "/readyz", "/metrics"
ROUTES = (HEALTH_PATH, READY_PATH, METRICS_PATH)
DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 9464

log = structlog.get_logger("amlfw.server")

Probe = Callable[[], tuple[bool, dict[str, Any]]]


class HealthServer:
    """Serves the three routes from callbacks; `start()` returns once the socket listens."""

    def __init__(self, host: str, port: int, *, health: Probe, ready: Probe,
                 metrics: Callable[[], tuple[bytes, str]]) -> None:
        self._health, self._ready, self._metrics = health, ready, metrics
        handler = self._handler_class()
        self._httpd = ThreadingHTTPServer((host, port), handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="amlfw-http", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    def start(self) -> HealthServer:
        self._thread.start()
        host, port = self.address
        log.info("server.listening", host=host, port=port, routes=list(ROUTES))
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            server_version = "amlfw"
            sys_version = ""
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                self._answer(body=True)

            def do_HEAD(self) -> None:
                self._answer(body=False)

            def _answer(self, *, body: bool) -> None:
                path = self.path.split("?", 1)[0]
                try:
                    if path == METRICS_PATH:
                        payload, ctype = server._metrics()
                        self._send(200, payload, ctype, body)
                    elif path in (HEALTH_PATH, READY_PATH):
                        ok, details = (server._health if path == HEALTH_PATH else server._ready)()
                        data = json.dumps({"status": "ok" if ok else "fail", **details}, sort_keys=True,
                                          default=str).encode("utf-8") + b"\n"
                        self._send(200 if ok else 503, data, "application/json", body)
                    else:
                        self._send(404, b'{"status": "not found"}\n', "application/json", body)
                except Exception as exc:  # noqa: BLE001 - a probe must answer, never kill the thread
                    log.error("server.error", path=path, error=f"{type(exc).__name__}: {exc}")
                    self._send(500, b'{"status": "error"}\n', "application/json", body)

            def _send(self, status: int, payload: bytes, ctype: str, body: bool) -> None:
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                if body:
                    self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("server.request", client=self.client_address[0], request=format % args)

        return Handler
