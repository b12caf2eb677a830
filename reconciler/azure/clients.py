"""One place that builds Azure clients: credential, cloud endpoints, retry and polling settings.

Every client also gets two guards:

- `SameOriginPolicy` (a per-retry policy, so it runs after the retry policy and before the bearer-token
  policy on every try, for the first request, LRO polls, nextLink pages and redirects alike): a URL off the
  arm_endpoint's origin (scheme, host, port) raises `ForeignUrlError` before the token is attached.
- a transport whose requests session reads each body in chunks and refuses one over
  `azure.max_response_bytes` (`BadResponseError`), before azure-core parses it. Connect and read timeouts
  (`azure.connection_timeout`, `azure.read_timeout`) apply to every request the transport sends.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests
from azure.core import AzureClouds
from azure.core.credentials import TokenCredential
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.core.pipeline.transport import RequestsTransport
from azure.identity import (
    AzureAuthorityHosts,
    DefaultAzureCredential,
    ManagedIdentityCredential,
    WorkloadIdentityCredential,
)
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.resource.resources import ResourceManagementClient

from reconciler.azure.errors import SeenResponse, record_response
from reconciler.config import Target, url_origin
from reconciler.errors import BadResponseError, ForeignUrlError

CLOUD_SETTINGS = {
    "AzureCloud": AzureClouds.AZURE_PUBLIC_CLOUD,
    "AzureUSGovernment": AzureClouds.AZURE_US_GOVERNMENT,
    "AzureChinaCloud": AzureClouds.AZURE_CHINA_CLOUD,
}
AUTHORITIES = {
    "AzureCloud": AzureAuthorityHosts.AZURE_PUBLIC_CLOUD,
    "AzureUSGovernment": AzureAuthorityHosts.AZURE_GOVERNMENT,
    "AzureChinaCloud": AzureAuthorityHosts.AZURE_CHINA,
}
# Resource Manager endpoint and token scope per cloud (the SDK's own table: azure.mgmt.core.tools).
ENDPOINTS = {
    "AzureCloud": ("https://management.azure.com", "https://management.azure.com/.default"),
    "AzureUSGovernment": ("https://management.usgovcloudapi.net",
                          "https://management.core.usgovcloudapi.net/.default"),
    "AzureChinaCloud": ("https://management.chinacloudapi.cn", "https://management.chinacloudapi.cn/.default"),
}

ResponseHook = Callable[[str, int, dict[str, str]], None]
"""Called for every HTTP response: (method, status, selected headers). Feeds metrics and throttle budgets."""

_HOOK_HEADERS = ("x-ms-ratelimit-remaining-subscription-reads", "x-ms-ratelimit-remaining-subscription-writes",
                 "x-ms-ratelimit-remaining-subscription-deletes", "retry-after", "x-ms-request-id")

_credentials: dict[tuple[str, ...], TokenCredential] = {}
_credentials_lock = threading.Lock()
_IDENTITY_ENV = ("IDENTITY_ENDPOINT", "MSI_ENDPOINT", "AZURE_CLIENT_ID", "AZURE_TENANT_ID",
                 "AZURE_FEDERATED_TOKEN_FILE", "AZURE_AUTHORITY_HOST")


def credential_for(target: Target) -> TokenCredential:
    """A credential per (cloud, kind, client id, identity environment), shared across targets so tokens are
    cached once per identity."""
    env = tuple(os.environ.get(v, "") for v in _IDENTITY_ENV)
    key = (target.cloud, target.credential.kind, target.credential.client_id or "", str(target.azure.read_timeout),
           *env)
    with _credentials_lock:
        cred = _credentials.get(key)
        if cred is None:
            cred = _make_credential(target)
            _credentials[key] = cred
        return cred


def _make_credential(target: Target) -> TokenCredential:
    kind, client_id = target.credential.kind, target.credential.client_id
    # token requests get amlfw's read timeout too (azure-identity's own default is 300 s); the connect timeout
    # stays azure-identity's, which keeps its 2 s probe of the instance metadata endpoint
    timeouts: dict[str, Any] = {"read_timeout": target.azure.read_timeout}
    if kind == "managed_identity":
        if client_id:
            return ManagedIdentityCredential(client_id=client_id, **timeouts)
        return ManagedIdentityCredential(**timeouts)
    if kind == "workload_identity":
        # tenant, client id and token file come from AZURE_* variables set by the workload identity webhook
        kwargs: dict[str, Any] = {"authority": AUTHORITIES[target.cloud], **timeouts}
        if client_id:
            kwargs["client_id"] = client_id
        return WorkloadIdentityCredential(**kwargs)
    kwargs = {"authority": AUTHORITIES[target.cloud], **timeouts}
    if client_id:
        kwargs["managed_identity_client_id"] = client_id
        kwargs["workload_identity_client_id"] = client_id
    return DefaultAzureCredential(**kwargs)


def endpoint_and_scope(target: Target) -> tuple[str, str]:
    base, scope = ENDPOINTS[target.cloud]
    return (target.arm_endpoint or base), scope


class SameOriginPolicy(SansIOHTTPPolicy[Any, Any]):
    """Refuses any request whose URL is not on the Resource Manager origin, before a token is attached."""

    def __init__(self, base_url: str) -> None:
        origin = url_origin(base_url)
        if origin is None:
            raise ValueError(f"not an absolute URL: {base_url!r}")
        self.origin = origin
        self.base_url = base_url

    def on_request(self, request: PipelineRequest[Any]) -> None:
        url = str(request.http_request.url)
        if url_origin(url) != self.origin:
            raise ForeignUrlError(
                f"{request.http_request.method} refused: the service pointed at a URL off the Resource Manager "
                f"origin {self.base_url} (not requested, no token sent)", url=url)


class RecordResponsePolicy(SansIOHTTPPolicy[Any, Any]):
    """Remembers the URL, status and first bytes of each response (per thread), so that an answer the SDK or
    amlfw cannot read becomes an error naming it (reconciler.azure.errors.malformed)."""

    def on_response(self, request: PipelineRequest[Any], response: PipelineResponse[Any, Any]) -> None:
        http = response.http_response
        try:
            head = bytes(http.body()[:240])
        except Exception:  # noqa: BLE001 - a streamed body has no bytes to show
            head = b""
        rid = http.headers.get("x-ms-request-id")
        record_response(SeenResponse(str(request.http_request.method), str(request.http_request.url),
                                     int(http.status_code), head, str(rid) if rid else None))


def _capped_session(limit: int) -> requests.Session:
    """A requests session that reads every non-streamed body in chunks and stops past `limit` bytes."""
    session = requests.Session()

    def cap(response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        if kwargs.get("stream"):
            return response
        url = str(response.url)
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > limit:
            response.close()
            raise BadResponseError(f"response of {int(declared):,} bytes is larger than azure.max_response_bytes "
                                   f"({limit:,}); refused unread", url=url, status=response.status_code)
        chunks: list[bytes] = []
        size = 0
        for chunk in response.iter_content(65536):
            size += len(chunk)
            if size > limit:
                response.close()
                raise BadResponseError(f"response larger than azure.max_response_bytes ({limit:,} bytes); "
                                       "refused after reading that much", url=url, status=response.status_code)
            chunks.append(chunk)
        response._content = b"".join(chunks)  # what `response.content` would have read, now bounded
        return response

    session.hooks["response"].append(cap)
    return session


def _guards(base_url: str) -> list[SansIOHTTPPolicy[Any, Any]]:
    return [SameOriginPolicy(base_url), RecordResponsePolicy()]


def _transport(target: Target) -> RequestsTransport:
    settings = target.azure
    return RequestsTransport(session=_capped_session(settings.max_response_bytes), session_owner=True,
                             connection_timeout=settings.connection_timeout, read_timeout=settings.read_timeout)


@dataclass
class ArmClients:
    network: NetworkManagementClient
    resources: ResourceManagementClient

    def close(self) -> None:
        self.network.close()
        self.resources.close()

    def __enter__(self) -> ArmClients:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def build_clients(target: Target, subscription_id: str | None = None, *,
                  on_response: ResponseHook | None = None,
                  credential: TokenCredential | None = None) -> ArmClients:
    """Network and resource clients for a target's cloud (or its arm_endpoint override)."""
    base_url, scope = endpoint_and_scope(target)
    settings = target.azure
    common: dict[str, Any] = {
        "base_url": base_url,
        "credential_scopes": [scope],
        "cloud_setting": CLOUD_SETTINGS[target.cloud],
        "retry_total": settings.retry_total,
        "retry_backoff_max": settings.retry_backoff_max,
        "connection_timeout": settings.connection_timeout,
        "read_timeout": settings.read_timeout,
        "user_agent": "amlfw",
    }
    if on_response is not None:
        hook = on_response

        def _raw_response_hook(response: PipelineResponse[Any, Any]) -> None:
            http = response.http_response
            headers = {h: str(http.headers[h]) for h in _HOOK_HEADERS if h in http.headers}
            hook(str(response.http_request.method), int(http.status_code), headers)

        common["raw_response_hook"] = _raw_response_hook
    cred = credential or credential_for(target)
    sub = subscription_id or target.subscription_id
    network = NetworkManagementClient(cred, sub, polling_interval=settings.polling_interval,
                                      per_retry_policies=_guards(base_url), transport=_transport(target),
                                      **common)
    resources = ResourceManagementClient(cred, sub, per_retry_policies=_guards(base_url),
                                         transport=_transport(target), **common)
    return ArmClients(network=network, resources=resources)
