"""Writes: one rule collection group PUT (complete body), routes one by one. Only constructed for apply.

Every write runs with the SDK's own retries off (`retry_total=0`): the caller wraps the whole
write-and-poll in tenacity, so one failure is never retried by two layers.
"""

from __future__ import annotations

from typing import Any

from azure.mgmt.network import models

from reconciler.azure.clients import ArmClients
from reconciler.azure.errors import translated
from reconciler.azure.observe import _wire, observed_group
from reconciler.config import ResourceRef, Target
from reconciler.plan import ObservedGroup


class AzureWriter:
    def __init__(self, target: Target, clients: ArmClients) -> None:
        self.target = target
        self.clients = clients

    def put_group(self, body: dict[str, Any], if_match: str | None) -> ObservedGroup:
        p = self.target.policy
        headers = {"If-Match": if_match} if if_match else {}
        with translated(f"PUT rule collection group {body['name']}"):
            poller = self.clients.network.firewall_policy_rule_collection_groups.begin_create_or_update(
                p.resource_group, p.name, str(body["name"]), models.FirewallPolicyRuleCollectionGroup(body),
                headers=headers, retry_total=0)
            result = poller.result()
            return observed_group(_wire(result))

    def put_route(self, table: ResourceRef, body: dict[str, Any]) -> None:
        with translated(f"PUT route {body['name']}"):
            self.clients.network.routes.begin_create_or_update(
                table.resource_group, table.name, str(body["name"]), models.Route(body), retry_total=0).result()

    def delete_route(self, table: ResourceRef, name: str) -> None:
        with translated(f"DELETE route {name}"):
            self.clients.network.routes.begin_delete(table.resource_group, table.name, name, retry_total=0).result()
