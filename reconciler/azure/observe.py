"""Read the live state of a target through the SDK and return it as frozen model values.

A pass reads the policy (one GET) and its rule collection groups (one LIST, following nextLink); the route
table is one more GET when the target manages routes. Pre-flight facts (resource group, provider
registration, IP groups) are read only before a write, or when the policy is missing.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from azure.core.paging import ItemPaged
from azure.core.rest import HttpRequest

from reconciler.arm import MalformedArm, group_from_arm, route_from_arm
from reconciler.azure.clients import ArmClients, build_clients
from reconciler.azure.errors import translated
from reconciler.config import ResourceRef, Target
from reconciler.deps import parse_dependencies
from reconciler.errors import AzureError, BadResponseError, NotFoundError
from reconciler.execute import GroupRead
from reconciler.plan import ObservedGroup, ObservedPolicy

DEPENDENCIES_API_VERSION = "2024-04-01"
# A policy holds at most 100 groups (Azure's limit for new policies) and every page holds at least one, so a
# LIST that goes on longer than this is a service fault, not a big policy.
MAX_PAGES = 200


def all_pages(paged: ItemPaged[Any], what: str) -> list[Any]:
    """Every item of a paged LIST, following nextLink, but stopping with BadResponseError on a link seen before
    (a nextLink pointing at itself once gave 5,113 GETs) or after MAX_PAGES pages."""
    pages = paged.by_page()
    seen: set[str] = set()
    items: list[Any] = []
    for count, page in enumerate(pages, start=1):
        items.extend(page)
        link = pages.continuation_token  # type: ignore[attr-defined]
        if not link:
            break
        if link in seen:
            raise BadResponseError(f"{what}: the service repeated a nextLink after {count} pages; stopped", url=link)
        seen.add(link)
        if count >= MAX_PAGES:
            raise BadResponseError(f"{what}: more than {MAX_PAGES} pages; stopped", url=link)
    return items


def _wire(model: Any) -> dict[str, Any]:
    """SDK model -> wire JSON (camelCase), the only shape that leaves this package. Raises MalformedArm (a
    ValueError, which `translated` turns into a BadResponseError) when the answer is not an object."""
    as_dict = getattr(model, "as_dict", None)
    data = as_dict() if callable(as_dict) else model
    if not isinstance(data, dict):
        raise MalformedArm(f"expected an object, got {type(data).__name__ if data is not None else 'nothing'}")
    return data


def _props(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    props = raw.get("properties")
    if props is None:
        return {}
    if not isinstance(props, Mapping):
        raise MalformedArm(f"properties: expected an object, got {type(props).__name__}")
    return props


def observed_group(raw: Mapping[str, Any], etag_header: str | None = None) -> ObservedGroup:
    props = _props(raw)
    return ObservedGroup(
        group=group_from_arm(raw),
        etag=str(raw.get("etag") or etag_header or "") or None,
        provisioning_state=str(props.get("provisioningState")) if props.get("provisioningState") else None,
        size=str(props.get("size")) if props.get("size") else None,
    )


def _sub(props: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = props.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise MalformedArm(f"properties.{key}: expected an object, got {type(value).__name__}")
    return value


class AzureReader:
    """Reads for one target. Never writes."""

    def __init__(self, target: Target, clients: ArmClients) -> None:
        self.target = target
        self.clients = clients
        self.policy = target.policy
        self._tag_names: dict[str, frozenset[str]] = {}  # per pass: one reader per pass

    def observe(self) -> ObservedPolicy:
        t, p = self.target, self.policy
        net = self.clients.network
        try:
            with translated(f"GET firewall policy {p.name}"):
                policy = _wire(net.firewall_policies.get(p.resource_group, p.name))
                props = _props(policy)
                sku, dns, transport = (_sub(props, k) for k in ("sku", "dnsSettings", "transportSecurity"))
        except NotFoundError:
            rg_exists, provider = self.account_facts()
            return ObservedPolicy(exists=False, resource_group_exists=rg_exists, network_provider_state=provider)
        with translated(f"LIST rule collection groups of {p.name}"):
            what = f"LIST rule collection groups of {p.name}"
            groups = [observed_group(_wire(g)) for g in
                      all_pages(net.firewall_policy_rule_collection_groups.list(p.resource_group, p.name), what)]
        owned = next((g for g in groups if g.group.name.lower() == t.group_name.lower()), None)
        foreign = tuple(g for g in groups if g is not owned)
        routes = None
        route_table_exists = None
        if t.route_table is not None:
            routes, route_table_exists = self.observe_routes(t.route_table)
        return ObservedPolicy(
            exists=True,
            tier=str(sku.get("tier") or "Standard"),
            dns_proxy=bool(dns.get("enableProxy") or False),
            tls_inspection=bool((transport.get("certificateAuthority") or {}).get("keyVaultSecretId")
                                or transport.get("certificateAuthority")),
            provisioning_state=str(props.get("provisioningState")) if props.get("provisioningState") else None,
            etag=str(policy.get("etag")) if policy.get("etag") else None,
            owned=owned,
            foreign=foreign,
            group_count=len(groups),
            routes=routes,
            route_table_exists=route_table_exists,
        )

    def observe_routes(self, table: ResourceRef) -> tuple[tuple[Any, ...] | None, bool]:
        try:
            with translated(f"GET route table {table.name}"):
                rt = _wire(self.clients.network.route_tables.get(table.resource_group, table.name))
                routes = _props(rt).get("routes") or []
                if not isinstance(routes, list):
                    raise MalformedArm(f"properties.routes: expected a list, got {type(routes).__name__}")
                return tuple(sorted((route_from_arm(r) for r in routes), key=lambda r: r.name)), True
        except NotFoundError:
            return None, False

    def get_group(self) -> ObservedGroup | None:
        p = self.policy
        try:
            with translated(f"GET rule collection group {self.target.group_name}"):
                raw = self.clients.network.firewall_policy_rule_collection_groups.get(
                    p.resource_group, p.name, self.target.group_name)
                return observed_group(_wire(raw))
        except NotFoundError:
            return None

    def read_group(self) -> GroupRead:
        """The owned group as the wire JSON Azure sent (for byte-level comparisons) and as the model."""
        p = self.policy

        def raw_json(pipeline_response: Any, _deserialized: Any, _headers: Any) -> Any:
            try:
                return json.loads(pipeline_response.http_response.text())
            except ValueError:
                return None

        try:
            with translated(f"GET rule collection group {self.target.group_name}"):
                raw = self.clients.network.firewall_policy_rule_collection_groups.get(
                    p.resource_group, p.name, self.target.group_name, cls=raw_json)
        except NotFoundError:
            return GroupRead(None, None)
        if not isinstance(raw, dict):
            raise AzureError(f"GET rule collection group {self.target.group_name}: the answer is not a JSON object")
        return GroupRead(observed_group(raw), raw)

    def policy_state(self) -> str | None:
        p = self.policy
        with translated(f"GET firewall policy {p.name}"):
            policy = _wire(self.clients.network.firewall_policies.get(p.resource_group, p.name))
            state = _props(policy).get("provisioningState")
        return str(state) if state else None

    def account_facts(self) -> tuple[bool, str | None]:
        """Does the policy's resource group exist, and is Microsoft.Network registered?"""
        res = self.clients.resources
        try:  # a GET, not check_existence's HEAD: a dry-run sends nothing but GETs
            with translated(f"GET resource group {self.policy.resource_group}"):
                res.resource_groups.get(self.policy.resource_group)
            rg_exists = True
        except NotFoundError:
            rg_exists = False
        with translated("GET provider Microsoft.Network"):
            provider = _wire(res.providers.get("Microsoft.Network"))
            state = provider.get("registrationState")
        return rg_exists, str(state) if state else None

    def service_tag_names(self, region: str) -> frozenset[str]:
        """The tag names the Service Tags API serves for `region` (one GET, cached for the pass)."""
        key = region.lower()
        if key not in self._tag_names:
            with translated(f"GET service tags for {region}"):
                result = _wire(self.clients.network.service_tags.list(region))
            self._tag_names[key] = frozenset(str(v["name"]) for v in result.get("values") or [] if v.get("name"))
        return self._tag_names[key]

    def missing_ip_groups(self, ids: Iterable[str]) -> tuple[str, ...]:
        missing = []
        for rid in sorted(set(ids)):
            parts = rid.split("/")
            sub, rg, name = parts[2], parts[4], parts[-1]
            try:
                with translated(f"GET IP group {name}"):
                    if sub.lower() == self.target.subscription_id.lower():
                        self.clients.network.ip_groups.get(rg, name)
                    else:
                        with build_clients(self.target, sub) as other:
                            other.network.ip_groups.get(rg, name)
            except NotFoundError:
                missing.append(rid)
        return tuple(missing)

    def workspace_dependencies(self, subscription_id: str, resource_group: str, workspace: str) -> Any:
        """The workspace's own outbound dependency list (Azure ML's outboundNetworkDependenciesEndpoints)."""
        url = (f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}/providers/"
               f"Microsoft.MachineLearningServices/workspaces/{workspace}/outboundNetworkDependenciesEndpoints"
               f"?api-version={DEPENDENCIES_API_VERSION}")
        with translated(f"GET outbound dependencies of workspace {workspace}"):
            response = self.clients.network.send_request(HttpRequest("GET", url))
            response.raise_for_status()
            body = response.json()
            parse_dependencies(body)  # a malformed answer fails here, where the error can name the response
            return body
