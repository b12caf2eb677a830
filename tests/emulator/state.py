"""In-memory ARM state: resources, long-running operations and the one-write-at-a-time lock per policy.

One re-entrant lock guards everything; HTTP handler threads, the Python API and the foreign writer all go
through it. Long-running operations finish lazily: every access first moves operations whose deadline has
passed to their terminal state (``_advance``), so there is no timer thread and an operation's end time is
exactly ``start + op_duration``.

Write semantics (the fact sheets, sections 2-3, and the official examples):

* a PUT/DELETE of a rule collection group, a policy, a route table or a route is long-running. The new
  content is visible at once with ``provisioningState: Updating`` on the resource *and* its parent; when the
  operation ends both become ``Succeeded`` (or ``Failed``, and the content stays as sent);
* while a policy (or route table) is ``Updating`` any other write to it or its children is refused with
  409 ``AnotherOperationInProgress`` (or 429 ``RetryableErrorDueToAnotherOperation`` when configured);
* ``etag`` changes on every write and on every provisioning-state change;
* rule-level validation errors of a group PUT are reported as an operation that ends ``Failed`` (the PUT
  itself answers 201/200), unless ``sync_validation``; schema, name and size errors stay a 400. A failed
  operation moves the etags and leaves the previous content (a failed create leaves no group) [assumed];
* with ``policy_settle`` the policy stays ``Updating`` that many seconds after a child operation ended [obs];
* with ``honor_if_match=False`` ``If-Match`` and ``If-None-Match`` are ignored, as NRP has been reported to do.
"""

from __future__ import annotations

import copy
import functools
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import validate
from .errors import (
    ArmError,
    bad_request,
    child_not_found,
    parent_not_found,
    resource_group_not_found,
    resource_not_found,
)
from .faults import FaultInjector, retry_after_headers
from .reference import ReferenceData

BUSY_STATES = frozenset({"Updating", "Deleting", "Creating"})
NETWORK = "Microsoft.Network"
POLICY_TYPE = "Microsoft.Network/firewallPolicies"
GROUP_TYPE = "Microsoft.Network/FirewallPolicies/RuleCollectionGroups"
ROUTE_TABLE_TYPE = "Microsoft.Network/routeTables"
ROUTE_TYPE = "Microsoft.Network/routeTables/routes"
IP_GROUP_TYPE = "Microsoft.Network/ipGroups"

POLICY_READ_ONLY = frozenset(
    {
        "size",
        "ruleCollectionGroups",
        "kubeSelectorGroups",
        "provisioningState",
        "firewalls",
        "childPolicies",
        "afcManaged",
    }
)
ROUTE_TABLE_READ_ONLY = frozenset({"subnets", "provisioningState", "resourceGuid", "routes"})
ROUTE_READ_ONLY = frozenset({"provisioningState", "hasBgpOverride"})

# Fields portal-exported templates show as [] / false when a rule does not set them (observed, not in the
# official examples); filled only with Emulator(observed_defaults=True).
OBSERVED_RULE_DEFAULTS: dict[str, dict[str, Any]] = {
    "ApplicationRule": {
        "sourceAddresses": [],
        "sourceIpGroups": [],
        "destinationAddresses": [],
        "targetFqdns": [],
        "targetUrls": [],
        "fqdnTags": [],
        "webCategories": [],
        "httpHeadersToInsert": [],
        "terminateTLS": False,
    },
    "NetworkRule": {
        "sourceAddresses": [],
        "sourceIpGroups": [],
        "destinationAddresses": [],
        "destinationIpGroups": [],
        "destinationFqdns": [],
        "destinationPorts": [],
    },
    "NatRule": {"sourceAddresses": [], "sourceIpGroups": [], "destinationAddresses": [], "destinationPorts": []},
}

Key = tuple[str, ...]


def _key(*parts: str) -> Key:
    return tuple(part.casefold() for part in parts)


def new_etag() -> str:
    return f'W/"{uuid.uuid4()}"'


def location_slug(location: str) -> str:
    """``West US`` -> ``westus`` (the form ARM uses in operation URLs)."""
    return location.replace(" ", "").lower()


@dataclass
class Config:
    op_duration: float = 0.0
    op_duration_max: float = 0.0  # > op_duration: each operation lasts uniform(op_duration, op_duration_max)
    page_size: int = 2
    conflict_status: int = 409
    retry_after: float = 0.0
    policy_settle: float = 0.0
    sync_validation: bool = False
    max_group_bytes: int = 2 * 1024 * 1024
    max_groups_per_policy: int = 100
    honor_if_match: bool = True
    observed_defaults: bool = False
    base_url: str = ""


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    operation_id: str | None = None


@dataclass
class Operation:
    id: str
    lock: Key
    location: str
    api_version: str
    started: float
    deadline: float
    outcome: str
    error: dict[str, Any] | None
    on_done: Callable[[str], None]
    status: str = "InProgress"
    ended: float | None = None


@dataclass
class Group:
    name: str
    properties: dict[str, Any]
    etag: str = field(default_factory=new_etag)
    state: str = "Succeeded"


@dataclass
class Policy:
    sub: str
    rg: str
    name: str
    body: dict[str, Any]
    afc_managed: bool = False
    etag: str = field(default_factory=new_etag)
    state: str = "Succeeded"
    groups: dict[str, Group] = field(default_factory=dict)
    settle_until: float | None = None  # Updating after a child operation until then (policy_settle)
    settle_state: str = "Succeeded"

    @property
    def id(self) -> str:
        return f"/subscriptions/{self.sub}/resourceGroups/{self.rg}/providers/{POLICY_TYPE}/{self.name}"

    @property
    def properties(self) -> dict[str, Any]:
        props: dict[str, Any] = self.body.setdefault("properties", {})
        return props


@dataclass
class Route:
    name: str
    properties: dict[str, Any]
    etag: str = field(default_factory=new_etag)
    state: str = "Succeeded"


@dataclass
class RouteTable:
    sub: str
    rg: str
    name: str
    body: dict[str, Any]
    routes: dict[str, Route]
    etag: str = field(default_factory=new_etag)
    state: str = "Succeeded"
    guid: str = field(default_factory=lambda: str(uuid.uuid4()))

    @property
    def id(self) -> str:
        return f"/subscriptions/{self.sub}/resourceGroups/{self.rg}/providers/{ROUTE_TABLE_TYPE}/{self.name}"


@dataclass
class IpGroup:
    sub: str
    rg: str
    name: str
    body: dict[str, Any]
    etag: str = field(default_factory=new_etag)

    @property
    def id(self) -> str:
        return f"/subscriptions/{self.sub}/resourceGroups/{self.rg}/providers/{IP_GROUP_TYPE}/{self.name}"


@dataclass
class ResourceGroup:
    sub: str
    name: str
    location: str


def _require_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise bad_request("InvalidRequestFormat", "Cannot parse the request.")
    return body


def _require_location(body: dict[str, Any]) -> str:
    location = body.get("location")
    if not isinstance(location, str) or not location:
        raise bad_request("LocationRequired", "The location property is required for this definition.")
    return location


def _writable(body: dict[str, Any], read_only: frozenset[str], top: tuple[str, ...]) -> dict[str, Any]:
    """The writable part of a request body: ``top`` keys plus ``properties`` without read-only fields."""
    kept = {key: copy.deepcopy(body[key]) for key in top if key in body}
    props = body.get("properties") or {}
    kept["properties"] = {key: copy.deepcopy(value) for key, value in props.items() if key not in read_only}
    return kept


class ArmState:
    def __init__(self, config: Config, reference: ReferenceData, faults: FaultInjector) -> None:
        self.config = config
        self.reference = reference
        self.faults = faults
        self.schemas = validate.SchemaValidator.of(reference)
        self._lock = threading.RLock()
        self.lock = self._lock  # for run-time configuration changes
        self._rng = random.Random()
        self._resource_groups: dict[Key, ResourceGroup] = {}
        self._providers: dict[Key, str] = {}
        self._clouds: dict[str, str] = {}  # subscription -> cloud whose service-tag list applies
        self._policies: dict[Key, Policy] = {}
        self._route_tables: dict[Key, RouteTable] = {}
        self._ip_groups: dict[Key, IpGroup] = {}
        self._workspaces: dict[Key, dict[str, Any]] = {}
        self._operations: dict[str, Operation] = {}
        self._running: list[Operation] = []
        self._settling: list[Policy] = []
        self._ending: float | None = None  # end time of the operation whose on_done runs

    # ------------------------------------------------------------------------------------------
    # operations and locks

    def _advance(self) -> None:
        now = time.time()
        for op in [op for op in self._running if op.deadline <= now]:
            self._finish(op, op.deadline)
        for policy in [p for p in self._settling if p.settle_until is not None and p.settle_until <= now]:
            self._settling.remove(policy)
            policy.state, policy.etag, policy.settle_until = policy.settle_state, new_etag(), None

    def _child_done(self, policy: Policy, outcome: str, when: float | None) -> None:
        """A child operation of ``policy`` ended: the policy follows, after ``policy_settle`` seconds."""
        settle = self.config.policy_settle
        if settle <= 0 or when is None:
            policy.state, policy.etag = outcome, new_etag()
            return
        policy.state, policy.etag = "Updating", new_etag()
        policy.settle_until, policy.settle_state = when + settle, outcome
        if policy not in self._settling:
            self._settling.append(policy)

    def _finish(self, op: Operation, when: float) -> None:
        self._running.remove(op)
        op.status, op.ended = op.outcome, when
        self._ending = when
        op.on_done(op.outcome)

    def _start_operation(
        self,
        lock: Key,
        location: str,
        api_version: str,
        method: str,
        path: str,
        on_done: Callable[[str], None],
        failure: tuple[str, str],
        error: dict[str, Any] | None = None,
    ) -> Operation:
        fault = self.faults.take(method, path, frozenset({"lro_failed"})) or self.faults.roll(
            method, path, frozenset({"lro_failed"})
        )
        if fault is not None and error is None:
            error = {"code": fault.params["code"] or failure[0], "message": fault.params["message"] or failure[1]}
        now = time.time()
        op = Operation(
            id=str(uuid.uuid4()),
            lock=lock,
            location=location_slug(location),
            api_version=api_version,
            started=now,
            deadline=now + self._duration(),
            outcome="Failed" if error else "Succeeded",
            error=error,
            on_done=on_done,
        )
        self._operations[op.id] = op
        self._running.append(op)
        return op

    def _duration(self) -> float:
        low, high = self.config.op_duration, self.config.op_duration_max
        return self._rng.uniform(low, high) if high > low else low

    def _active_operation(self, lock: Key) -> Operation | None:
        return next((op for op in self._running if op.lock == lock), None)

    def operation_url(self, sub: str, op: Operation, kind: str = "operations") -> str:
        return (
            f"{self.config.base_url}/subscriptions/{sub}/providers/{NETWORK}/locations/{op.location}/{kind}/{op.id}"
            f"?api-version={op.api_version}"
        )

    def _lro_reply(self, status: int, body: Any, sub: str, op: Operation, *, delete: bool = False) -> Reply:
        headers = {"Azure-AsyncOperation": self.operation_url(sub, op), **retry_after_headers(self.config.retry_after)}
        if delete:
            headers["Location"] = self.operation_url(sub, op, "operationResults")
        return Reply(status, body, headers, operation_id=op.id)

    def _conflict(self, sub: str, lock: Key) -> ArmError:
        op = self._active_operation(lock)
        where = self.operation_url(sub, op) if op else "(none: the resource was set to a busy state directly)"
        if self.config.conflict_status == 429:
            return ArmError(
                429,
                "RetryableErrorDueToAnotherOperation",
                "Operation could not be completed because another operation on this or a dependent resource is in "
                f"progress. Retry after the other operation completes. Operation: {where}",
                headers=retry_after_headers(self.config.retry_after),
            )
        return ArmError(
            409,
            "AnotherOperationInProgress",
            "Another operation on this or dependent resource is in progress. To retrieve status of the operation "
            f"use uri: {where}",
        )

    def operation_status(self, sub: str, op_id: str, *, results: bool) -> Reply:
        with self._lock:
            self._advance()
            op = self._operations.get(op_id.casefold())
            if op is None:
                raise ArmError(404, "OperationNotFound", f"Operation {op_id} was not found.")
            if results:  # the Location URL of a DELETE: 202 while running, 204 when done
                if op.status == "InProgress":
                    return Reply(
                        202,
                        None,
                        {
                            "Location": self.operation_url(sub, op, "operationResults"),
                            **retry_after_headers(self.config.retry_after),
                        },
                    )
                if op.status == "Failed":
                    assert op.error is not None
                    raise ArmError(500, op.error["code"], op.error["message"])
                return Reply(204)
            body: dict[str, Any] = {"status": op.status}
            headers = retry_after_headers(self.config.retry_after) if op.status == "InProgress" else {}
            if op.error is not None and op.status == "Failed":
                body["error"] = op.error
            return Reply(200, body, headers)

    def operation_end(self, op_id: str) -> float | None:
        with self._lock:
            self._advance()
            op = self._operations.get(op_id)
            return op.ended if op else None

    # ------------------------------------------------------------------------------------------
    # resource groups, providers

    def add_resource_group(self, sub: str, rg: str, location: str) -> dict[str, Any]:
        with self._lock:
            record = self._resource_groups.setdefault(_key(sub, rg), ResourceGroup(sub, rg, location))
            return self._resource_group_wire(record)

    def subscription_ids(self) -> list[str]:
        """Subscriptions exist implicitly: those that hold a resource group or a policy."""
        with self._lock:
            return sorted({record.sub for record in self._resource_groups.values()})

    def _resource_group(self, sub: str, rg: str) -> ResourceGroup:
        record = self._resource_groups.get(_key(sub, rg))
        if record is None:
            raise resource_group_not_found(rg)
        return record

    def get_resource_group(self, sub: str, rg: str) -> dict[str, Any]:
        with self._lock:
            return self._resource_group_wire(self._resource_group(sub, rg))

    @staticmethod
    def _resource_group_wire(record: ResourceGroup) -> dict[str, Any]:
        return {
            "id": f"/subscriptions/{record.sub}/resourceGroups/{record.name}",
            "name": record.name,
            "type": "Microsoft.Resources/resourceGroups",
            "location": record.location,
            "properties": {"provisioningState": "Succeeded"},
        }

    def set_subscription_cloud(self, sub: str, cloud: str) -> None:
        """Validate service tags in this subscription against ``cloud``'s list (default ``AzureCloud``): one
        emulator can stand in for the Resource Manager of several clouds, as the sandbox of a fleet needs."""
        with self._lock:
            self._clouds[sub.casefold()] = cloud

    def subscription_cloud(self, sub: str) -> str:
        with self._lock:
            return self._clouds.get(sub.casefold(), "AzureCloud")

    def _is_service_tag_for(self, resource_id: str) -> Callable[[str], bool]:
        parts = resource_id.strip("/").split("/")
        cloud = self._clouds.get(parts[1].casefold(), "AzureCloud") if len(parts) > 1 else "AzureCloud"
        return functools.partial(self.reference.is_service_tag_in, cloud)

    def register_provider(self, sub: str, namespace: str, state: str) -> None:
        with self._lock:
            self._providers[_key(sub, namespace)] = state

    def provider(self, sub: str, namespace: str, resource_types: dict[str, list[str]]) -> dict[str, Any]:
        """``registrationState`` is ``Registered`` unless set otherwise with ``register_provider``."""
        with self._lock:
            state = self._providers.get(_key(sub, namespace), "Registered")
        return {
            "id": f"/subscriptions/{sub}/providers/{namespace}",
            "namespace": namespace,
            "registrationState": state,
            "registrationPolicy": "RegistrationRequired",
            "resourceTypes": [
                {"resourceType": name, "locations": [], "apiVersions": versions}
                for name, versions in resource_types.items()
            ],
        }

    def _ensure_resource_group(self, sub: str, rg: str, location: str | None) -> None:
        self._resource_groups.setdefault(_key(sub, rg), ResourceGroup(sub, rg, location or "westus2"))

    # ------------------------------------------------------------------------------------------
    # firewall policies

    def _policy(self, sub: str, rg: str, name: str) -> Policy:
        self._resource_group(sub, rg)
        policy = self._policies.get(_key(sub, rg, name))
        if policy is None:
            raise resource_not_found(POLICY_TYPE, name, rg)
        return policy

    def _parent_policy(self, sub: str, rg: str, name: str, child_type: str, action: str) -> Policy:
        self._resource_group(sub, rg)
        policy = self._policies.get(_key(sub, rg, name))
        if policy is None:
            parent = f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{POLICY_TYPE}/{name}"
            raise parent_not_found(action, f"{POLICY_TYPE}/{child_type}", parent)
        return policy

    def _validated_policy(self, sub: str, rg: str, name: str, body: Any, validate_body: bool) -> dict[str, Any]:
        body = _require_object(body)
        if validate_body:
            validate.check_name(
                name,
                "Firewall Policy",
                resource_id=f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{POLICY_TYPE}/{name}",
            )
            self.schemas.check("policy", body)
            _require_location(body)
        return _writable(body, POLICY_READ_ONLY, ("location", "tags", "identity"))

    def _sorted_groups(self, policy: Policy) -> list[Group]:
        return sorted(policy.groups.values(), key=lambda g: g.name.casefold())

    def policy_wire(self, policy: Policy) -> dict[str, Any]:
        body = copy.deepcopy(policy.body)
        props = body["properties"]
        props.setdefault("sku", {"tier": "Standard"})
        props["provisioningState"] = policy.state
        props["ruleCollectionGroups"] = [
            {"id": f"{policy.id}/ruleCollectionGroups/{g.name}"} for g in self._sorted_groups(policy)
        ]
        props["firewalls"] = []
        children = [
            {"id": other.id}
            for other in self._policies.values()
            if ((other.properties.get("basePolicy") or {}).get("id") or "").casefold() == policy.id.casefold()
        ]
        if children:
            props["childPolicies"] = children
        props["size"] = validate.format_size(validate.group_size_bytes(policy.properties))
        if policy.afc_managed:
            props["afcManaged"] = True
        return {"name": policy.name, "id": policy.id, "type": POLICY_TYPE, "etag": policy.etag, **body}

    def put_policy(self, sub: str, rg: str, name: str, body: Any, *, validate_body: bool = True) -> dict[str, Any]:
        """Create or replace a policy at once, without an operation (seeding)."""
        with self._lock:
            self._advance()
            stored = self._validated_policy(sub, rg, name, body, validate_body)
            self._ensure_resource_group(sub, rg, stored.get("location"))
            policy = self._policies.get(_key(sub, rg, name))
            if policy is None:
                policy = self._policies[_key(sub, rg, name)] = Policy(sub, rg, name, stored)
            else:
                policy.body, policy.etag, policy.state = stored, new_etag(), "Succeeded"
            return self.policy_wire(policy)

    def put_policy_http(
        self,
        sub: str,
        rg: str,
        name: str,
        body: Any,
        *,
        api_version: str,
        path: str,
        afc_sync: bool,
        if_match: str | None,
    ) -> Reply:
        with self._lock:
            self._advance()
            self._resource_group(sub, rg)
            stored = self._validated_policy(sub, rg, name, body, True)
            policy = self._policies.get(_key(sub, rg, name))
            self._check_if_match(if_match, policy.etag if policy else None)
            lock = _key("policy", sub, rg, name)
            if policy is not None and policy.state in BUSY_STATES:
                raise self._conflict(sub, lock)
            created = policy is None
            if policy is None:
                policy = self._policies[_key(sub, rg, name)] = Policy(sub, rg, name, stored)
            policy.body, policy.etag, policy.state = stored, new_etag(), "Updating"
            policy.afc_managed = policy.afc_managed or afc_sync
            target = policy

            def done(outcome: str) -> None:
                target.state, target.etag = outcome, new_etag()

            op = self._start_operation(
                lock,
                stored["location"],
                api_version,
                "PUT",
                path,
                done,
                (
                    "FirewallPolicyUpdateFailed",
                    f"Put on Firewall Policy {name} Failed with 1 faulted referenced firewalls",
                ),
            )
            return self._lro_reply(201 if created else 200, self.policy_wire(policy), sub, op)

    def get_policy(self, sub: str, rg: str, name: str) -> dict[str, Any]:
        with self._lock:
            self._advance()
            return self.policy_wire(self._policy(sub, rg, name))

    def find_policy(self, sub: str, rg: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            self._advance()
            policy = self._policies.get(_key(sub, rg, name))
            return self.policy_wire(policy) if policy else None

    def list_policies(self, sub: str, rg: str | None) -> list[dict[str, Any]]:
        with self._lock:
            self._advance()
            if rg is not None:
                self._resource_group(sub, rg)
            found = [
                p for k, p in self._policies.items() if k[0] == sub.casefold() and (rg is None or k[1] == rg.casefold())
            ]
            return [self.policy_wire(p) for p in sorted(found, key=lambda p: (p.rg.casefold(), p.name.casefold()))]

    def set_provisioning_state(self, sub: str, rg: str, policy_name: str, state: str, group: str | None) -> None:
        with self._lock:
            self._advance()
            policy = self._policy(sub, rg, policy_name)
            if group is None:
                policy.state, policy.etag = state, new_etag()
                return
            record = policy.groups.get(group.casefold())
            if record is None:
                raise child_not_found(f"{policy.id}/ruleCollectionGroups/{group}")
            record.state, record.etag = state, new_etag()

    # ------------------------------------------------------------------------------------------
    # rule collection groups

    def _policy_context(self, policy: Policy) -> validate.PolicyContext:
        return validate.PolicyContext.from_policy(
            policy.name, policy.properties, self._ip_group_exists, self._is_service_tag_for(policy.id)
        )

    def _ip_group_exists(self, resource_id: str) -> bool:
        parts = [part for part in resource_id.split("/") if part]
        if len(parts) != 8:
            return False
        keywords = [parts[i].casefold() for i in (0, 2, 4, 5, 6)]
        if keywords != ["subscriptions", "resourcegroups", "providers", "microsoft.network", "ipgroups"]:
            return False
        return _key(parts[1], parts[3], parts[7]) in self._ip_groups

    def _validated_group(
        self,
        policy: Policy,
        name: str,
        body: Any,
        *,
        creating: bool,
        validate_body: bool,
        deferred: list[ArmError] | None = None,
    ) -> dict[str, Any]:
        """Schema, name and size errors raise; a service-rule error is appended to ``deferred`` when given."""
        body = _require_object(body)
        stored = _writable(body, frozenset({"size", "provisioningState"}), ())["properties"]
        stored = {key: value for key, value in stored.items() if key in ("priority", "ruleCollections")}
        if not validate_body:
            return stored
        group_id = f"{policy.id}/ruleCollectionGroups/{name}"
        validate.check_name(name, "Rule Collection Group", resource_id=group_id)
        size = validate.group_size_bytes(stored)
        if size > self.config.max_group_bytes:
            raise bad_request(
                "FirewallPolicyRuleCollectionGroupSizeLimitExceeded",
                f"Firewall Policy Rule Collection Group {name} has size {validate.format_size(size)} ({size} bytes), "
                f"which exceeds the limit of {validate.format_size(self.config.max_group_bytes)}.",
            )
        if creating and len(policy.groups) >= self.config.max_groups_per_policy:
            raise bad_request(
                "FirewallPolicyRuleCollectionGroupsLimitReached",
                f"Firewall Policy {policy.name} already has {len(policy.groups)} Rule Collection Groups; the limit "
                f"is {self.config.max_groups_per_policy}.",
            )
        self.schemas.check("group", body)
        try:
            validate.check_rule_collection_group(name, stored, self._policy_context(policy))
        except ArmError as error:
            if deferred is None:
                raise
            deferred.append(error)
        return stored

    def _validated_group_http(
        self, policy: Policy, name: str, body: Any, *, creating: bool
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """Validate a PUT: the stored content and, unless ``sync_validation``, the service-rule error the
        operation will end ``Failed`` with (``None`` when valid)."""
        deferred: list[ArmError] | None = None if self.config.sync_validation else []
        stored = self._validated_group(policy, name, body, creating=creating, validate_body=True, deferred=deferred)
        if not deferred:
            return stored, None
        inner = deferred[0].body()["error"]
        error = {"code": inner["code"], "message": inner["message"]}
        if inner.get("details"):
            error["details"] = inner["details"]
        return stored, error

    def group_wire(self, policy: Policy, group: Group) -> dict[str, Any]:
        props = copy.deepcopy(group.properties)
        props.setdefault("ruleCollections", [])
        if self.config.observed_defaults:
            for collection in props["ruleCollections"]:
                for rule in collection.get("rules") or []:
                    for key, default in OBSERVED_RULE_DEFAULTS.get(rule.get("ruleType"), {}).items():
                        rule.setdefault(key, copy.deepcopy(default))
        props["provisioningState"] = group.state
        props["size"] = validate.format_size(validate.group_size_bytes(group.properties))
        return {
            "name": group.name,
            "id": f"{policy.id}/ruleCollectionGroups/{group.name}",
            "type": GROUP_TYPE,
            "etag": group.etag,
            "properties": props,
        }

    def _check_if_none_match(self, if_none_match: str | None, etag: str | None) -> None:
        """``If-None-Match: *`` (create only): 412 when the resource exists, unless conditions are ignored."""
        if if_none_match is None or not self.config.honor_if_match:
            return
        if etag is not None and if_none_match.strip() == "*":
            raise ArmError(
                412,
                "PreconditionFailed",
                "The condition specified using HTTP conditional header(s) is not met.",
            )

    def _check_if_match(self, if_match: str | None, etag: str | None) -> None:
        if if_match is None or not self.config.honor_if_match:
            return
        wanted = {tag.strip().removeprefix("W/").strip('"') for tag in if_match.split(",")}
        current = etag.removeprefix("W/").strip('"') if etag else None
        if current is None or ("*" not in wanted and current not in wanted):
            raise ArmError(
                412,
                "PreconditionFailed",
                "The condition specified using HTTP conditional header(s) is not met.",
            )

    def _check_group_not_busy(self, policy: Policy, group: Group | None, lock: Key, verb: str) -> None:
        if group is not None and group.state in BUSY_STATES:
            op = self._active_operation(lock)
            raise ArmError(
                409,
                f"FirewallPolicyRuleCollectionGroup{verb.capitalize()}NotAllowedWhenUpdatingOrDeleting",
                f"Firewall Policy Rule Collection Group {group.name} can not be {verb}d because it is in "
                f"{group.state} state from previous operation ID : {op.id if op else 'unknown'}",
            )
        if policy.state in BUSY_STATES:
            raise self._conflict(policy.sub, lock)

    def put_group_http(
        self,
        sub: str,
        rg: str,
        policy_name: str,
        name: str,
        body: Any,
        *,
        api_version: str,
        path: str,
        if_match: str | None,
        if_none_match: str | None = None,
    ) -> Reply:
        with self._lock:
            self._advance()
            policy = self._parent_policy(sub, rg, policy_name, "ruleCollectionGroups", "write")
            group = policy.groups.get(name.casefold())
            self._check_if_match(if_match, group.etag if group else None)
            self._check_if_none_match(if_none_match, group.etag if group else None)
            stored, rule_error = self._validated_group_http(policy, name, body, creating=group is None)
            lock = _key("policy", sub, rg, policy_name)
            self._check_group_not_busy(policy, group, lock, "update")
            created = group is None
            failure = (
                "FirewallPolicyUpdateFailed",
                f"Put on Firewall Policy {policy.name} Failed with 1 faulted referenced firewalls",
            )
            if rule_error is not None:
                return self._failing_group_put(sub, policy, group, name, stored, lock, api_version, path, rule_error)
            if group is None:
                group = policy.groups[name.casefold()] = Group(name, stored)
            group.properties, group.etag, group.state = stored, new_etag(), "Updating"
            policy.state, policy.etag = "Updating", new_etag()
            policy.settle_until = None
            target = group

            def done(outcome: str) -> None:
                target.state, target.etag = outcome, new_etag()
                self._child_done(policy, outcome, self._ending)

            op = self._start_operation(lock, policy.body.get("location", ""), api_version, "PUT", path, done, failure)
            return self._lro_reply(201 if created else 200, self.group_wire(policy, group), sub, op)

    def _failing_group_put(
        self,
        sub: str,
        policy: Policy,
        group: Group | None,
        name: str,
        stored: dict[str, Any],
        lock: Key,
        api_version: str,
        path: str,
        error: dict[str, Any],
    ) -> Reply:
        """A PUT that passed the synchronous checks but breaks a service rule: the operation ends ``Failed``.

        The answer shows the content as sent (``Updating``); the stored content stays as it was (a failed
        create leaves no group) and the etags move when the operation ends [assumed].
        """
        shown = Group(group.name if group else name, stored, state="Updating")
        if group is not None:
            group.state, group.etag = "Updating", new_etag()
        policy.state, policy.etag = "Updating", new_etag()
        policy.settle_until = None
        target = group

        def done(outcome: str) -> None:
            if target is not None:
                target.state, target.etag = outcome, new_etag()
            self._child_done(policy, outcome, self._ending)

        op = self._start_operation(
            lock, policy.body.get("location", ""), api_version, "PUT", path, done, (error["code"], ""), error=error
        )
        return self._lro_reply(200 if group else 201, self.group_wire(policy, shown), sub, op)

    def delete_group_http(
        self, sub: str, rg: str, policy_name: str, name: str, *, api_version: str, path: str, if_match: str | None
    ) -> Reply:
        with self._lock:
            self._advance()
            policy = self._parent_policy(sub, rg, policy_name, "ruleCollectionGroups", "delete")
            group = policy.groups.get(name.casefold())
            if group is None:
                return Reply(204)
            self._check_if_match(if_match, group.etag)
            lock = _key("policy", sub, rg, policy_name)
            self._check_group_not_busy(policy, group, lock, "delete")
            group.state, group.etag = "Deleting", new_etag()
            policy.state, policy.etag = "Updating", new_etag()
            target = group

            def done(outcome: str) -> None:
                if outcome == "Succeeded":
                    policy.groups.pop(target.name.casefold(), None)
                else:
                    target.state, target.etag = outcome, new_etag()
                self._child_done(policy, outcome, self._ending)

            op = self._start_operation(
                lock,
                policy.body.get("location", ""),
                api_version,
                "DELETE",
                path,
                done,
                (
                    "FirewallPolicyUpdateFailed",
                    f"Put on Firewall Policy {policy.name} Failed with 1 faulted referenced firewalls",
                ),
            )
            return self._lro_reply(202, None, sub, op, delete=True)

    def get_group(self, sub: str, rg: str, policy_name: str, name: str) -> dict[str, Any]:
        with self._lock:
            self._advance()
            policy = self._policy(sub, rg, policy_name)
            group = policy.groups.get(name.casefold())
            if group is None:
                raise child_not_found(f"{policy.id}/ruleCollectionGroups/{name}")
            return self.group_wire(policy, group)

    def find_group(self, sub: str, rg: str, policy_name: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            self._advance()
            policy = self._policies.get(_key(sub, rg, policy_name))
            group = policy.groups.get(name.casefold()) if policy else None
            return self.group_wire(policy, group) if policy and group else None

    def list_groups(self, sub: str, rg: str, policy_name: str) -> list[dict[str, Any]]:
        with self._lock:
            self._advance()
            policy = self._policy(sub, rg, policy_name)
            return [self.group_wire(policy, group) for group in self._sorted_groups(policy)]

    def put_group(
        self, sub: str, rg: str, policy_name: str, name: str, body: Any, *, validate_body: bool
    ) -> dict[str, Any]:
        """Create or replace a group at once, ignoring locks (seeding and manual edits)."""
        with self._lock:
            self._advance()
            policy = self._parent_policy(sub, rg, policy_name, "ruleCollectionGroups", "write")
            group = policy.groups.get(name.casefold())
            stored = self._validated_group(policy, name, body, creating=group is None, validate_body=validate_body)
            if group is None:
                group = policy.groups[name.casefold()] = Group(name, stored)
            group.properties, group.etag, group.state = stored, new_etag(), "Succeeded"
            policy.etag = new_etag()
            return self.group_wire(policy, group)

    def delete_group(self, sub: str, rg: str, policy_name: str, name: str) -> None:
        with self._lock:
            self._advance()
            policy = self._policy(sub, rg, policy_name)
            policy.groups.pop(name.casefold(), None)
            policy.etag = new_etag()

    # ------------------------------------------------------------------------------------------
    # foreign writer

    def begin_foreign_write(
        self, sub: str, rg: str, policy_name: str, hold_seconds: float, group: str | None, body: dict[str, Any] | None
    ) -> str | None:
        """Take the policy's write lock for ``hold_seconds`` (as another tool's RCG PUT would); None if busy."""
        with self._lock:
            self._advance()
            policy = self._policy(sub, rg, policy_name)
            if policy.state in BUSY_STATES:
                return None
            record = None
            if group is not None:
                record = policy.groups.get(group.casefold())
                content = copy.deepcopy(body) if body is not None else {"priority": 65000, "ruleCollections": []}
                if record is None:
                    record = policy.groups[group.casefold()] = Group(group, content)
                record.properties, record.state, record.etag = content, "Updating", new_etag()
            policy.state, policy.etag = "Updating", new_etag()
            foreign = record

            def done(outcome: str) -> None:
                if foreign is not None:
                    foreign.state, foreign.etag = outcome, new_etag()
                    self._child_done(policy, outcome, self._ending)
                else:
                    policy.state, policy.etag = outcome, new_etag()

            op = Operation(
                id=str(uuid.uuid4()),
                lock=_key("policy", sub, rg, policy_name),
                location=location_slug(policy.body.get("location", "")),
                api_version="2026-03-01",
                started=time.time(),
                deadline=time.time() + hold_seconds,
                outcome="Succeeded",
                error=None,
                on_done=done,
            )
            self._operations[op.id] = op
            self._running.append(op)
            return op.id

    def end_foreign_write(self, operation_id: str) -> None:
        with self._lock:
            self._advance()
            op = self._operations[operation_id]
            if op.status == "InProgress":
                self._finish(op, time.time())

    # ------------------------------------------------------------------------------------------
    # route tables and routes

    def _table(self, sub: str, rg: str, name: str) -> RouteTable:
        self._resource_group(sub, rg)
        table = self._route_tables.get(_key(sub, rg, name))
        if table is None:
            raise resource_not_found(ROUTE_TABLE_TYPE, name, rg)
        return table

    def _parent_table(self, sub: str, rg: str, name: str, action: str) -> RouteTable:
        self._resource_group(sub, rg)
        table = self._route_tables.get(_key(sub, rg, name))
        if table is None:
            parent = f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{ROUTE_TABLE_TYPE}/{name}"
            raise parent_not_found(action, f"{ROUTE_TABLE_TYPE}/routes", parent)
        return table

    def _validated_route(self, table_id: str, name: str, body: Any, validate_body: bool) -> dict[str, Any]:
        body = _require_object(body)
        stored: dict[str, Any] = _writable(body, ROUTE_READ_ONLY, ())["properties"]
        if validate_body:
            route_id = f"{table_id}/routes/{name}"
            validate.check_name(name, "Route", resource_id=route_id)
            self.schemas.check("route", body)
            validate.check_route(stored, route_id, self._is_service_tag_for(route_id))
        return stored

    def _validated_table(
        self, sub: str, rg: str, name: str, body: Any, validate_body: bool
    ) -> tuple[dict[str, Any], dict[str, Route]]:
        body = _require_object(body)
        table_id = f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{ROUTE_TABLE_TYPE}/{name}"
        if validate_body:
            validate.check_name(name, "Route Table", resource_id=table_id)
            self.schemas.check("routeTable", body)
            _require_location(body)
        routes: dict[str, Route] = {}
        for item in (body.get("properties") or {}).get("routes") or []:
            route_name = item.get("name") if isinstance(item, dict) else None
            if validate_body and route_name is not None and route_name.casefold() in routes:
                raise bad_request("DuplicateResourceName", f"Route table {table_id} has two routes named {route_name}.")
            routes[str(route_name).casefold()] = Route(
                str(route_name), self._validated_route(table_id, str(route_name), item, validate_body)
            )
        if validate_body:
            validate.check_route_set(
                table_id, {k: r.properties for k, r in routes.items()}, self._is_service_tag_for(table_id)
            )
        return _writable(body, ROUTE_TABLE_READ_ONLY, ("location", "tags")), routes

    def _route_wire(self, table: RouteTable, route: Route) -> dict[str, Any]:
        return {
            "name": route.name,
            "id": f"{table.id}/routes/{route.name}",
            "type": ROUTE_TYPE,
            "etag": route.etag,
            "properties": {**copy.deepcopy(route.properties), "provisioningState": route.state},
        }

    def table_wire(self, table: RouteTable) -> dict[str, Any]:
        body = copy.deepcopy(table.body)
        props = body["properties"]
        props["provisioningState"] = table.state
        props["resourceGuid"] = table.guid
        props["routes"] = [
            self._route_wire(table, r) for r in sorted(table.routes.values(), key=lambda r: r.name.casefold())
        ]
        return {"name": table.name, "id": table.id, "type": ROUTE_TABLE_TYPE, "etag": table.etag, **body}

    def put_route_table(self, sub: str, rg: str, name: str, body: Any, *, validate_body: bool = True) -> dict[str, Any]:
        with self._lock:
            self._advance()
            stored, routes = self._validated_table(sub, rg, name, body, validate_body)
            self._ensure_resource_group(sub, rg, stored.get("location"))
            table = self._route_tables.get(_key(sub, rg, name))
            if table is None:
                table = self._route_tables[_key(sub, rg, name)] = RouteTable(sub, rg, name, stored, routes)
            table.body, table.routes, table.etag, table.state = stored, routes, new_etag(), "Succeeded"
            return self.table_wire(table)

    def put_route_table_http(
        self, sub: str, rg: str, name: str, body: Any, *, api_version: str, path: str, if_match: str | None
    ) -> Reply:
        with self._lock:
            self._advance()
            self._resource_group(sub, rg)
            stored, routes = self._validated_table(sub, rg, name, body, True)
            table = self._route_tables.get(_key(sub, rg, name))
            self._check_if_match(if_match, table.etag if table else None)
            lock = _key("routeTable", sub, rg, name)
            if table is not None and table.state in BUSY_STATES:
                raise self._conflict(sub, lock)
            created = table is None
            if table is None:
                table = self._route_tables[_key(sub, rg, name)] = RouteTable(sub, rg, name, stored, routes)
            table.body, table.routes, table.etag, table.state = stored, routes, new_etag(), "Updating"
            for route in routes.values():
                route.state = "Updating"
            target = table

            def done(outcome: str) -> None:
                target.state, target.etag = outcome, new_etag()
                for route in target.routes.values():
                    route.state, route.etag = outcome, new_etag()

            op = self._start_operation(
                lock, stored["location"], api_version, "PUT", path, done, ("InternalServerError", "An error occurred.")
            )
            return self._lro_reply(201 if created else 200, self.table_wire(table), sub, op)

    def get_route_table(self, sub: str, rg: str, name: str) -> dict[str, Any]:
        with self._lock:
            self._advance()
            return self.table_wire(self._table(sub, rg, name))

    def find_route_table(self, sub: str, rg: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            self._advance()
            table = self._route_tables.get(_key(sub, rg, name))
            return self.table_wire(table) if table else None

    def list_route_tables(self, sub: str, rg: str | None) -> list[dict[str, Any]]:
        with self._lock:
            self._advance()
            if rg is not None:
                self._resource_group(sub, rg)
            found = [
                t
                for k, t in self._route_tables.items()
                if k[0] == sub.casefold() and (rg is None or k[1] == rg.casefold())
            ]
            return [self.table_wire(t) for t in sorted(found, key=lambda t: (t.rg.casefold(), t.name.casefold()))]

    def put_route(
        self, sub: str, rg: str, table_name: str, name: str, body: Any, *, validate_body: bool = True
    ) -> dict[str, Any]:
        with self._lock:
            self._advance()
            table = self._parent_table(sub, rg, table_name, "write")
            stored = self._validated_route(table.id, name, body, validate_body)
            if validate_body:
                self._check_route_limits(table, name, stored)
            route = table.routes.setdefault(name.casefold(), Route(name, stored))
            route.properties, route.etag, route.state = stored, new_etag(), "Succeeded"
            table.etag = new_etag()
            return self._route_wire(table, route)

    def _check_route_limits(self, table: RouteTable, name: str, properties: dict[str, Any]) -> None:
        proposed = {key: route.properties for key, route in table.routes.items()}
        proposed[name.casefold()] = properties
        validate.check_route_set(table.id, proposed, self._is_service_tag_for(table.id))

    def put_route_http(
        self,
        sub: str,
        rg: str,
        table_name: str,
        name: str,
        body: Any,
        *,
        api_version: str,
        path: str,
        if_match: str | None,
    ) -> Reply:
        with self._lock:
            self._advance()
            table = self._parent_table(sub, rg, table_name, "write")
            stored = self._validated_route(table.id, name, body, True)
            existing = table.routes.get(name.casefold())
            self._check_if_match(if_match, existing.etag if existing else None)
            self._check_route_limits(table, name, stored)
            lock = _key("routeTable", sub, rg, table_name)
            if table.state in BUSY_STATES or (existing is not None and existing.state in BUSY_STATES):
                raise self._conflict(sub, lock)
            route = table.routes.setdefault(name.casefold(), Route(name, stored))
            route.properties, route.etag, route.state = stored, new_etag(), "Updating"
            table.state, table.etag = "Updating", new_etag()

            def done(outcome: str) -> None:
                route.state, route.etag = outcome, new_etag()
                table.state, table.etag = outcome, new_etag()

            op = self._start_operation(
                lock,
                table.body.get("location", ""),
                api_version,
                "PUT",
                path,
                done,
                ("InternalServerError", "An error occurred."),
            )
            return self._lro_reply(200 if existing else 201, self._route_wire(table, route), sub, op)

    def delete_route_http(
        self, sub: str, rg: str, table_name: str, name: str, *, api_version: str, path: str, if_match: str | None
    ) -> Reply:
        with self._lock:
            self._advance()
            table = self._parent_table(sub, rg, table_name, "delete")
            route = table.routes.get(name.casefold())
            if route is None:
                return Reply(204)
            self._check_if_match(if_match, route.etag)
            lock = _key("routeTable", sub, rg, table_name)
            if table.state in BUSY_STATES or route.state in BUSY_STATES:
                raise self._conflict(sub, lock)
            route.state, route.etag = "Deleting", new_etag()
            table.state, table.etag = "Updating", new_etag()

            def done(outcome: str) -> None:
                if outcome == "Succeeded":
                    table.routes.pop(route.name.casefold(), None)
                else:
                    route.state, route.etag = outcome, new_etag()
                table.state, table.etag = outcome, new_etag()

            op = self._start_operation(
                lock,
                table.body.get("location", ""),
                api_version,
                "DELETE",
                path,
                done,
                ("InternalServerError", "An error occurred."),
            )
            return self._lro_reply(202, None, sub, op, delete=True)

    def get_route(self, sub: str, rg: str, table_name: str, name: str) -> dict[str, Any]:
        with self._lock:
            self._advance()
            table = self._table(sub, rg, table_name)
            route = table.routes.get(name.casefold())
            if route is None:
                raise child_not_found(f"{table.id}/routes/{name}")
            return self._route_wire(table, route)

    def find_route(self, sub: str, rg: str, table_name: str, name: str) -> dict[str, Any] | None:
        with self._lock:
            self._advance()
            table = self._route_tables.get(_key(sub, rg, table_name))
            route = table.routes.get(name.casefold()) if table else None
            return self._route_wire(table, route) if table and route else None

    def list_routes(self, sub: str, rg: str, table_name: str) -> list[dict[str, Any]]:
        with self._lock:
            self._advance()
            table = self._table(sub, rg, table_name)
            return [self._route_wire(table, r) for r in sorted(table.routes.values(), key=lambda r: r.name.casefold())]

    def delete_route(self, sub: str, rg: str, table_name: str, name: str) -> None:
        with self._lock:
            self._advance()
            table = self._table(sub, rg, table_name)
            table.routes.pop(name.casefold(), None)
            table.etag = new_etag()

    # ------------------------------------------------------------------------------------------
    # IP groups (synchronous PUT: 200/201 with provisioningState Succeeded, which the SDK treats as done)

    def _ip_group_wire(self, group: IpGroup) -> dict[str, Any]:
        body = copy.deepcopy(group.body)
        props = body["properties"]
        props.setdefault("ipAddresses", [])
        props.update({"provisioningState": "Succeeded", "firewalls": [], "firewallPolicies": []})
        return {"name": group.name, "id": group.id, "type": IP_GROUP_TYPE, "etag": group.etag, **body}

    def put_ip_group(self, sub: str, rg: str, name: str, body: Any, *, seeding: bool) -> Reply:
        with self._lock:
            body = _require_object(body)
            if seeding:
                self._ensure_resource_group(sub, rg, body.get("location"))
            self._resource_group(sub, rg)
            validate.check_name(
                name,
                "IP Group",
                resource_id=f"/subscriptions/{sub}/resourceGroups/{rg}/providers/{IP_GROUP_TYPE}/{name}",
            )
            _require_location(body)
            for address in (body.get("properties") or {}).get("ipAddresses") or []:
                if not isinstance(address, str) or address == "*" or not validate.is_ip_or_range(address):
                    raise bad_request(
                        "InvalidIpAddressOrRange", f"IP Group {name}: invalid IP address or range {address}."
                    )
            stored = _writable(
                body, frozenset({"provisioningState", "firewalls", "firewallPolicies"}), ("location", "tags")
            )
            existing = self._ip_groups.get(_key(sub, rg, name))
            record = self._ip_groups[_key(sub, rg, name)] = IpGroup(sub, rg, name, stored)
            return Reply(200 if existing else 201, self._ip_group_wire(record))

    def get_ip_group(self, sub: str, rg: str, name: str) -> dict[str, Any]:
        with self._lock:
            self._resource_group(sub, rg)
            record = self._ip_groups.get(_key(sub, rg, name))
            if record is None:
                raise resource_not_found(IP_GROUP_TYPE, name, rg)
            return self._ip_group_wire(record)

    # ------------------------------------------------------------------------------------------
    # Azure ML workspace dependencies

    def seed_workspace_dependencies(self, sub: str, rg: str, workspace: str, body: dict[str, Any] | None) -> None:
        with self._lock:
            self._ensure_resource_group(sub, rg, None)
            self._workspaces[_key(sub, rg, workspace)] = copy.deepcopy(
                body if body is not None else self.reference.azureml_dependencies()
            )

    def workspace_dependencies(self, sub: str, rg: str, workspace: str) -> dict[str, Any]:
        with self._lock:
            self._resource_group(sub, rg)
            body = self._workspaces.get(_key(sub, rg, workspace))
            if body is None:
                raise resource_not_found("Microsoft.MachineLearningServices/workspaces", workspace, rg)
            return copy.deepcopy(body)
