"""Transport: HTTPS on a ThreadingHTTPServer, dispatch to the token endpoint, the admin API and ARM.

The TLS handshake runs in the connection's own thread (not in the accept loop). Every open connection is
tracked so that ``stop()`` can close keep-alive connections and join their threads: no thread or socket
outlives the emulator.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import ssl
import struct
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .arm import ArmRequest, ArmRouter
from .errors import ArmError
from .faults import FAILURE_KINDS, FaultInjector, failure_error
from .identity import TOKEN_PATH, TokenIssuer
from .metadata import METADATA_PATH, cloud_metadata
from .requestlog import WRITE_METHODS, RequestLog, RequestRecord
from .state import Reply

LOG = logging.getLogger("tests.emulator")
ADMIN_PREFIX = "/_admin/"
DEFAULT_REMAINING = {"reads": 11999, "writes": 1199, "deletes": 14999}
_SUBSCRIPTION_RE = re.compile(r"^/subscriptions/([^/]+)", re.IGNORECASE)
AdminHandler = Callable[[str, str, dict[str, str], bytes], tuple[int, Any]]


class EmulatorHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(
        self,
        address: tuple[str, int],
        context: ssl.SSLContext,
        *,
        router: ArmRouter,
        issuer: TokenIssuer,
        faults: FaultInjector,
        log: RequestLog,
        admin: AdminHandler,
    ) -> None:
        super().__init__(address, _Handler)
        self.context = context
        self.router = router
        self.issuer = issuer
        self.faults = faults
        self.log = log
        self.admin = admin
        self.stopping = threading.Event()
        self._connections_lock = threading.Lock()
        self._connections: dict[socket.socket, threading.Thread] = {}

    def get_request(self) -> tuple[socket.socket, Any]:
        raw, address = self.socket.accept()
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # headers and body go in separate writes
        return self.context.wrap_socket(raw, server_side=True, do_handshake_on_connect=False), address

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections[request] = threading.current_thread()
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._connections_lock:
                self._connections.pop(request, None)

    def handle_error(self, request: Any, client_address: Any) -> None:
        LOG.debug("connection from %s ended with an error", client_address, exc_info=True)

    def close_connections(self, timeout: float = 2.0) -> None:
        """Wake every connection thread (keep-alive reads included) and wait for it to finish."""
        with self._connections_lock:
            connections = list(self._connections.items())
        for connection, _ in connections:
            with contextlib.suppress(OSError):
                socket.socket.shutdown(connection, socket.SHUT_RDWR)
        deadline = time.monotonic() + timeout
        for _, thread in connections:
            thread.join(max(0.0, deadline - time.monotonic()))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: EmulatorHTTPServer
    timeout = 30
    server_version = "Microsoft-HTTPAPI/2.0"
    sys_version = ""

    def setup(self) -> None:
        self.request.settimeout(self.timeout)
        self.request.do_handshake()
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        LOG.debug("%s " + format, self.address_string(), *args)

    def do_GET(self) -> None:
        self._serve()

    def do_HEAD(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    # ------------------------------------------------------------------------------------------

    def _serve(self) -> None:
        started = time.time()
        url = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(url.query, keep_blank_values=True).items()}
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {key.lower(): value for key, value in self.headers.items()}
        if url.path.startswith(ADMIN_PREFIX):
            status, payload = self.server.admin(self.command, url.path[len(ADMIN_PREFIX) :], query, body)
            self._send(status, payload, {})
        elif url.path == TOKEN_PATH:
            status, payload = self.server.issuer.issue(query, headers)
            self._send(status, payload, {})
        elif url.path.rstrip("/").lower() == METADATA_PATH and self.command == "GET":
            # ARM serves its cloud metadata without a token
            base = f"https://{self.server.server_address[0]}:{self.server.server_address[1]}"
            self._send(200, cloud_metadata(base, query.get("api-version", "")), {})
        else:
            self._serve_arm(ArmRequest(self.command, url.path, query, headers, body), started)

    def _serve_arm(self, request: ArmRequest, started: float) -> None:
        """Answer, logging the request first so that a client never sees an answer the log does not hold yet."""
        request_id = str(uuid.uuid4())
        self._lost: Reply | None = None
        reply = self._arm_reply(request)
        status = reply.status if reply is not None else 0
        operation_id = reply.operation_id if reply is not None else self._lost.operation_id if self._lost else None
        self._record(request, status, started, request_id, operation_id)
        if reply is None:
            self._reset()
        else:
            self._send(reply.status, reply.body, self._arm_headers(request, reply, request_id))

    def _arm_reply(self, request: ArmRequest) -> Reply | None:
        """The answer to an ARM request, or None when an injected fault asks for a connection reset."""
        faults = self.server.faults
        slow = faults.take(request.method, request.path, frozenset({"slow"}))
        if slow is not None:
            self.server.stopping.wait(float(slow.params["seconds"]))
        try:
            self.server.issuer.check(request.headers.get("authorization"))
            failure = faults.take(request.method, request.path, FAILURE_KINDS) or faults.roll(
                request.method, request.path, FAILURE_KINDS
            )
            if failure is not None and failure.kind == "reset":
                return None
            if failure is not None and failure.kind == "lost_response":
                self._lost = self.server.router.handle(request)  # done, but the client never hears of it
                return None
            if failure is not None:
                match = _SUBSCRIPTION_RE.match(request.path)
                raise failure_error(failure, match.group(1) if match else "", request.method)
            return self.server.router.handle(request)
        except ArmError as error:
            return Reply(error.status, error.body(), dict(error.headers))
        except Exception:
            LOG.exception("emulator bug while serving %s %s", request.method, request.path)
            return Reply(500, {"error": {"code": "InternalServerError", "message": "Emulator error; see its log."}})

    def _arm_headers(self, request: ArmRequest, reply: Reply, request_id: str) -> dict[str, str]:
        kind = {"GET": "reads", "HEAD": "reads", "DELETE": "deletes"}.get(request.method, "writes")
        throttle = self.server.faults.take(request.method, request.path, frozenset({"throttle_headers"}))
        remaining = throttle.params["value"] if throttle is not None else DEFAULT_REMAINING[kind]
        headers = {
            "x-ms-request-id": request_id,
            "x-ms-correlation-request-id": request.headers.get("x-ms-correlation-request-id") or request_id,
            f"x-ms-ratelimit-remaining-subscription-{kind}": str(remaining),
            "Cache-Control": "no-cache",
            **reply.headers,
        }
        if isinstance(reply.body, dict) and isinstance(reply.body.get("etag"), str) and request.method == "GET":
            headers["ETag"] = reply.body["etag"].removeprefix("W/")
        return headers

    def _record(
        self, request: ArmRequest, status: int, started: float, request_id: str, operation_id: str | None
    ) -> None:
        self.server.log.append(
            RequestRecord(
                method=request.method,
                path=request.path,
                query=dict(request.query),
                status=status,
                started=started,
                ended=time.time(),
                is_write=request.method in WRITE_METHODS,
                request_id=request_id,
                operation_id=operation_id,
            )
        )

    def _reset(self) -> None:
        """Abort the connection with a TCP RST (SO_LINGER 0) instead of answering."""
        self.close_connection = True
        self.request.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()
        self.wfile.close()
        self.request.close()

    def _send(self, status: int, payload: Any, headers: dict[str, str]) -> None:
        data = b"" if payload is None else json.dumps(payload).encode("utf-8")
        self.send_response(status)
        if "x-ms-request-id" not in headers:
            headers = {"x-ms-request-id": str(uuid.uuid4()), **headers}
        for name, value in headers.items():
            self.send_header(name, value)
        if data:
            self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data and self.command != "HEAD":
            self.wfile.write(data)
