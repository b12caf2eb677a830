"""``Emulator``: start/stop the HTTPS server and drive its state from Python."""

from __future__ import annotations

import shutil
import ssl
import tempfile
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

import trustme

from . import examples
from .arm import ArmRouter
from .control import Control
from .errors import ArmError
from .faults import Fault, FaultInjector, ForeignWriter
from .identity import TOKEN_PATH, TokenIssuer
from .reference import ReferenceData
from .requestlog import RequestLog, RequestRecord, overlapping_writes, with_operation_end
from .server import EmulatorHTTPServer
from .state import ArmState, Config

# Unset these next to ``Emulator.env()``: each would steer DefaultAzureCredential (or MSAL's managed-identity
# detection) away from the emulator's identity endpoint.
FOREIGN_CREDENTIAL_ENV = (
    "AZURE_CLIENT_ID",
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_USERNAME",
    "AZURE_PASSWORD",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_TOKEN_CREDENTIALS",
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
)


CONFIGURABLE: dict[str, type] = {
    "op_duration": float,
    "op_duration_max": float,
    "retry_after": float,
    "policy_settle": float,
    "sync_validation": bool,
    "honor_if_match": bool,
    "conflict_status": int,
    "page_size": int,
}


class Emulator:
    """A local ARM for firewall policies, route tables, service tags and Azure ML dependencies.

    Seeding methods (``put_*``) act at once, without a long-running operation and ignoring write locks;
    they validate like Azure unless ``validate=False``, and create the resource group if it is missing.
    Bodies and results are wire JSON (camelCase) as Azure returns them. Errors are ``ArmError``.
    """

    def __init__(
        self,
        *,
        op_duration: float = 0.0,
        page_size: int = 2,
        conflict_status: int = 409,
        max_group_bytes: int = 2 * 1024 * 1024,
        max_groups_per_policy: int = 100,
        reference_dir: str | Path | None = None,
        retry_after: float = 0.0,
        policy_settle: float = 0.0,
        sync_validation: bool = False,
        honor_if_match: bool = True,
        observed_defaults: bool = False,
        host: str = "127.0.0.1",
        port: int = 0,
        state_dir: str | Path | None = None,
    ) -> None:
        if conflict_status not in (409, 429):
            raise ValueError("conflict_status must be 409 or 429")
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        self.config = Config(
            op_duration=op_duration,
            page_size=page_size,
            conflict_status=conflict_status,
            retry_after=retry_after,
            policy_settle=policy_settle,
            sync_validation=sync_validation,
            max_group_bytes=max_group_bytes,
            max_groups_per_policy=max_groups_per_policy,
            honor_if_match=honor_if_match,
            observed_defaults=observed_defaults,
        )
        self.reference = ReferenceData.at(Path(reference_dir) if reference_dir else None)
        self.reference.check()  # refuse to start without the data it validates against (one-line error)
        self.faults = FaultInjector()
        self.log = RequestLog()
        self.state = ArmState(self.config, self.reference, self.faults)
        self.issuer = TokenIssuer()
        self.host, self.port = host, port
        self._state_dir = Path(state_dir) if state_dir else None
        self._owned_dir: Path | None = None
        self._server: EmulatorHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._foreign: list[ForeignWriter] = []
        self.base_url = ""
        self.ca_bundle = ""

    # ------------------------------------------------------------------------------------------
    # lifecycle

    def start(self) -> Emulator:
        if self._server is not None:
            raise RuntimeError("emulator already started")
        ca = trustme.CA(organization_name="amlfw emulator (throwaway test CA)")
        leaf = ca.issue_cert(self.host, "localhost")
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        leaf.configure_cert(context)
        if self._state_dir is None:
            self._owned_dir = Path(tempfile.mkdtemp(prefix="amlfw-emulator-"))
        directory = self._state_dir or self._owned_dir
        assert directory is not None
        directory.mkdir(parents=True, exist_ok=True)
        ca_path = directory / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_path))
        self.ca_bundle = str(ca_path)
        self._server = EmulatorHTTPServer(
            (self.host, self.port),
            context,
            router=ArmRouter(self.state),
            issuer=self.issuer,
            faults=self.faults,
            log=self.log,
            admin=Control(self).handle,
        )
        self.port = self._server.server_address[1]
        self.base_url = f"https://{self.host}:{self.port}"
        self.config.base_url = self.base_url
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="arm-emulator", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.stop_foreign_writer()
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.stopping.set()
        server.shutdown()
        server.server_close()
        server.close_connections()
        thread.join(timeout=5)
        self._server = self._thread = None
        if self._owned_dir is not None:
            shutil.rmtree(self._owned_dir, ignore_errors=True)
            self._owned_dir = None

    def __enter__(self) -> Emulator:
        return self.start() if self._server is None else self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def admin_url(self) -> str:
        return f"{self.base_url}/_admin"

    def env(self) -> dict[str, str]:
        """Environment for a process using the real SDK against this emulator (DefaultAzureCredential included)."""
        return {
            "REQUESTS_CA_BUNDLE": self.ca_bundle,
            "SSL_CERT_FILE": self.ca_bundle,
            "IDENTITY_ENDPOINT": f"{self.base_url}{TOKEN_PATH}",
            "IDENTITY_HEADER": self.issuer.identity_header,
            "AMLFW_ARM_ENDPOINT": self.base_url,
        }

    # ------------------------------------------------------------------------------------------
    # seeding and direct state access

    def add_resource_group(self, sub: str, rg: str, location: str = "westus2") -> dict[str, Any]:
        return self.state.add_resource_group(sub, rg, location)

    def register_provider(self, sub: str, namespace: str, state: str = "Registered") -> None:
        self.state.register_provider(sub, namespace, state)

    def set_subscription_cloud(self, sub: str, cloud: str) -> None:
        """Service tags in ``sub`` are checked against ``cloud``'s list (``AzureCloud`` by default)."""
        self.state.set_subscription_cloud(sub, cloud)

    def put_policy(
        self, sub: str, rg: str, name: str, body: dict[str, Any], *, validate: bool = True
    ) -> dict[str, Any]:
        return self.state.put_policy(sub, rg, name, body, validate_body=validate)

    def get_policy(self, sub: str, rg: str, name: str) -> dict[str, Any] | None:
        return self.state.find_policy(sub, rg, name)

    def put_rule_collection_group(
        self, sub: str, rg: str, policy: str, name: str, body: dict[str, Any], *, validate: bool = True
    ) -> dict[str, Any]:
        return self.state.put_group(sub, rg, policy, name, body, validate_body=validate)

    def get_rule_collection_group(self, sub: str, rg: str, policy: str, name: str) -> dict[str, Any] | None:
        return self.state.find_group(sub, rg, policy, name)

    def list_rule_collection_groups(self, sub: str, rg: str, policy: str) -> list[dict[str, Any]]:
        return self.state.list_groups(sub, rg, policy)

    def delete_rule_collection_group(self, sub: str, rg: str, policy: str, name: str) -> None:
        self.state.delete_group(sub, rg, policy, name)

    def set_provisioning_state(self, sub: str, rg: str, policy: str, state: str, group: str | None = None) -> None:
        """Force a state, e.g. ``Failed``, or ``Updating`` (then writes to the policy/group get 409 until reset)."""
        self.state.set_provisioning_state(sub, rg, policy, state, group)

    def put_route_table(
        self, sub: str, rg: str, name: str, body: dict[str, Any], *, validate: bool = True
    ) -> dict[str, Any]:
        return self.state.put_route_table(sub, rg, name, body, validate_body=validate)

    def get_route_table(self, sub: str, rg: str, name: str) -> dict[str, Any] | None:
        return self.state.find_route_table(sub, rg, name)

    def put_route(
        self, sub: str, rg: str, table: str, name: str, body: dict[str, Any], *, validate: bool = True
    ) -> dict[str, Any]:
        return self.state.put_route(sub, rg, table, name, body, validate_body=validate)

    def get_route(self, sub: str, rg: str, table: str, name: str) -> dict[str, Any] | None:
        return self.state.find_route(sub, rg, table, name)

    def delete_route(self, sub: str, rg: str, table: str, name: str) -> None:
        self.state.delete_route(sub, rg, table, name)

    def put_ip_group(self, sub: str, rg: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        body_out: dict[str, Any] = self.state.put_ip_group(sub, rg, name, body, seeding=True).body
        return body_out

    def seed_workspace_dependencies(
        self, sub: str, rg: str, workspace: str, body: dict[str, Any] | None = None
    ) -> None:
        """Seed ``outboundNetworkDependenciesEndpoints`` of a workspace (default: the official example)."""
        self.state.seed_workspace_dependencies(sub, rg, workspace, body)

    def seed_examples(self, sub: str = examples.EXAMPLE_SUB, rg: str = examples.EXAMPLE_RG) -> None:
        """The official examples: see ``examples.seed``."""
        examples.seed(self, self.reference, sub, rg)

    # ------------------------------------------------------------------------------------------
    # behaviour control

    def set_operation_duration(self, seconds: float) -> None:
        """Duration of long-running operations started from now on."""
        self.config.op_duration = float(seconds)

    def configure(self, **settings: Any) -> dict[str, Any]:
        """Change behaviour settings at run time; returns them all. Keys: ``op_duration``, ``retry_after``,
        ``policy_settle``, ``sync_validation``, ``honor_if_match``, ``conflict_status``, ``page_size``."""
        with self.state.lock:
            for key, value in settings.items():
                if key not in CONFIGURABLE:
                    raise ValueError(f"unknown setting {key!r}; known: {', '.join(CONFIGURABLE)}")
                kind = CONFIGURABLE[key]
                if kind is bool and not isinstance(value, bool):
                    raise ValueError(f"{key} must be true or false")
                if key == "conflict_status" and value not in (409, 429):
                    raise ValueError("conflict_status must be 409 or 429")
                setattr(self.config, key, kind(value))
            return {key: getattr(self.config, key) for key in CONFIGURABLE}

    def inject(
        self, kind: str, count: int = 1, method: str | None = None, path_contains: str | None = None, **params: Any
    ) -> Fault:
        """Make the next ``count`` matching ARM requests fail. Kinds and their parameters (defaults):

        ``429`` (retry_after=0, code, message), ``409`` (code, message), ``500`` (code, message),
        ``503`` (retry_after=None, code, message), ``reset`` (TCP RST instead of an answer),
        ``lost_response`` (the request is carried out, then the connection is reset instead of answering),
        ``slow`` (seconds=1.0 before answering), ``lro_failed`` (the next matching long-running operation
        ends ``Failed``; code, message), ``throttle_headers`` (value=0 in
        ``x-ms-ratelimit-remaining-subscription-reads|writes|deletes``).
        """
        return self.faults.inject(kind, count, method, path_contains, **params)

    def clear_faults(self) -> None:
        self.faults.clear()

    def set_chaos(self, rate: float, kinds: tuple[str, ...] | None = None, *, seed: int | None = None,
                  path_contains: str | None = None, params: dict[str, dict[str, Any]] | None = None) -> None:
        """Random faults on a fraction ``rate`` of matching ARM requests (see ``FaultInjector.set_chaos``)."""
        if kinds is None:
            self.faults.set_chaos(rate, seed=seed, path_contains=path_contains, params=params)
        else:
            self.faults.set_chaos(rate, kinds, seed=seed, path_contains=path_contains, params=params)

    def start_foreign_writer(
        self,
        sub: str,
        rg: str,
        policy: str,
        hold_seconds: float,
        times: int = 1,
        *,
        interval: float = 0.05,
        group: str | None = None,
        body: dict[str, Any] | None = None,
    ) -> None:
        """Another tool writes to ``policy``: returns once it holds the policy's write lock (see ForeignWriter)."""
        writer = ForeignWriter(
            self.state,
            sub,
            rg,
            policy,
            hold_seconds=hold_seconds,
            times=times,
            interval=interval,
            group=group,
            body=body,
        )
        self._foreign.append(writer)
        writer.start()

    def stop_foreign_writer(self) -> None:
        """Stop every foreign writer; a lock it holds is released at once."""
        while self._foreign:
            self._foreign.pop().stop()

    # ------------------------------------------------------------------------------------------
    # request log

    def requests(self) -> list[RequestRecord]:
        return [
            with_operation_end(record, self.state.operation_end(record.operation_id)) if record.operation_id else record
            for record in self.log.snapshot()
        ]

    def clear_requests(self) -> None:
        self.log.clear()

    def overlapping_writes(self, sub: str, rg: str, policy: str) -> list[tuple[RequestRecord, RequestRecord]]:
        return overlapping_writes(self.requests(), sub, rg, policy)


__all__ = ["ArmError", "Emulator"]
