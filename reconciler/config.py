"""Load and validate amlfw configuration files.

A file holds either one target (the keys below at the top level) or a fleet (`targets: [...]`, with an
optional `defaults:` mapping merged into each target). Every error names the file, the key and the reason.

    catalogue: azureml-2021.11          # optional: catalogue version (default: the newest)
    cloud: AzureCloud                   # AzureCloud | AzureUSGovernment | AzureChinaCloud
    arm_endpoint: https://...           # optional: the cloud's Resource Manager endpoint (another origin
    allow_custom_arm_endpoint: false    #   needs this set to true: the emulator, a sandbox)
    subscription_id: <uuid>
    firewall_policy: {resource_group: rg-hub, name: fwpol-hub}
    firewall: {tier: Standard, tls_inspection: false}     # optional: what the policy offers
    rule_collection_group: {name: azureml-egress, priority: 300}
    workspaces: [...]
    route_table: {resource_group: rg-spoke, name: rt-aml-compute, route_prefix: amlfw-}   # optional
    credential: {kind: default}         # optional: default | managed_identity | workload_identity
    azure: {polling_interval: 30, retry_total: 3}          # optional SDK settings

Either form may also have a top-level `daemon:` section (interval, listen address, HA lease...), read and
validated by `reconciler.daemon` only when `amlfw reconcile` runs as a daemon; see docs/operations.md.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from reconciler.errors import ConfigError, quote
from reconciler.model import ALLOW_BY, CLOUDS, Catalogue
from reconciler.yamlio import UnreadableFile, load_yaml, read_text

UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
# Azure's naming rule for firewall policies, rule collection groups, route tables and routes.
AZURE_NAME_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,78}[A-Za-z0-9_])?$")
RESOURCE_GROUP_RE = re.compile(r"^[-\w._()]{1,90}$")
NAME_MAX = 256  # target names and other free text: labels in logs and metrics, never megabytes
WORKSPACE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{1,32}$")
STORAGE_RE = re.compile(r"^[a-z0-9]{3,24}$")
# Azure's rule for resource group names: 1-90 letters, digits, '_', '-', '.', '(' and ')', not ending in '.'
# (so never '.' or '..': in an id those would walk up the URL path)
_RG_PATTERN = r"[-\w._()]{0,89}[-\w_()]"
KEY_VAULT_RE = re.compile(r"^[A-Za-z](?!.*--)[A-Za-z0-9-]{1,22}[A-Za-z0-9]$")
REGISTRY_RE = re.compile(r"^[A-Za-z0-9]{5,50}$")
WORKSPACE_ID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
IP_GROUP_ID_RE = re.compile(
    r"^/subscriptions/[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    rf"/resourceGroups/{_RG_PATTERN}"
    r"/providers/Microsoft\.Network/ipGroups/[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,78}[A-Za-z0-9_])?$",
    re.IGNORECASE,
)
PRIORITY_MIN, PRIORITY_MAX = 100, 65000
# Each cloud's Resource Manager origin (reconciler.azure.clients.ENDPOINTS holds the same, with token scopes).
# Any other arm_endpoint receives the bearer token, so it needs `allow_custom_arm_endpoint: true`.
ARM_ORIGINS = {
    "AzureCloud": "https://management.azure.com",
    "AzureUSGovernment": "https://management.usgovcloudapi.net",
    "AzureChinaCloud": "https://management.chinacloudapi.cn",
}
DAEMON_KEY = "daemon"  # top-level section for the daemon (see reconciler.daemon); not part of any target
ALL_FEATURES = "all"
TIERS = ("Basic", "Standard", "Premium")
CREDENTIAL_KINDS = ("default", "managed_identity", "workload_identity")
_AZURE_RANGES: dict[str, tuple[float, float]] = {
    "polling_interval": (0, 600), "retry_total": (0, 20), "retry_backoff_max": (0, 600),
    "connection_timeout": (0.1, 600), "read_timeout": (0.1, 3600), "write_attempts": (1, 50),
    "write_backoff_initial": (0, 600), "write_backoff_max": (0, 3600), "write_timeout": (1, 86400),
    "settle_poll": (0, 600), "max_response_bytes": (65536, 1 << 30), "progress_interval": (0.1, 3600),
}

_TARGET_KEYS = {
    "name", "catalogue", "cloud", "arm_endpoint", "allow_custom_arm_endpoint", "subscription_id", "firewall_policy",
    "firewall", "rule_collection_group", "workspaces", "route_table", "credential", "azure", "limits",
    "accept_warnings", "allow_by",
}
_WORKSPACE_KEYS = {
    "name", "region", "storage_account", "source_addresses", "source_ip_groups", "features", "priority",
    "resource_group", "subscription_id", "allow_by", "key_vault", "container_registry", "workspace_id",
    "allow_broad", "extra_rules",
}
_EXTRA_KINDS = {"fqdn": "fqdn", "service_tag": "service_tag", "url": "url_path", "address": "address"}


@dataclass(frozen=True, slots=True)
class ResourceRef:
    subscription_id: str
    resource_group: str
    name: str


@dataclass(frozen=True, slots=True)
class Workspace:
    name: str
    region: str
    features: frozenset[str]
    storage_account: str | None = None
    source_addresses: tuple[str, ...] = ()
    source_ip_groups: tuple[str, ...] = ()
    priority: int | None = None
    resource_group: str | None = None  # the workspace's own resource group: enables `amlfw deps`
    subscription_id: str | None = None  # the workspace's subscription, when not the target's
    key: str = ""
    allow_by: str | None = None  # service_tags | fqdns | both; None: the target's
    key_vault: str | None = None  # {keyvault}: the workspace's key vault name
    container_registry: str | None = None  # {registry}: the workspace's container registry name
    workspace_id: str | None = None  # {workspace_id}: the workspace's id (a GUID)
    requested: frozenset[str] = frozenset()  # the features named in the file (not via `all`, not implied)
    allow_broad: bool = False  # accept rules to *, 0.0.0.0/0, Internet, AzureCloud, all ports, bare * FQDN
    extra_rules: tuple[ExtraRule, ...] = ()


@dataclass(frozen=True, slots=True)
class ExtraRule:
    """One of a workspace's `extra_rules`: compiled like a catalogue entry, shown as `user`."""

    kind: str  # fqdn | wildcard_fqdn | service_tag | url_path | address
    value: str
    ports: tuple[str, ...]  # PROTO:PORTS, as in the catalogue
    key: str  # where it is in the file, for errors


@dataclass(frozen=True, slots=True)
class AzureSettings:
    """SDK settings (per-request retries for reads, LRO polling) and amlfw's own write retries."""

    polling_interval: float = 30.0
    retry_total: int = 3
    retry_backoff_max: float = 60.0
    connection_timeout: float = 10.0  # short, so a silent endpoint ends in an error that names it, not a hang
    read_timeout: float = 60.0
    write_attempts: int = 8
    write_backoff_initial: float = 2.0
    write_backoff_max: float = 60.0
    write_timeout: float = 1800.0
    settle_poll: float = 10.0
    # a larger answer is refused before it is parsed (a 78 MB body once cost 1.4 GB of memory as SDK models);
    # 32 MiB holds a LIST page of many 2 MB groups
    max_response_bytes: int = 32 * 1024 * 1024
    progress_interval: float = 10.0  # `plan`/`apply`/`--once`: a "still updating" line this often during a write


@dataclass(frozen=True, slots=True)
class LimitSettings:
    """Azure Firewall limits checked in pre-flight; they depend on the policy's age, so they are settings."""

    max_group_bytes: int = 1_400_000  # documented 2 MB; about 1.4 MB usable in practice (research: PR #95557)
    max_groups: int = 50  # 50 for policies created before July 2022; newer policies allow more


@dataclass(frozen=True, slots=True)
class CredentialSettings:
    kind: str = "default"
    client_id: str | None = None


@dataclass(frozen=True, slots=True)
class Target:
    name: str
    cloud: str
    subscription_id: str
    policy: ResourceRef
    group_name: str
    group_priority: int
    workspaces: tuple[Workspace, ...]
    catalogue_version: str
    catalogue_pinned: bool = True
    arm_endpoint: str | None = None
    tier: str = "Standard"
    tls_inspection: bool = False
    route_table: ResourceRef | None = None
    route_prefix: str = "amlfw-"
    credential: CredentialSettings = field(default_factory=CredentialSettings)
    azure: AzureSettings = field(default_factory=AzureSettings)
    limits: LimitSettings = field(default_factory=LimitSettings)
    source_file: str = ""
    key: str = ""
    accept_warnings: tuple[str, ...] = ()  # warning codes or catalogue entry ids acknowledged in the config
    allow_by: str = "service_tags"  # the default strategy of its workspaces


@dataclass(frozen=True, slots=True)
class Config:
    path: str
    targets: tuple[Target, ...]


CatalogueResolver = Callable[[str | None], Catalogue]


class _Ctx:
    """Where we are in the file, for error messages."""

    def __init__(self, file: str) -> None:
        self.file = file

    def fail(self, key: str, reason: str) -> ConfigError:
        return ConfigError(self.file, key, reason)


def read_yaml(path: Path) -> Any:
    file = str(path)
    try:
        text = read_text(path)
    except UnreadableFile as exc:
        raise ConfigError(file, "", str(exc)) from None
    try:
        return load_yaml(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise ConfigError(file, "", f"YAML syntax error at {where}: {exc.problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(file, "", f"YAML syntax error: {exc}") from None


def load_config(path: str | Path, resolve_catalogue: CatalogueResolver) -> Config:
    """Read, validate and normalise a configuration file. Raises ConfigError on any mistake."""
    p = Path(path)
    ctx = _Ctx(str(path))
    raw = read_yaml(p)
    if raw is None:
        raise ctx.fail("", "the file is empty")
    if not isinstance(raw, dict):
        raise ctx.fail("", f"expected a mapping at the top level, got {_type(raw)}")
    # `daemon:` configures `amlfw reconcile` without --once; reconciler.daemon validates it
    raw = {k: v for k, v in raw.items() if k != DAEMON_KEY}
    if "targets" in raw:
        extra = set(raw) - {"targets", "defaults"}
        if extra:
            raise ctx.fail(sorted(extra)[0], "unknown key beside 'targets' (allowed: targets, defaults, daemon)")
        defaults = raw.get("defaults") or {}
        if not isinstance(defaults, dict):
            raise ctx.fail("defaults", f"expected a mapping, got {_type(defaults)}")
        items = raw["targets"]
        if not isinstance(items, list) or not items:
            raise ctx.fail("targets", "expected a non-empty list of targets")
        targets = []
        for i, item in enumerate(items):
            key = f"targets[{i}]"
            if not isinstance(item, dict):
                raise ctx.fail(key, f"expected a mapping, got {_type(item)}")
            targets.append(_target(ctx, key, {**defaults, **item}, resolve_catalogue))
    else:
        targets = [_target(ctx, "", raw, resolve_catalogue)]
    _check_fleet(ctx, targets)
    return Config(path=str(path), targets=tuple(targets))


def _check_fleet(ctx: _Ctx, targets: list[Target]) -> None:
    seen_names: dict[str, str] = {}
    seen_groups: dict[tuple[str, str, str, str], str] = {}
    seen_priorities: dict[tuple[str, str, str, int], str] = {}
    seen_tables: list[tuple[tuple[str, str, str], str, str]] = []
    for t in targets:
        pol = (t.policy.subscription_id.lower(), t.policy.resource_group.lower(), t.policy.name.lower())
        gkey = (*pol, t.group_name.lower())
        if t.name in seen_names and gkey not in seen_groups:
            raise ctx.fail(_k(t.key, "name"), f"duplicate target name {quote(t.name)} (also {seen_names[t.name]})")
        seen_names[t.name] = t.key or "the top level"
        if gkey in seen_groups:
            raise ctx.fail(
                _k(t.key, "rule_collection_group.name"),
                f"rule collection group {quote(t.group_name)} on policy {quote(t.policy.name)} is already owned by "
                f"{seen_groups[gkey]}",
            )
        seen_groups[gkey] = t.key or "the top level"
        pkey = (*pol, t.group_priority)
        if pkey in seen_priorities:
            raise ctx.fail(
                _k(t.key, "rule_collection_group.priority"),
                f"priority {t.group_priority} on policy {quote(t.policy.name)} is already used by "
                f"{seen_priorities[pkey]}",
            )
        seen_priorities[pkey] = t.key or "the top level"
        if t.route_table is not None:
            # routes are owned by name prefix: two targets sharing a table and a prefix delete each other's routes
            rt = t.route_table
            table = (rt.subscription_id.lower(), rt.resource_group.lower(), rt.name.lower())
            prefix = t.route_prefix.lower()
            for other_table, other_prefix, owner in seen_tables:
                if other_table == table and (prefix.startswith(other_prefix) or other_prefix.startswith(prefix)):
                    raise ctx.fail(
                        _k(t.key, "route_table.route_prefix"),
                        f"route table {quote(rt.name)} with route prefix {quote(t.route_prefix)} is already managed "
                        f"by {owner} "
                        f"(prefix {quote(other_prefix)}); give each target its own route_prefix",
                    )
            seen_tables.append((table, prefix, t.key or "the top level"))


def _k(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _type(value: object) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", int: "a number", float: "a number",
            bool: "a boolean", type(None): "nothing"}.get(type(value), type(value).__name__)


def _str(ctx: _Ctx, key: str, value: object, *, required: bool = True) -> str | None:
    if value is None:
        if required:
            raise ctx.fail(key, "is required")
        return None
    if not isinstance(value, str) or not value.strip():
        raise ctx.fail(key, f"expected a non-empty string, got {_type(value)}")
    if len(value) > 4096:
        raise ctx.fail(key, f"{quote(value)} is too long")
    return value.strip()


def _req_str(ctx: _Ctx, key: str, value: object) -> str:
    s = _str(ctx, key, value)
    assert s is not None
    return s


def _mapping(ctx: _Ctx, key: str, value: object, allowed: set[str], *, required: bool = True) -> dict[str, Any]:
    if value is None:
        if required:
            raise ctx.fail(key, "is required")
        return {}
    if not isinstance(value, dict):
        raise ctx.fail(key, f"expected a mapping, got {_type(value)}")
    for k in value:
        if k not in allowed:
            raise ctx.fail(_k(key, str(k)), f"unknown key (allowed: {', '.join(sorted(allowed))})")
    return value


def _priority(ctx: _Ctx, key: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ctx.fail(key, f"expected an integer priority, got {_type(value)}")
    if not PRIORITY_MIN <= value <= PRIORITY_MAX:
        raise ctx.fail(key, f"priority {value} is outside {PRIORITY_MIN}-{PRIORITY_MAX}")
    return value


def _azure_name(ctx: _Ctx, key: str, value: object, what: str) -> str:
    s = _req_str(ctx, key, value)
    if not AZURE_NAME_RE.match(s):
        raise ctx.fail(
            key,
            f"invalid {what} name {quote(s)}: 1-80 letters, digits, '_', '.', '-', starting with a letter or digit "
            "and ending with a letter, digit or '_'",
        )
    return s


def _rg(ctx: _Ctx, key: str, value: object) -> str:
    s = _req_str(ctx, key, value)
    if not RESOURCE_GROUP_RE.match(s) or s.endswith("."):
        raise ctx.fail(key, f"invalid resource group name {quote(s)}")
    return s


def _subscription(ctx: _Ctx, key: str, value: object) -> str:
    s = _req_str(ctx, key, str(value) if isinstance(value, int) else value)
    if not UUID_RE.match(s):
        raise ctx.fail(key, f"invalid subscription id {quote(s)}: expected a GUID")
    return s.lower()


def _target(ctx: _Ctx, key: str, raw: Mapping[str, Any], resolve_catalogue: CatalogueResolver) -> Target:
    for k in raw:
        if k not in _TARGET_KEYS:
            raise ctx.fail(_k(key, str(k)), f"unknown key (allowed: {', '.join(sorted(_TARGET_KEYS))})")
    cloud = _req_str(ctx, _k(key, "cloud"), raw.get("cloud"))
    if cloud not in CLOUDS:
        raise ctx.fail(_k(key, "cloud"), f"unknown cloud {quote(cloud)} (expected one of {', '.join(CLOUDS)})")
    version = _str(ctx, _k(key, "catalogue"), raw.get("catalogue"), required=False)
    try:
        catalogue = resolve_catalogue(version)
    except LookupError as exc:
        raise ctx.fail(_k(key, "catalogue"), str(exc).strip("'\"")) from None

    arm_endpoint = _str(ctx, _k(key, "arm_endpoint"), raw.get("arm_endpoint"), required=False)
    if arm_endpoint is not None:
        if not re.match(r"^https://[A-Za-z0-9.\-\[\]:]+(/.*)?$", arm_endpoint):
            raise ctx.fail(
                _k(key, "arm_endpoint"),
                f"invalid endpoint {quote(arm_endpoint)}: must be an https:// URL "
                "(bearer tokens never travel over http)",
            )
        arm_endpoint = arm_endpoint.rstrip("/")
    allow_custom = raw.get("allow_custom_arm_endpoint", False)
    if not isinstance(allow_custom, bool):
        raise ctx.fail(_k(key, "allow_custom_arm_endpoint"), f"expected true or false, got {_type(allow_custom)}")
    if arm_endpoint is not None and not allow_custom:
        _check_known_endpoint(ctx, _k(key, "arm_endpoint"), arm_endpoint, cloud)
    sub = _subscription(ctx, _k(key, "subscription_id"), raw.get("subscription_id"))

    fp = _mapping(ctx, _k(key, "firewall_policy"), raw.get("firewall_policy"),
                  {"resource_group", "name", "subscription_id"})
    policy = ResourceRef(
        subscription_id=_subscription(ctx, _k(key, "firewall_policy.subscription_id"), fp["subscription_id"])
        if "subscription_id" in fp else sub,
        resource_group=_rg(ctx, _k(key, "firewall_policy.resource_group"), fp.get("resource_group")),
        name=_azure_name(ctx, _k(key, "firewall_policy.name"), fp.get("name"), "firewall policy"),
    )
    fw = _mapping(ctx, _k(key, "firewall"), raw.get("firewall"), {"tier", "tls_inspection"}, required=False)
    tier = _str(ctx, _k(key, "firewall.tier"), fw.get("tier", "Standard"))
    if tier not in TIERS:
        raise ctx.fail(_k(key, "firewall.tier"), f"unknown tier {quote(tier)} (expected one of {', '.join(TIERS)})")
    tls = fw.get("tls_inspection", False)
    if not isinstance(tls, bool):
        raise ctx.fail(_k(key, "firewall.tls_inspection"), f"expected true or false, got {_type(tls)}")
    if tls and tier != "Premium":
        raise ctx.fail(_k(key, "firewall.tls_inspection"), "TLS inspection needs tier: Premium")

    rcg = _mapping(ctx, _k(key, "rule_collection_group"), raw.get("rule_collection_group"), {"name", "priority"})
    group_name = _azure_name(ctx, _k(key, "rule_collection_group.name"), rcg.get("name"), "rule collection group")
    group_priority = _priority(ctx, _k(key, "rule_collection_group.priority"), rcg.get("priority"))

    route_table = None
    route_prefix = "amlfw-"
    if raw.get("route_table") is not None:
        rt = _mapping(ctx, _k(key, "route_table"), raw.get("route_table"),
                      {"resource_group", "name", "subscription_id", "route_prefix"})
        route_table = ResourceRef(
            subscription_id=_subscription(ctx, _k(key, "route_table.subscription_id"), rt["subscription_id"])
            if "subscription_id" in rt else sub,
            resource_group=_rg(ctx, _k(key, "route_table.resource_group"), rt.get("resource_group")),
            name=_azure_name(ctx, _k(key, "route_table.name"), rt.get("name"), "route table"),
        )
        if "route_prefix" in rt:
            route_prefix = _req_str(ctx, _k(key, "route_table.route_prefix"), rt["route_prefix"])
            if not re.match(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$", route_prefix):
                raise ctx.fail(_k(key, "route_table.route_prefix"),
                               f"invalid route name prefix {quote(route_prefix)}")

    cred = _mapping(ctx, _k(key, "credential"), raw.get("credential"), {"kind", "client_id"}, required=False)
    kind = _str(ctx, _k(key, "credential.kind"), cred.get("kind", "default"))
    if kind not in CREDENTIAL_KINDS:
        raise ctx.fail(_k(key, "credential.kind"),
                       f"unknown credential kind {quote(kind)} (expected one of {', '.join(CREDENTIAL_KINDS)})")
    client_id = _str(ctx, _k(key, "credential.client_id"), cred.get("client_id"), required=False)
    if client_id is not None and not UUID_RE.match(client_id):
        raise ctx.fail(_k(key, "credential.client_id"), f"invalid client id {quote(client_id)}: expected a GUID")
    az = _mapping(ctx, _k(key, "azure"), raw.get("azure"), set(_AZURE_RANGES), required=False)
    defaults = AzureSettings()
    az_values: dict[str, Any] = {}
    for name, (lo, hi) in _AZURE_RANGES.items():
        value = _number(ctx, _k(key, f"azure.{name}"), az.get(name, getattr(defaults, name)), lo, hi)
        az_values[name] = int(value) if name in ("retry_total", "write_attempts", "max_response_bytes") else value
    azure = AzureSettings(**az_values)
    lim = _mapping(ctx, _k(key, "limits"), raw.get("limits"), {"max_group_bytes", "max_groups"}, required=False)
    lim_defaults = LimitSettings()
    limits = LimitSettings(
        max_group_bytes=int(_number(ctx, _k(key, "limits.max_group_bytes"),
                                    lim.get("max_group_bytes", lim_defaults.max_group_bytes), 1024, 2_097_152)),
        max_groups=int(_number(ctx, _k(key, "limits.max_groups"), lim.get("max_groups", lim_defaults.max_groups),
                               1, 100)),
    )

    accepted = _str_list(ctx, _k(key, "accept_warnings"), raw.get("accept_warnings"))
    for j, item in enumerate(accepted):
        if not item or len(item) > 200:
            raise ctx.fail(_k(key, f"accept_warnings[{j}]"), "expected a warning code or a catalogue entry id")

    ws_raw = raw.get("workspaces")
    if not isinstance(ws_raw, list) or not ws_raw:
        raise ctx.fail(_k(key, "workspaces"), "expected a non-empty list of workspaces")
    workspaces: list[Workspace] = []
    seen: dict[str, int] = {}
    for i, w in enumerate(ws_raw):
        wkey = _k(key, f"workspaces[{i}]")
        ws = _workspace(ctx, wkey, w, cloud, catalogue)
        lowered = ws.name.lower()
        if lowered in seen:
            raise ctx.fail(_k(wkey, "name"),
                           f"duplicate workspace name {quote(ws.name)} (also workspaces[{seen[lowered]}])")
        seen[lowered] = i
        workspaces.append(ws)

    allow_by = _allow_by(ctx, _k(key, "allow_by"), raw.get("allow_by")) or "service_tags"
    given_name = _str(ctx, _k(key, "name"), raw.get("name"), required=False)
    if given_name is not None and (len(given_name) > NAME_MAX or not given_name.isprintable()):
        raise ctx.fail(_k(key, "name"), f"invalid target name {quote(given_name)}: at most {NAME_MAX} printable "
                       "characters")
    name = given_name or (
        f"{policy.subscription_id}/{policy.resource_group}/{policy.name}/{group_name}"
    )
    return Target(
        name=name,
        cloud=cloud,
        subscription_id=sub,
        policy=policy,
        group_name=group_name,
        group_priority=group_priority,
        workspaces=tuple(workspaces),
        catalogue_version=catalogue.version,
        catalogue_pinned=version is not None,
        arm_endpoint=arm_endpoint,
        tier=tier,
        tls_inspection=tls,
        route_table=route_table,
        route_prefix=route_prefix,
        credential=CredentialSettings(kind=kind, client_id=client_id),
        azure=azure,
        limits=limits,
        source_file=ctx.file,
        key=key,
        accept_warnings=tuple(accepted),
        allow_by=allow_by,
    )


def url_origin(url: str) -> tuple[str, str, int] | None:
    """(scheme, host, port) of an absolute http(s) URL, lower-cased, default ports filled in; None if malformed."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or not parts.hostname:
        return None
    return scheme, parts.hostname.lower().rstrip("."), port or (443 if scheme == "https" else 80)


def _check_known_endpoint(ctx: _Ctx, key: str, endpoint: str, cloud: str) -> None:
    origin = url_origin(endpoint)
    path = urlsplit(endpoint).path.strip("/") if origin else ""
    for other, known in ARM_ORIGINS.items():
        if origin == url_origin(known) and not path:
            if other != cloud:
                raise ctx.fail(key, f"{known} is the Resource Manager endpoint of {other}, but cloud is {cloud}")
            return
    raise ctx.fail(
        key,
        f"{quote(endpoint)} is not {cloud}'s Resource Manager endpoint ({ARM_ORIGINS[cloud]}); it would receive "
        "the bearer token: set allow_custom_arm_endpoint: true if you trust it (the emulator, a sandbox)",
    )


def _short_reason(exc: Exception, value: str) -> str:
    """An exception's text without the (possibly huge) value it repeats."""
    return " ".join(str(exc).replace(repr(value), "it").replace(value, "it").split())[:120]


def _allow_by(ctx: _Ctx, key: str, value: object) -> str | None:
    s = _str(ctx, key, value, required=False)
    if s is not None and s not in ALLOW_BY:
        raise ctx.fail(key, f"unknown strategy {s!r} (expected one of {', '.join(ALLOW_BY)})")
    return s


def _bool(ctx: _Ctx, key: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise ctx.fail(key, f"expected true or false, got {_type(value)}")
    return value


def _extra_rules(ctx: _Ctx, key: str, value: object) -> tuple[ExtraRule, ...]:
    """`[{fqdn|service_tag|url|address: X, ports: [443, "UDP:123", ...], protocol?: TCP|UDP|Any}]`."""
    from reconciler.catalogue.load import check_value

    if value is None:
        return ()
    if not isinstance(value, list):
        raise ctx.fail(key, f"expected a list of rules, got {_type(value)}")
    out = []
    for i, raw in enumerate(value):
        rkey = f"{key}[{i}]"
        r = _mapping(ctx, rkey, raw, {*_EXTRA_KINDS, "ports", "protocol"})
        kinds = [k for k in _EXTRA_KINDS if k in r]
        if len(kinds) != 1:
            raise ctx.fail(rkey, "give exactly one of fqdn, service_tag, url, address")
        dest = _req_str(ctx, _k(rkey, kinds[0]), r[kinds[0]])
        kind = _EXTRA_KINDS[kinds[0]]
        if kind == "fqdn" and dest.startswith("*"):
            kind = "wildcard_fqdn"
        if kind == "address":
            if dest != "*":
                try:
                    ipaddress.ip_network(dest, strict=True)
                except ValueError as exc:
                    raise ctx.fail(_k(rkey, "address"), f"malformed address or CIDR {dest!r}: {exc}") from None
        elif dest != "*":  # a bare * is left to the guardrails, which name it
            problem = check_value(kind, dest)
            if problem or "{" in dest:
                raise ctx.fail(_k(rkey, kinds[0]), f"{dest!r}: {problem or 'placeholders are for the catalogue'}")
        proto = _str(ctx, _k(rkey, "protocol"), r.get("protocol"), required=False)
        if proto is not None and proto not in ("TCP", "UDP", "Any"):
            raise ctx.fail(_k(rkey, "protocol"), f"unknown protocol {proto!r} (expected TCP, UDP or Any)")
        ports_raw = r.get("ports")
        if not isinstance(ports_raw, list) or not ports_raw:
            raise ctx.fail(_k(rkey, "ports"), "expected a non-empty list of ports (443, \"8000-8010\", \"*\")")
        ports = []
        for j, p in enumerate(ports_raw):
            pkey = _k(rkey, f"ports[{j}]")
            text = str(p) if isinstance(p, int) and not isinstance(p, bool) else p
            if not isinstance(text, str) or not re.match(r"^(\*|\d{1,5}(-\d{1,5})?)$", text):
                raise ctx.fail(pkey, f"expected a port, a range a-b or *, got {p!r}")
            if any(part != "*" and not 0 < int(part) <= 65535 for part in text.split("-")):
                raise ctx.fail(pkey, f"port {text} outside 1-65535")
            web = proto in (None, "TCP") and text in ("80", "443") and kind in ("fqdn", "wildcard_fqdn", "url_path")
            if web:
                ports.append(f"{'Http' if text == '80' else 'Https'}:{text}")
            else:
                if kind in ("wildcard_fqdn", "url_path") and dest != "*":
                    raise ctx.fail(pkey, f"a {'wildcard FQDN' if kind == 'wildcard_fqdn' else 'URL'} works only on "
                                   "ports 80 and 443 (application rules); use an exact fqdn for other ports")
                ports.append(f"{proto or 'TCP'}:{text}")
        out.append(ExtraRule(kind=kind, value=dest, ports=tuple(ports), key=rkey))
    return tuple(out)


def _resource_name(ctx: _Ctx, key: str, value: object, pattern: re.Pattern[str], what: str) -> str | None:
    s = _str(ctx, key, value, required=False)
    if s is not None and not pattern.match(s):
        raise ctx.fail(key, f"invalid {what} {s!r}")
    return s


def _number(ctx: _Ctx, key: str, value: object, lo: float, hi: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ctx.fail(key, f"expected a number, got {_type(value)}")
    if not lo <= value <= hi:
        raise ctx.fail(key, f"{value} is outside {lo:g}-{hi:g}")
    return float(value)


def _workspace(ctx: _Ctx, key: str, raw: object, cloud: str, catalogue: Catalogue) -> Workspace:
    w = _mapping(ctx, key, raw, _WORKSPACE_KEYS)
    name = _req_str(ctx, _k(key, "name"), w.get("name"))
    if not WORKSPACE_RE.match(name):
        raise ctx.fail(_k(key, "name"), f"invalid workspace name {quote(name)}: 2-33 letters, digits, '-' or '_'")
    region = _req_str(ctx, _k(key, "region"), w.get("region")).lower().replace(" ", "")
    regions = catalogue.region_suffixes(cloud)
    if region not in regions:
        close = sorted(r for r in regions if r[:4] == region[:4])[:5]
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise ctx.fail(_k(key, "region"), f"unknown region {quote(region)} for cloud {cloud}{hint}")
    storage = _str(ctx, _k(key, "storage_account"), w.get("storage_account"), required=False)
    if storage is not None and not STORAGE_RE.match(storage):
        raise ctx.fail(_k(key, "storage_account"),
                       f"invalid storage account name {quote(storage)}: 3-24 lower-case letters and digits")
    addrs = _str_list(ctx, _k(key, "source_addresses"), w.get("source_addresses"))
    for j, a in enumerate(addrs):
        try:
            net = ipaddress.ip_network(a, strict=True)
        except ValueError as exc:
            raise ctx.fail(_k(key, f"source_addresses[{j}]"),
                           f"malformed address or CIDR {quote(a)}: {_short_reason(exc, a)}") from None
        if net.version != 4:
            raise ctx.fail(_k(key, f"source_addresses[{j}]"),
                           f"{quote(a)} is IPv6; Azure Firewall rules take IPv4 sources only")
    groups = _str_list(ctx, _k(key, "source_ip_groups"), w.get("source_ip_groups"))
    for j, g in enumerate(groups):
        if not IP_GROUP_ID_RE.match(g):
            raise ctx.fail(_k(key, f"source_ip_groups[{j}]"),
                           f"invalid IP group id {quote(g)}: expected /subscriptions/<id>/resourceGroups/<rg>/"
                           "providers/Microsoft.Network/ipGroups/<name>")
    if not addrs and not groups:
        raise ctx.fail(_k(key, "source_addresses"), "give source_addresses or source_ip_groups (or both)")
    feats_raw = _str_list(ctx, _k(key, "features"), w.get("features"))
    if not feats_raw:
        raise ctx.fail(_k(key, "features"), "expected a non-empty list of features (or [all])")
    known = catalogue.feature_names - {"baseline"}
    features: set[str] = set()
    requested: set[str] = set()
    for j, f in enumerate(feats_raw):
        if f == ALL_FEATURES:
            features |= known
        elif f in known:
            features.add(f)
            requested.add(f)
        else:
            raise ctx.fail(_k(key, f"features[{j}]"),
                           f"unknown feature {quote(f)} (expected one of {', '.join(sorted(known))}, or all)")
    features = set(catalogue.with_implied(features))  # e.g. arc_inference needs the training endpoints
    prio = w.get("priority")
    priority = _priority(ctx, _k(key, "priority"), prio) if prio is not None else None
    ws_rg = _rg(ctx, _k(key, "resource_group"), w["resource_group"]) if w.get("resource_group") is not None else None
    ws_sub = (_subscription(ctx, _k(key, "subscription_id"), w["subscription_id"])
              if w.get("subscription_id") is not None else None)
    return Workspace(
        name=name,
        region=region,
        features=frozenset(features),
        storage_account=storage,
        source_addresses=tuple(addrs),
        source_ip_groups=tuple(groups),
        priority=priority,
        resource_group=ws_rg,
        subscription_id=ws_sub,
        key=key,
        allow_by=_allow_by(ctx, _k(key, "allow_by"), w.get("allow_by")),
        requested=frozenset(requested),
        allow_broad=_bool(ctx, _k(key, "allow_broad"), w.get("allow_broad", False)),
        extra_rules=_extra_rules(ctx, _k(key, "extra_rules"), w.get("extra_rules")),
        key_vault=_resource_name(ctx, _k(key, "key_vault"), w.get("key_vault"), KEY_VAULT_RE,
                                 "key vault name (3-24 letters, digits and '-', starting with a letter)"),
        container_registry=_resource_name(ctx, _k(key, "container_registry"), w.get("container_registry"),
                                          REGISTRY_RE, "container registry name (5-50 letters and digits)"),
        workspace_id=(_resource_name(ctx, _k(key, "workspace_id"), str(w["workspace_id"]).lower(),
                                     WORKSPACE_ID_RE, "workspace id (a GUID)")
                      if w.get("workspace_id") is not None else None),
    )


def _str_list(ctx: _Ctx, key: str, value: object) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise ctx.fail(key, f"expected a list, got {_type(value)}")
    out = []
    for i, v in enumerate(value):
        if not isinstance(v, str) or not v.strip():
            raise ctx.fail(f"{key}[{i}]", f"expected a non-empty string, got {_type(v)}")
        out.append(v.strip())
    return out
