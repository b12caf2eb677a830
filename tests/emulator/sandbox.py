"""Try your own configuration without Azure: seed what a config points at, and write a copy that points here.

``python -m tests.emulator --seed-config my.yaml`` reads ``my.yaml`` with amlfw's own loader (so a mistake in
it is the same one-line error amlfw gives), then seeds, for every target:

- the cloud of each subscription (service tags are checked against that cloud's list), the resource groups of
  the policy, the route table, the IP groups and the workspaces, with
  ``Microsoft.Network`` registered in each subscription;
- the firewall policy itself: the tier the config declares, DNS proxy on, and for ``tls_inspection: true`` a
  (fake) TLS inspection CA, so that FQDN network rules and URL paths are accepted as in a real hub;
- the route table (empty), and every IP group a workspace names (one placeholder range);
- the Azure ML dependency list of each workspace that gives its ``resource_group`` (for ``amlfw deps``).

Nothing of amlfw's own is seeded: the first ``amlfw reconcile --once --dry-run`` shows everything to create.

It writes ``<state-dir>/sandbox.yaml``, the config with ``arm_endpoint`` set to the emulator on every target
(and ``allow_custom_arm_endpoint: true``, which a non-cloud endpoint needs)
(plus ``azure.polling_interval: 1`` where the config leaves it at the 30 s default), and ``<state-dir>/env.sh``
with the variables the Azure SDK needs to trust and sign in to the emulator.
"""

from __future__ import annotations

import copy
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from reconciler.catalogue import CatalogueStore
from reconciler.config import ResourceRef, Target, load_config

if TYPE_CHECKING:
    from .api import Emulator

FAKE_CA = {"name": "sandbox-ca", "keyVaultSecretId": "https://sandbox-kv.vault.azure.net/secrets/ca"}
PLACEHOLDER_RANGE = "10.255.0.0/24"


@dataclass(frozen=True)
class Sandbox:
    config: Path
    env_file: Path
    seeded: tuple[str, ...]  # one line per resource, for the console


def _ip_group_ref(resource_id: str) -> ResourceRef:
    parts = resource_id.strip("/").split("/")
    lower = [p.lower() for p in parts]
    return ResourceRef(parts[lower.index("subscriptions") + 1], parts[lower.index("resourcegroups") + 1], parts[-1])


def _location(target: Target) -> str:
    return target.workspaces[0].region if target.workspaces else "westus2"


def seed_targets(emulator: Emulator, targets: tuple[Target, ...]) -> list[str]:
    """Seed what the targets point at; returns what was created, one line each. Idempotent per resource."""
    done: set[tuple[str, ...]] = set()
    lines: list[str] = []

    def once(key: tuple[str, ...], line: str) -> bool:
        if key in done:
            return False
        done.add(key)
        lines.append(line)
        return True

    def resource_group(sub: str, rg: str, location: str, cloud: str) -> None:
        if once(("cloud", sub.lower()), f"subscription {sub} in {cloud}"):
            emulator.set_subscription_cloud(sub, cloud)
        if once(("rg", sub.lower(), rg.lower()), f"resource group {sub}/{rg}"):
            emulator.add_resource_group(sub, rg, location)
        if once(("provider", sub.lower()), f"provider Microsoft.Network registered in {sub}"):
            emulator.register_provider(sub, "Microsoft.Network")

    for target in targets:
        location = _location(target)
        policy = target.policy
        resource_group(policy.subscription_id, policy.resource_group, location, target.cloud)
        if once(("policy", policy.subscription_id.lower(), policy.resource_group.lower(), policy.name.lower()),
                f"firewall policy {policy.resource_group}/{policy.name} ({target.tier}, DNS proxy on"
                f"{', TLS inspection CA' if target.tls_inspection else ''})"):
            properties: dict[str, Any] = {"sku": {"tier": target.tier}, "dnsSettings": {"enableProxy": True}}
            if target.tls_inspection:
                properties["transportSecurity"] = {"certificateAuthority": dict(FAKE_CA)}
            emulator.put_policy(policy.subscription_id, policy.resource_group, policy.name,
                                {"location": location, "properties": properties})
        table = target.route_table
        if table is not None:
            resource_group(table.subscription_id, table.resource_group, location, target.cloud)
            if once(("rt", table.subscription_id.lower(), table.resource_group.lower(), table.name.lower()),
                    f"route table {table.resource_group}/{table.name}"):
                emulator.put_route_table(table.subscription_id, table.resource_group, table.name,
                                         {"location": location, "properties": {}})
        for workspace in target.workspaces:
            for group_id in workspace.source_ip_groups:
                ref = _ip_group_ref(group_id)
                resource_group(ref.subscription_id, ref.resource_group, location, target.cloud)
                if once(("ipg", group_id.lower()), f"IP group {ref.resource_group}/{ref.name} ({PLACEHOLDER_RANGE})"):
                    emulator.put_ip_group(ref.subscription_id, ref.resource_group, ref.name,
                                          {"location": location, "properties": {"ipAddresses": [PLACEHOLDER_RANGE]}})
            if workspace.resource_group:
                sub = workspace.subscription_id or target.subscription_id
                resource_group(sub, workspace.resource_group, workspace.region, target.cloud)
                if once(("ws", sub.lower(), workspace.resource_group.lower(), workspace.name.lower()),
                        f"Azure ML workspace {workspace.resource_group}/{workspace.name} (the official dependency "
                        "example)"):
                    emulator.seed_workspace_dependencies(sub, workspace.resource_group, workspace.name)
    return lines


def sandbox_document(raw: Any, base_url: str) -> Any:
    """The config document with every target pointed at the emulator (``raw`` is the parsed YAML, not changed)."""
    document = copy.deepcopy(raw)

    def point(target: dict[str, Any]) -> None:
        target["arm_endpoint"] = base_url
        target["allow_custom_arm_endpoint"] = True  # the emulator is not a cloud's Resource Manager
        azure = target.setdefault("azure", {})
        if isinstance(azure, dict):
            azure.setdefault("polling_interval", 1)

    if isinstance(document.get("targets"), list):
        for item in document["targets"]:
            if isinstance(item, dict):
                point(item)
    else:
        point(document)
    return document


def seed_config(emulator: Emulator, config_path: Path, state_dir: Path,
                catalogue_dir: Path | None = None) -> Sandbox:
    """Seed ``config_path``'s resources and write ``sandbox.yaml`` and ``env.sh`` into ``state_dir``.

    Raises ``reconciler.errors.UserError`` (one line) when the configuration itself is invalid.
    """
    store = CatalogueStore(catalogue_dir)
    config = load_config(config_path, store.get)  # the product's own validation, and its own error lines
    seeded = seed_targets(emulator, config.targets)
    raw = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    sandbox = state_dir / "sandbox.yaml"
    header = (f"# amlfw sandbox: {config_path.resolve()} pointed at the local emulator {emulator.base_url}.\n"
              "# Generated by `python -m tests.emulator --seed-config`; never use it against Azure.\n")
    sandbox.write_text(header + yaml.safe_dump(sandbox_document(raw, emulator.base_url), sort_keys=False),
                       encoding="utf-8")
    env_file = state_dir / "env.sh"
    env = {k: v for k, v in emulator.env().items() if k != "AMLFW_ARM_ENDPOINT"}  # sandbox.yaml carries it
    env_file.write_text("".join(f"export {k}={shlex.quote(v)}\n" for k, v in sorted(env.items())), encoding="utf-8")
    return Sandbox(config=sandbox, env_file=env_file, seeded=tuple(seeded))
