"""The admin API: JSON over the emulator's own HTTPS port, under ``/_admin/``, mirroring the Python API.

Not ARM: no token needed, no api-version, and never written to the ARM request log. ``AdminClient`` in
``admin.py`` is its client. Resource bodies are sent as the request body; options go in the query
(``?validate=false``). A GET of a missing resource answers 404.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .errors import ArmError

if TYPE_CHECKING:
    from .api import Emulator

Result = tuple[int, Any]
Params = tuple[str, ...]
OK: Result = (200, {"ok": True})
_SEG = "([^/]+)"


def _found(value: Any) -> Result:
    return (200, value) if value is not None else (404, {"error": {"code": "NotFound", "message": "Not found."}})


def _validate(query: dict[str, str]) -> bool:
    return query.get("validate", "true").lower() != "false"


class Control:
    def __init__(self, emulator: Emulator) -> None:
        self._emu = emulator
        table: list[tuple[str, str, Callable[[Params, dict[str, str], Any], Result]]] = [
            ("GET", "health", lambda p, q, b: OK),
            ("GET", "env", lambda p, q, b: (200, emulator.env())),
            ("POST", f"resource-groups/{_SEG}/{_SEG}", self._resource_group),
            ("POST", f"providers/{_SEG}/{_SEG}", self._provider),
            ("POST", f"policies/{_SEG}/{_SEG}/{_SEG}", self._put_policy),
            ("PUT", f"policies/{_SEG}/{_SEG}/{_SEG}", self._put_policy),
            ("GET", f"policies/{_SEG}/{_SEG}/{_SEG}", self._get_policy),
            ("GET", f"rule-collection-groups/{_SEG}/{_SEG}/{_SEG}", self._list_groups),
            ("GET", f"rule-collection-groups/{_SEG}/{_SEG}/{_SEG}/{_SEG}", self._get_group),
            ("PUT", f"rule-collection-groups/{_SEG}/{_SEG}/{_SEG}/{_SEG}", self._put_group),
            ("DELETE", f"rule-collection-groups/{_SEG}/{_SEG}/{_SEG}/{_SEG}", self._delete_group),
            ("POST", "provisioning-state", self._provisioning_state),
            ("GET", f"route-tables/{_SEG}/{_SEG}/{_SEG}", self._get_route_table),
            ("PUT", f"route-tables/{_SEG}/{_SEG}/{_SEG}", self._put_route_table),
            ("GET", f"routes/{_SEG}/{_SEG}/{_SEG}/{_SEG}", self._get_route),
            ("PUT", f"routes/{_SEG}/{_SEG}/{_SEG}/{_SEG}", self._put_route),
            ("DELETE", f"routes/{_SEG}/{_SEG}/{_SEG}/{_SEG}", self._delete_route),
            ("PUT", f"ip-groups/{_SEG}/{_SEG}/{_SEG}", self._put_ip_group),
            ("POST", f"workspaces/{_SEG}/{_SEG}/{_SEG}/dependencies", self._workspace),
            ("POST", "seed-examples", self._seed_examples),
            ("POST", "operation-duration", self._operation_duration),
            ("POST", "config", lambda p, q, b: (200, emulator.configure(**(b or {})))),
            ("GET", "config", lambda p, q, b: (200, emulator.configure())),
            ("POST", "inject", self._inject),
            ("GET", "inject", lambda p, q, b: (200, [fault.to_json() for fault in emulator.faults.pending()])),
            ("DELETE", "inject", self._clear_faults),
            ("POST", "foreign-writer", self._start_foreign_writer),
            ("DELETE", "foreign-writer", self._stop_foreign_writer),
            ("GET", "requests", lambda p, q, b: (200, [record.to_json() for record in emulator.requests()])),
            ("POST", "reset-requests", self._clear_requests),
            ("GET", f"overlapping-writes/{_SEG}/{_SEG}/{_SEG}", self._overlapping_writes),
        ]
        self._routes = [(method, re.compile(f"^{pattern}/?$"), handler) for method, pattern, handler in table]

    def handle(self, method: str, path: str, query: dict[str, str], body: bytes) -> Result:
        try:
            payload = json.loads(body) if body else None
        except ValueError:
            return 400, {"error": {"code": "BadAdminRequest", "message": "The body is not JSON."}}
        for route_method, pattern, handler in self._routes:
            match = pattern.match(path)
            if match and route_method == method:
                try:
                    return handler(match.groups(), query, payload)
                except ArmError as error:
                    return error.status, error.body()
                except (KeyError, TypeError, ValueError, TimeoutError) as error:
                    return 400, {"error": {"code": "BadAdminRequest", "message": f"{type(error).__name__}: {error}"}}
        return 404, {"error": {"code": "NotFound", "message": f"No admin route {method} /_admin/{path}"}}

    # ------------------------------------------------------------------------------------------

    def _resource_group(self, p: Params, q: dict[str, str], body: Any) -> Result:
        sub, rg = p
        return 200, self._emu.add_resource_group(sub, rg, (body or {}).get("location", "westus2"))

    def _provider(self, p: Params, q: dict[str, str], body: Any) -> Result:
        sub, namespace = p
        self._emu.register_provider(sub, namespace, (body or {}).get("state", "Registered"))
        return OK

    def _put_policy(self, p: Params, q: dict[str, str], body: Any) -> Result:
        sub, rg, name = p
        return 200, self._emu.put_policy(sub, rg, name, body, validate=_validate(q))

    def _get_policy(self, p: Params, q: dict[str, str], body: Any) -> Result:
        sub, rg, name = p
        return _found(self._emu.get_policy(sub, rg, name))

    def _list_groups(self, p: Params, q: dict[str, str], body: Any) -> Result:
        sub, rg, policy = p
        return 200, self._emu.list_rule_collection_groups(sub, rg, policy)

    def _get_group(self, p: Params, q: dict[str, str], body: Any) -> Result:
        sub, rg, policy, name = p
        return _found(self._emu.get_rule_collection_group(sub, rg, policy, name))

    def _put_group(self, p: Params, q: dict[str, str], body: Any) -> Result:
        sub, rg, policy, name = p
        return 200, self._emu.put_rule_collection_group(sub, rg, policy, name, body, validate=_validate(q))

    def _delete_group(self, p: Params, q: dict[str, str], body: Any) -> Result:
        sub, rg, policy, name = p
        self._emu.delete_rule_collection_group(sub, rg, policy, name)
        return OK

    def _provisioning_state(self, p: Params, q: dict[str, str], body: Any) -> Result:
        self._emu.set_provisioning_state(body["sub"], body["rg"], body["policy"], body["state"], body.get("group"))
        return OK

    def _get_route_table(self, p: Params, q: dict[str, str], body: Any) -> Result:
        sub, rg, name = p
        return _found(self._emu.get_route_table(sub, rg, name))

    def _put_route_table(self, p: Params, q: dict[str, str], body: Any) -> Result:
        sub, rg, name = p
        return 200, self._emu.put_route_table(sub, rg, name, body, validate=_validate(q))

    def _get_route(self, p: Params, q: dict[str, str], body: Any) -> Result:
        sub, rg, table, name = p
        return _found(self._emu.get_route(sub, rg, table, name))

    def _put_route(self, p: Params, q: dict[str, str], body: Any) -> Result:
        sub, rg, table, name = p
        return 200, self._emu.put_route(sub, rg, table, name, body, validate=_validate(q))

    def _delete_route(self, p: Params, q: dict[str, str], body: Any) -> Result:
        sub, rg, table, name = p
        self._emu.delete_route(sub, rg, table, name)
        return OK

    def _put_ip_group(self, p: Params, q: dict[str, str], body: Any) -> Result:
        sub, rg, name = p
        return 200, self._emu.put_ip_group(sub, rg, name, body)

    def _workspace(self, p: Params, q: dict[str, str], body: Any) -> Result:
        sub, rg, workspace = p
        self._emu.seed_workspace_dependencies(sub, rg, workspace, body)
        return OK

    def _seed_examples(self, p: Params, q: dict[str, str], body: Any) -> Result:
        self._emu.seed_examples(**(body or {}))
        return OK

    def _operation_duration(self, p: Params, q: dict[str, str], body: Any) -> Result:
        self._emu.set_operation_duration(body["seconds"])
        return OK

    def _inject(self, p: Params, q: dict[str, str], body: Any) -> Result:
        options = dict(body)
        params = options.pop("params", None) or {}
        return 200, self._emu.inject(**options, **params).to_json()

    def _clear_faults(self, p: Params, q: dict[str, str], body: Any) -> Result:
        self._emu.clear_faults()
        return OK

    def _start_foreign_writer(self, p: Params, q: dict[str, str], body: Any) -> Result:
        self._emu.start_foreign_writer(**body)
        return OK

    def _stop_foreign_writer(self, p: Params, q: dict[str, str], body: Any) -> Result:
        self._emu.stop_foreign_writer()
        return OK

    def _clear_requests(self, p: Params, q: dict[str, str], body: Any) -> Result:
        self._emu.clear_requests()
        return OK

    def _overlapping_writes(self, p: Params, q: dict[str, str], body: Any) -> Result:
        sub, rg, policy = p
        return 200, [
            [first.to_json(), second.to_json()] for first, second in self._emu.overlapping_writes(sub, rg, policy)
        ]
