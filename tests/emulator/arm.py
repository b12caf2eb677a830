"""ARM URL routing: the official URL shapes, api-version checks, paging, bodies -> ``ArmState`` calls.

Path segments are matched case-insensitively, as ARM does (``resourceGroups`` == ``resourcegroups``).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from .errors import ArmError, bad_request
from .identity import TENANT_ID
from .reference import load_json
from .state import ArmState, Reply

NETWORK_API_VERSIONS = ("2026-03-01", "2026-01-01")  # azure-mgmt-network 33.1.0 / 33.0.0
# azure-mgmt-resource 26.0.0 sends 2025-04-01 (resource_groups.get/check_existence, providers.get); the older
# versions are what earlier 23.x-25.x releases send (assumed), since pyproject allows >=23,<27.
# the subscriptions list the Azure CLI (azure-mgmt-resource's SubscriptionClient) reads at `az login`
SUBSCRIPTIONS_API_VERSIONS = ("2022-12-01", "2021-01-01", "2020-01-01", "2019-11-01", "2016-06-01")
RESOURCES_API_VERSIONS = (
    "2025-04-01",
    "2024-11-01",
    "2024-07-01",
    "2024-03-01",
    "2023-07-01",
    "2022-09-01",
    "2021-04-01",
)
ML_API_VERSIONS = ("2024-04-01",)
MODELLED_NETWORK_TYPES = (
    "firewallPolicies",
    "firewallPolicies/ruleCollectionGroups",
    "routeTables",
    "routeTables/routes",
    "ipGroups",
    "locations/serviceTags",
    "locations/operations",
    "locations/operationResults",
)

_API_VERSION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(-preview)?$")
_SEG = r"([^/]+)"
_SUB = rf"/subscriptions/{_SEG}"
_RG = rf"{_SUB}/resourcegroups/{_SEG}"
_NET = rf"{_RG}/providers/microsoft\.network"
_NET_SUB = rf"{_SUB}/providers/microsoft\.network"


@dataclass(frozen=True)
class ArmRequest:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes

    @property
    def api_version(self) -> str:
        return self.query["api-version"]

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            raise bad_request("InvalidRequestFormat", "Cannot parse the request.") from None


Params = tuple[str, ...]
Handler = Callable[[ArmRequest, Params], Reply]


def _write_args(request: ArmRequest) -> dict[str, Any]:
    return {"api_version": request.api_version, "path": request.path, "if_match": request.headers.get("if-match")}


@dataclass(frozen=True)
class Route:
    pattern: re.Pattern[str]
    methods: dict[str, Handler]
    api_versions: tuple[str, ...]
    type_name: str


class ArmRouter:
    def __init__(self, state: ArmState) -> None:
        self.state = state
        self._tags_lock = threading.Lock()
        self._tag_docs: dict[str, dict[str, Any]] = {}
        net, res, ml = NETWORK_API_VERSIONS, RESOURCES_API_VERSIONS, ML_API_VERSIONS
        policy, group = "firewallPolicies", "firewallPolicies/ruleCollectionGroups"
        self.routes = [
            self._route("/subscriptions", SUBSCRIPTIONS_API_VERSIONS, "subscriptions", GET=self._list_subscriptions),
            self._route(_RG, res, "resourceGroups", GET=self._get_resource_group, HEAD=self._head_resource_group),
            self._route(rf"{_SUB}/providers/{_SEG}", res, "providers", GET=self._provider),
            self._route(
                rf"{_NET_SUB}/locations/{_SEG}/servicetags", net, "locations/serviceTags", GET=self._service_tags
            ),
            self._route(
                rf"{_NET_SUB}/locations/{_SEG}/operations/{_SEG}", net, "locations/operations", GET=self._operation
            ),
            self._route(
                rf"{_NET_SUB}/locations/{_SEG}/operationresults/{_SEG}",
                net,
                "locations/operationResults",
                GET=self._operation_result,
            ),
            self._route(rf"{_NET_SUB}/firewallpolicies", net, policy, GET=self._list_all_policies),
            self._route(rf"{_NET}/firewallpolicies", net, policy, GET=self._list_policies),
            self._route(rf"{_NET}/firewallpolicies/{_SEG}", net, policy, GET=self._get_policy, PUT=self._put_policy),
            self._route(rf"{_NET}/firewallpolicies/{_SEG}/rulecollectiongroups", net, group, GET=self._list_groups),
            self._route(
                rf"{_NET}/firewallpolicies/{_SEG}/rulecollectiongroups/{_SEG}",
                net,
                group,
                GET=self._get_group,
                PUT=self._put_group,
                DELETE=self._delete_group,
            ),
            self._route(rf"{_NET_SUB}/routetables", net, "routeTables", GET=self._list_all_route_tables),
            self._route(rf"{_NET}/routetables", net, "routeTables", GET=self._list_route_tables),
            self._route(
                rf"{_NET}/routetables/{_SEG}", net, "routeTables", GET=self._get_route_table, PUT=self._put_route_table
            ),
            self._route(rf"{_NET}/routetables/{_SEG}/routes", net, "routeTables/routes", GET=self._list_routes),
            self._route(
                rf"{_NET}/routetables/{_SEG}/routes/{_SEG}",
                net,
                "routeTables/routes",
                GET=self._get_route,
                PUT=self._put_route,
                DELETE=self._delete_route,
            ),
            self._route(rf"{_NET}/ipgroups/{_SEG}", net, "ipGroups", GET=self._get_ip_group, PUT=self._put_ip_group),
            self._route(
                rf"{_RG}/providers/microsoft\.machinelearningservices/workspaces/{_SEG}"
                r"/outboundnetworkdependenciesendpoints",
                ml,
                "workspaces/outboundNetworkDependenciesEndpoints",
                GET=self._workspace_dependencies,
            ),
        ]

    @staticmethod
    def _route(pattern: str, versions: tuple[str, ...], type_name: str, **methods: Handler) -> Route:
        return Route(re.compile(f"^{pattern}/?$", re.IGNORECASE), methods, versions, type_name)

    # ------------------------------------------------------------------------------------------

    def handle(self, request: ArmRequest) -> Reply:
        for route in self.routes:
            match = route.pattern.match(request.path)
            if match is None:
                continue
            self._check_api_version(request, route)
            handler = route.methods.get(request.method)
            if handler is None:
                raise ArmError(
                    405,
                    "MethodNotAllowed",
                    f"The requested resource does not support http method '{request.method}'.",
                )
            return handler(request, tuple(unquote(group) for group in match.groups()))
        raise ArmError(
            404,
            "InvalidResourceType",
            f"The resource type could not be found for the request path '{request.path}' (not modelled by the "
            "emulator).",
        )

    @staticmethod
    def _check_api_version(request: ArmRequest, route: Route) -> None:
        version = request.query.get("api-version")
        supported = ", ".join(route.api_versions)
        if not version:
            raise bad_request(
                "MissingApiVersionParameter",
                "The api-version query parameter (?api-version=) is required for all requests.",
            )
        if not _API_VERSION_RE.match(version):
            raise bad_request(
                "InvalidApiVersionParameter",
                f"The api-version '{version}' is invalid. The supported versions are '{supported}'.",
            )
        if version not in route.api_versions:
            raise bad_request(
                "NoRegisteredProviderFound",
                f"No registered resource provider found for API version '{version}' and type '{route.type_name}'. "
                f"The supported api-versions are '{supported}'.",
            )

    # ------------------------------------------------------------------------------------------
    # handlers: ``params`` are the URL's path parameters, in order

    def _list_subscriptions(self, request: ArmRequest, params: Params) -> Reply:
        """What `az login` reads after it gets a token: the subscriptions the identity can see (all of them)."""
        return Reply(200, {"value": [{
            "id": f"/subscriptions/{sub}", "subscriptionId": sub, "tenantId": TENANT_ID,
            "displayName": f"emulator {sub[-4:]}", "state": "Enabled", "authorizationSource": "RoleBased",
            "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01", "quotaId": "PayAsYouGo_2014-09-01",
                                     "spendingLimit": "Off"},
        } for sub in self.state.subscription_ids()]})

    def _get_resource_group(self, request: ArmRequest, params: Params) -> Reply:
        sub, rg = params
        return Reply(200, self.state.get_resource_group(sub, rg))

    def _operation(self, request: ArmRequest, params: Params) -> Reply:
        sub, _location, operation = params
        return self.state.operation_status(sub, operation, results=False)

    def _operation_result(self, request: ArmRequest, params: Params) -> Reply:
        sub, _location, operation = params
        return self.state.operation_status(sub, operation, results=True)

    def _list_all_policies(self, request: ArmRequest, params: Params) -> Reply:
        (sub,) = params
        return self._page(request, self.state.list_policies(sub, None))

    def _list_policies(self, request: ArmRequest, params: Params) -> Reply:
        sub, rg = params
        return self._page(request, self.state.list_policies(sub, rg))

    def _get_policy(self, request: ArmRequest, params: Params) -> Reply:
        sub, rg, name = params
        return Reply(200, self.state.get_policy(sub, rg, name))

    def _put_policy(self, request: ArmRequest, params: Params) -> Reply:
        sub, rg, name = params
        afc_sync = request.query.get("afcManagedSync", "").lower() == "true"
        return self.state.put_policy_http(sub, rg, name, request.json(), afc_sync=afc_sync, **_write_args(request))

    def _list_groups(self, request: ArmRequest, params: Params) -> Reply:
        sub, rg, policy = params
        return self._page(request, self.state.list_groups(sub, rg, policy))

    def _get_group(self, request: ArmRequest, params: Params) -> Reply:
        sub, rg, policy, name = params
        return Reply(200, self.state.get_group(sub, rg, policy, name))

    def _put_group(self, request: ArmRequest, params: Params) -> Reply:
        sub, rg, policy, name = params
        return self.state.put_group_http(
            sub, rg, policy, name, request.json(), **_write_args(request),
            if_none_match=request.headers.get("if-none-match"),
        )

    def _delete_group(self, request: ArmRequest, params: Params) -> Reply:
        sub, rg, policy, name = params
        return self.state.delete_group_http(sub, rg, policy, name, **_write_args(request))

    def _list_all_route_tables(self, request: ArmRequest, params: Params) -> Reply:
        (sub,) = params
        return self._page(request, self.state.list_route_tables(sub, None))

    def _list_route_tables(self, request: ArmRequest, params: Params) -> Reply:
        sub, rg = params
        return self._page(request, self.state.list_route_tables(sub, rg))

    def _get_route_table(self, request: ArmRequest, params: Params) -> Reply:
        sub, rg, name = params
        return Reply(200, self.state.get_route_table(sub, rg, name))

    def _put_route_table(self, request: ArmRequest, params: Params) -> Reply:
        sub, rg, name = params
        return self.state.put_route_table_http(sub, rg, name, request.json(), **_write_args(request))

    def _list_routes(self, request: ArmRequest, params: Params) -> Reply:
        sub, rg, table = params
        return self._page(request, self.state.list_routes(sub, rg, table))

    def _get_route(self, request: ArmRequest, params: Params) -> Reply:
        sub, rg, table, name = params
        return Reply(200, self.state.get_route(sub, rg, table, name))

    def _put_route(self, request: ArmRequest, params: Params) -> Reply:
        sub, rg, table, name = params
        return self.state.put_route_http(sub, rg, table, name, request.json(), **_write_args(request))

    def _delete_route(self, request: ArmRequest, params: Params) -> Reply:
        sub, rg, table, name = params
        return self.state.delete_route_http(sub, rg, table, name, **_write_args(request))

    def _get_ip_group(self, request: ArmRequest, params: Params) -> Reply:
        sub, rg, name = params
        return Reply(200, self.state.get_ip_group(sub, rg, name))

    def _put_ip_group(self, request: ArmRequest, params: Params) -> Reply:
        sub, rg, name = params
        return self.state.put_ip_group(sub, rg, name, request.json(), seeding=False)

    def _workspace_dependencies(self, request: ArmRequest, params: Params) -> Reply:
        sub, rg, workspace = params
        return Reply(200, self.state.workspace_dependencies(sub, rg, workspace))

    def _page(self, request: ArmRequest, items: list[dict[str, Any]]) -> Reply:
        """``value`` + ``nextLink``; the link carries api-version because the SDK GETs it verbatim."""
        try:
            skip = int(request.query.get("$skipToken", "0"))
        except ValueError:
            raise bad_request("InvalidSkipToken", "The $skipToken is invalid.") from None
        size = self.state.config.page_size
        body: dict[str, Any] = {"value": items[skip : skip + size]}
        if skip + size < len(items):
            body["nextLink"] = (
                f"{self.state.config.base_url}{request.path}?api-version={request.api_version}&$skipToken={skip + size}"
            )
        return Reply(200, body)

    def _head_resource_group(self, request: ArmRequest, params: Params) -> Reply:
        sub, rg = params
        try:
            self.state.get_resource_group(sub, rg)
        except ArmError:
            return Reply(404)
        return Reply(204)

    def _provider(self, request: ArmRequest, params: Params) -> Reply:
        sub, namespace = params
        known = {
            "microsoft.network": (
                "Microsoft.Network",
                {name: list(NETWORK_API_VERSIONS) for name in MODELLED_NETWORK_TYPES},
            ),
            "microsoft.machinelearningservices": (
                "Microsoft.MachineLearningServices",
                {"workspaces": list(ML_API_VERSIONS)},
            ),
        }
        if namespace.casefold() not in known:
            raise ArmError(404, "InvalidResourceNamespace", f"The resource namespace '{namespace}' is invalid.")
        name, types = known[namespace.casefold()]
        return Reply(200, self.state.provider(sub, name, types))

    def _service_tags(self, request: ArmRequest, params: Params) -> Reply:
        """The service-tag file of the subscription's cloud in the API's shape (changeNumber as strings; not
        paged): Public, or US Government after ``set_subscription_cloud``. Microsoft publishes no China file, so
        a China subscription gets the Public tags' names with China's regional suffixes (no prefixes), in line
        with the emulator's own China validation, which accepts any well-formed name."""
        sub, _location = params
        cloud = self.state.subscription_cloud(sub)
        with self._tags_lock:
            if cloud not in self._tag_docs:
                self._tag_docs[cloud] = self._tag_document(cloud)
            document = self._tag_docs[cloud]
        return Reply(200, {"id": f"/subscriptions/{sub}/providers/Microsoft.Network/serviceTags/{document['name']}",
                           **document})

    def _tag_document(self, cloud: str) -> dict[str, Any]:
        ref = self.state.reference
        if cloud == "AzureUSGovernment":
            source = load_json(ref.path("service-tags", "ServiceTags_Gov.json"))
        else:
            source = ref.service_tags_document()
        values = [
            {
                "name": value["name"],
                "id": value["id"],
                "properties": {
                    "addressPrefixes": value["properties"]["addressPrefixes"],
                    "changeNumber": str(value["properties"]["changeNumber"]),
                    "region": value["properties"]["region"],
                    "systemService": value["properties"]["systemService"],
                },
            }
            for value in source["values"]
        ]
        if cloud == "AzureChinaCloud":
            bases = sorted({v["name"].partition(".")[0] for v in values})
            suffixes = ("", "ChinaEast", "ChinaEast2", "ChinaEast3", "ChinaNorth", "ChinaNorth2", "ChinaNorth3")
            values = [
                {"name": f"{b}.{x}" if x else b, "id": f"{b}.{x}" if x else b,
                 "properties": {"addressPrefixes": [], "changeNumber": "1", "region": x.lower(), "systemService": b}}
                for b in bases for x in suffixes
            ]
        name = {"AzureUSGovernment": "usgov", "AzureChinaCloud": "china"}.get(cloud, "public")
        return {"name": name, "type": "Microsoft.Network/serviceTags", "changeNumber": str(source["changeNumber"]),
                "cloud": "AzureChinaCloud" if cloud == "AzureChinaCloud" else source["cloud"], "values": values}
