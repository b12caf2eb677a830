"""The official examples as seed data, with their known defects repaired (never copied into emulator logic).

Known defects (reference/azure-rest-api-specs/2026-03-01/README.md): RCG PUT ``201`` bodies carry the
policy's name and id; etags use two formats; the IpGroups examples write IP-group ids with the segments in
the wrong order (``/providers/Microsoft.Network/resourceGroups/rg1/ipGroups/x``); one RCG id uses
``/ruleGroups/``; the ServiceTagsList ``nextLink`` names api-version 2020-06-01.
"""

from __future__ import annotations

import json
import re
from typing import Any, Protocol

from .reference import ReferenceData

EXAMPLE_SUB = "00000000-0000-0000-0000-000000000000"
EXAMPLE_RG = "rg1"
EXAMPLE_POLICY = "firewallPolicy"

# (version folder, example file, name the group is seeded under). The examples all use
# "ruleCollectionGroup1"; seeding them side by side needs distinct names.
GROUP_EXAMPLES = (
    ("2026-03-01", "FirewallPolicyRuleCollectionGroupPut", "ruleCollectionGroup1"),
    ("2026-01-01", "FirewallPolicyNatRuleCollectionGroupPut", "natRuleCollectionGroup"),
    ("2026-03-01", "FirewallPolicyRuleCollectionGroupWithWebCategoriesPut", "webCategoriesRuleCollectionGroup"),
    ("2025-07-01", "FirewallPolicyRuleCollectionGroupWithIpGroupsPut", "ipGroupsRuleCollectionGroup"),
    ("2025-09-01", "FirewallPolicyRuleCollectionGroupWithHttpHeadersToInsert", "httpHeadersRuleCollectionGroup"),
)
EXAMPLE_IP_GROUPS = ("ipGroups1", "ipGroups2")
EXAMPLE_ROUTE_TABLE = ("2026-03-01", "RouteTableCreateWithRoute")
EXAMPLE_WORKSPACE = "testworkspace"

_BAD_IP_GROUP_ID = re.compile(r"/subscriptions/[^/\"]+/providers/Microsoft\.Network/resourceGroups/[^/\"]+/ipGroups/")


def fix_ip_group_ids(document: Any, sub: str, rg: str) -> Any:
    """Rewrite the examples' malformed IP-group ids into ARM ids in ``sub``/``rg``."""
    text = json.dumps(document)
    fixed = _BAD_IP_GROUP_ID.sub(
        f"/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.Network/ipGroups/", text
    )
    return json.loads(fixed)


def ip_group_body(location: str = "westus") -> dict[str, Any]:
    """IP groups are referenced by the examples but not defined by them; these addresses are invented."""
    return {"location": location, "properties": {"ipAddresses": ["10.0.0.0/24", "10.0.1.4"]}}


class SeedTarget(Protocol):
    def put_policy(self, sub: str, rg: str, name: str, body: dict[str, Any]) -> dict[str, Any]: ...

    def put_ip_group(self, sub: str, rg: str, name: str, body: dict[str, Any]) -> dict[str, Any]: ...

    def put_rule_collection_group(
        self, sub: str, rg: str, policy: str, name: str, body: dict[str, Any]
    ) -> dict[str, Any]: ...

    def put_route_table(self, sub: str, rg: str, name: str, body: dict[str, Any]) -> dict[str, Any]: ...

    def seed_workspace_dependencies(
        self, sub: str, rg: str, workspace: str, body: dict[str, Any] | None = None
    ) -> None: ...

    def add_resource_group(self, sub: str, rg: str, location: str = "westus2") -> dict[str, Any]: ...


def seed(target: SeedTarget, reference: ReferenceData, sub: str = EXAMPLE_SUB, rg: str = EXAMPLE_RG) -> None:
    """The example policy (Premium, DNS proxy on, TLS CA set) with every example rule collection group, the IP
    groups they reference, the example route table and the example workspace's dependencies."""
    target.add_resource_group(sub, rg, "westus")
    policy = reference.example("2026-03-01", "FirewallPolicyPut")["parameters"]["parameters"]
    target.put_policy(sub, rg, EXAMPLE_POLICY, policy)
    for name in EXAMPLE_IP_GROUPS:
        target.put_ip_group(sub, rg, name, ip_group_body())
    for version, example, group in GROUP_EXAMPLES:
        body = fix_ip_group_ids(reference.example(version, example)["parameters"]["parameters"], sub, rg)
        target.put_rule_collection_group(sub, rg, EXAMPLE_POLICY, group, body)
    version, example = EXAMPLE_ROUTE_TABLE
    parameters = reference.example(version, example)["parameters"]
    target.put_route_table(sub, rg, parameters["routeTableName"], parameters["parameters"])
    target.seed_workspace_dependencies(sub, rg, EXAMPLE_WORKSPACE)
