"""``AdminClient``: drive an emulator in another process through its ``/_admin/`` API (stdlib only).

It verifies the emulator's certificate against the CA bundle the emulator published; nothing disables TLS
verification. Method names and arguments mirror ``Emulator``.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .errors import ArmError
from .requestlog import RequestRecord


class AdminClient:
    def __init__(self, base_url: str, ca_bundle: str, *, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._context = ssl.create_default_context(cafile=ca_bundle)
        self._timeout = timeout

    @classmethod
    def from_state_dir(cls, state_dir: str | Path) -> AdminClient:
        """Connect to the emulator that ``python -m tests.emulator --state-dir DIR`` started."""
        info = json.loads((Path(state_dir) / "emulator.json").read_text("utf-8"))
        return cls(info["base_url"], info["ca_bundle"])

    def _call(self, method: str, path: str, body: Any = None, *, query: str = "") -> Any:
        """Send one admin request; a GET of a missing resource gives None, other errors raise ``ArmError``."""
        url = f"{self.base_url}/_admin/{path}{query}"
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, context=self._context, timeout=self._timeout) as response:
                status, payload = response.status, response.read()
        except urllib.error.HTTPError as error:
            with error:
                status, payload = error.code, error.read()
        result = json.loads(payload) if payload else None
        if status == 404 and method == "GET" and path.split("/")[0] in _GETTABLE:
            return None
        if status >= 400:
            error_body = (result or {}).get("error", {})
            raise ArmError(status, error_body.get("code", "Error"), error_body.get("message", ""))
        return result

    @staticmethod
    def _path(*parts: str) -> str:
        return "/".join(quote(part, safe="") for part in parts)

    @staticmethod
    def _validate(validate: bool) -> str:
        return "" if validate else "?validate=false"

    # lifecycle-ish
    def health(self) -> bool:
        return bool(self._call("GET", "health")["ok"])

    def env(self) -> dict[str, str]:
        result: dict[str, str] = self._call("GET", "env")
        return result

    # seeding and direct state access
    def add_resource_group(self, sub: str, rg: str, location: str = "westus2") -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "resource-groups/" + self._path(sub, rg), {"location": location})
        return result

    def register_provider(self, sub: str, namespace: str, state: str = "Registered") -> None:
        self._call("POST", "providers/" + self._path(sub, namespace), {"state": state})

    def put_policy(
        self, sub: str, rg: str, name: str, body: dict[str, Any], *, validate: bool = True
    ) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "POST", "policies/" + self._path(sub, rg, name), body, query=self._validate(validate)
        )
        return result

    def get_policy(self, sub: str, rg: str, name: str) -> dict[str, Any] | None:
        result: dict[str, Any] | None = self._call("GET", "policies/" + self._path(sub, rg, name))
        return result

    def put_rule_collection_group(
        self, sub: str, rg: str, policy: str, name: str, body: dict[str, Any], *, validate: bool = True
    ) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "PUT", "rule-collection-groups/" + self._path(sub, rg, policy, name), body, query=self._validate(validate)
        )
        return result

    def get_rule_collection_group(self, sub: str, rg: str, policy: str, name: str) -> dict[str, Any] | None:
        result: dict[str, Any] | None = self._call("GET", "rule-collection-groups/" + self._path(sub, rg, policy, name))
        return result

    def list_rule_collection_groups(self, sub: str, rg: str, policy: str) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self._call("GET", "rule-collection-groups/" + self._path(sub, rg, policy))
        return result

    def delete_rule_collection_group(self, sub: str, rg: str, policy: str, name: str) -> None:
        self._call("DELETE", "rule-collection-groups/" + self._path(sub, rg, policy, name))

    def set_provisioning_state(self, sub: str, rg: str, policy: str, state: str, group: str | None = None) -> None:
        self._call(
            "POST", "provisioning-state", {"sub": sub, "rg": rg, "policy": policy, "state": state, "group": group}
        )

    def put_route_table(
        self, sub: str, rg: str, name: str, body: dict[str, Any], *, validate: bool = True
    ) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "PUT", "route-tables/" + self._path(sub, rg, name), body, query=self._validate(validate)
        )
        return result

    def get_route_table(self, sub: str, rg: str, name: str) -> dict[str, Any] | None:
        result: dict[str, Any] | None = self._call("GET", "route-tables/" + self._path(sub, rg, name))
        return result

    def put_route(
        self, sub: str, rg: str, table: str, name: str, body: dict[str, Any], *, validate: bool = True
    ) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "PUT", "routes/" + self._path(sub, rg, table, name), body, query=self._validate(validate)
        )
        return result

    def get_route(self, sub: str, rg: str, table: str, name: str) -> dict[str, Any] | None:
        result: dict[str, Any] | None = self._call("GET", "routes/" + self._path(sub, rg, table, name))
        return result

    def delete_route(self, sub: str, rg: str, table: str, name: str) -> None:
        self._call("DELETE", "routes/" + self._path(sub, rg, table, name))

    def put_ip_group(self, sub: str, rg: str, name: str, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = self._call("PUT", "ip-groups/" + self._path(sub, rg, name), body)
        return result

    def seed_workspace_dependencies(
        self, sub: str, rg: str, workspace: str, body: dict[str, Any] | None = None
    ) -> None:
        self._call("POST", "workspaces/" + self._path(sub, rg, workspace) + "/dependencies", body)

    def seed_examples(self, sub: str | None = None, rg: str | None = None) -> None:
        self._call("POST", "seed-examples", {k: v for k, v in {"sub": sub, "rg": rg}.items() if v is not None})

    # behaviour control
    def set_operation_duration(self, seconds: float) -> None:
        self._call("POST", "operation-duration", {"seconds": seconds})

    def configure(self, **settings: Any) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", "config", settings)
        return result

    def inject(
        self, kind: str, count: int = 1, method: str | None = None, path_contains: str | None = None, **params: Any
    ) -> dict[str, Any]:
        result: dict[str, Any] = self._call(
            "POST",
            "inject",
            {"kind": kind, "count": count, "method": method, "path_contains": path_contains, "params": params},
        )
        return result

    def clear_faults(self) -> None:
        self._call("DELETE", "inject")

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
        self._call(
            "POST",
            "foreign-writer",
            {
                "sub": sub,
                "rg": rg,
                "policy": policy,
                "hold_seconds": hold_seconds,
                "times": times,
                "interval": interval,
                "group": group,
                "body": body,
            },
        )

    def stop_foreign_writer(self) -> None:
        self._call("DELETE", "foreign-writer")

    # request log
    def requests(self) -> list[RequestRecord]:
        return [RequestRecord.from_json(item) for item in self._call("GET", "requests")]

    def clear_requests(self) -> None:
        self._call("POST", "reset-requests")

    def overlapping_writes(self, sub: str, rg: str, policy: str) -> list[tuple[RequestRecord, RequestRecord]]:
        pairs = self._call("GET", "overlapping-writes/" + self._path(sub, rg, policy))
        return [(RequestRecord.from_json(a), RequestRecord.from_json(b)) for a, b in pairs]


_GETTABLE = frozenset({"policies", "rule-collection-groups", "route-tables", "routes"})
