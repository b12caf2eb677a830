"""Writes: one rule collection group PUT (complete body), routes one by one. Only constructed for apply.

A group write is split in two so that the caller can treat them differently (reconciler.execute):

- `start_group_put` sends the PUT once, with the SDK's retries off (`retry_total=0`): a PUT is never
  re-sent by a lower layer. It carries `If-Match` (update) or `If-None-Match: *` (create) and returns the
  operation's status URL (`Azure-AsyncOperation`, else `Location`) and `Retry-After`.
- `poll_group_put` GETs that URL once, through the client's normal retry policy (resets, 5xx, 429 with
  Retry-After are retried by azure-core); the caller polls again on its own when that fails too. Polling
  never re-sends the PUT. A status URL on another origin than the ARM endpoint is refused, unsent.

Route writes are sent the same way (once, `polling=False`) and polled here, failed polls polled again.
"""

from __future__ import annotations

import json
import time
from typing import Any, cast

from azure.core.pipeline import PipelineResponse
from azure.core.rest import HttpRequest
from azure.mgmt.network import models

from reconciler.azure.clients import ArmClients, endpoint_and_scope
from reconciler.azure.errors import translated
from reconciler.config import ResourceRef, Target, url_origin
from reconciler.errors import (
    AzureError,
    BadResponseError,
    ForeignUrlError,
    OperationFailedError,
    TransientAzureError,
    WriteTimeoutError,
)
from reconciler.execute import PollResult, WriteOperation

POLL_FAILURES = 20  # consecutive failed polls of a route operation before its outcome counts as unknown


def _delay(headers: Any) -> float | None:
    for name, scale in (("retry-after-ms", 0.001), ("x-ms-retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                continue
    return None


class AzureWriter:
    def __init__(self, target: Target, clients: ArmClients) -> None:
        self.target = target
        self.clients = clients
        self.base_url = endpoint_and_scope(target)[0]

    def start_group_put(self, body: dict[str, Any], *, if_match: str | None,
                        if_none_match: str | None) -> WriteOperation:
        p = self.target.policy
        headers = {"If-Match": if_match} if if_match else {}
        if if_none_match:
            headers["If-None-Match"] = if_none_match
        name = str(body["name"])
        action = f"PUT rule collection group {name}"

        def keep(pipeline_response: PipelineResponse[Any, Any], _deserialized: Any, _headers: Any) -> Any:
            return pipeline_response

        with translated(action):
            poller = self.clients.network.firewall_policy_rule_collection_groups.begin_create_or_update(
                p.resource_group, p.name, name, models.FirewallPolicyRuleCollectionGroup(body),
                headers=headers, retry_total=0, polling=False, cls=keep)
            response = poller.result().http_response
        url = response.headers.get("Azure-AsyncOperation") or response.headers.get("Location")
        text = response.text() or ""
        try:
            doc = json.loads(text) if text.strip() else None
        except ValueError:
            doc = None
        malformed = not isinstance(doc, dict) or not isinstance(doc.get("properties", {}), dict)
        if int(response.status_code) in (200, 201) and malformed:
            # ARM answers a group PUT with the group; anything else is malformed (no read-back then)
            raise BadResponseError(f"{action}: the answer is not a rule collection group (no JSON object)",
                                   url=str(getattr(response.request, "url", "") or ""),
                                   status=int(response.status_code), body=text,
                                   request_id=response.headers.get("x-ms-request-id"))
        properties = doc.get("properties") if isinstance(doc, dict) else None
        state = properties.get("provisioningState") if isinstance(properties, dict) else None
        done = not url and str(state or "Succeeded").lower() == "succeeded"
        if url:
            self._check_origin(str(url), action)
        return WriteOperation(action=action, status=int(response.status_code), url=str(url) if url else None,
                              retry_after=_delay(response.headers), done=done,
                              request_id=response.headers.get("x-ms-request-id"))

    def _check_origin(self, url: str, action: str) -> None:
        if url_origin(url) is None or url_origin(url) != url_origin(self.base_url):
            raise ForeignUrlError(f"{action}: the operation status URL is off the Resource Manager origin "
                                  f"{self.base_url} (not requested, no token sent)", url=url)

    def poll_group_put(self, operation: WriteOperation) -> PollResult:
        assert operation.url is not None
        self._check_origin(operation.url, operation.action)
        with translated(f"{operation.action}: poll"):
            response = self.clients.network.send_request(HttpRequest("GET", operation.url))
            response.raise_for_status()
        delay = _delay(response.headers)
        if response.status_code == 202:
            return PollResult("InProgress", delay)
        if response.status_code == 204:
            return PollResult("Succeeded", delay)
        try:
            doc = response.json()
        except ValueError:
            doc = None
        if not isinstance(doc, dict):
            raise AzureError(f"{operation.action}: poll: the status answer is not a JSON object "
                             f"(status {response.status_code})", status=response.status_code)
        status = str(doc.get("status") or (doc.get("properties") or {}).get("provisioningState") or "")
        if status.lower() in ("failed", "canceled", "cancelled"):
            found = doc.get("error")
            err: dict[str, Any] = found if isinstance(found, dict) else {}
            raise OperationFailedError(
                f"{operation.action}: the long-running operation ended {status}: "
                f"{str(err.get('message') or '')[:300]}", status=response.status_code,
                code=str(err.get("code")) if err.get("code") else None,
                request_id=operation.request_id)
        if status.lower() == "succeeded":
            return PollResult("Succeeded", delay)
        return PollResult("InProgress", delay)

    def put_route(self, table: ResourceRef, body: dict[str, Any]) -> None:
        action = f"PUT route {body['name']}"
        with translated(action):
            poller = self.clients.network.routes.begin_create_or_update(
                table.resource_group, table.name, str(body["name"]), models.Route(body), retry_total=0,
                polling=False, cls=_keep)
            response = poller.result().http_response
        self._await(self._operation(action, response))

    def delete_route(self, table: ResourceRef, name: str) -> None:
        action = f"DELETE route {name}"
        with translated(action):
            poller = self.clients.network.routes.begin_delete(
                table.resource_group, table.name, name, retry_total=0, polling=False, cls=_keep)
            response = cast(Any, poller.result()).http_response
        self._await(self._operation(action, response))

    def _operation(self, action: str, response: Any) -> WriteOperation:
        url = response.headers.get("Azure-AsyncOperation") or response.headers.get("Location")
        if url:
            self._check_origin(str(url), action)
        return WriteOperation(action=action, status=int(response.status_code), url=str(url) if url else None,
                              retry_after=_delay(response.headers), done=not url,
                              request_id=response.headers.get("x-ms-request-id"))

    def _await(self, operation: WriteOperation) -> None:
        """Poll a route operation to its end: failed polls are polled again (never re-sent), within
        write_timeout. (Group writes are polled by reconciler.execute, which also checks the lease.)"""
        if operation.done:
            return
        deadline = time.monotonic() + self.target.azure.write_timeout
        delay, failures = operation.retry_after, 0
        while True:
            wait = delay if delay is not None else self.target.azure.polling_interval
            if time.monotonic() + wait > deadline:
                raise WriteTimeoutError(f"{operation.action}: polling its operation ran past write_timeout")
            time.sleep(wait)
            try:
                polled = self.poll_group_put(operation)
            except OperationFailedError:
                raise
            except TransientAzureError as exc:
                failures += 1
                if failures > POLL_FAILURES:
                    raise TransientAzureError(f"{operation.action}: lost track of the operation: {exc}") from exc
                delay = max(float(exc.retry_after or 0.0), min(30.0, 0.5 * 2 ** failures))
                continue
            if polled.status.lower() == "succeeded":
                return
            delay, failures = polled.retry_after, 0


def _keep(pipeline_response: PipelineResponse[Any, Any], _deserialized: Any, _headers: Any) -> Any:
    return pipeline_response
