"""Helpers for engine tests: seed the emulator, build targets that point at it."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import yaml

from reconciler.catalogue import CatalogueStore
from reconciler.compile import compile_target
from reconciler.config import Target, load_config
from reconciler.model import DesiredTarget
from tests.emulator import Emulator

SUB = "00000000-0000-0000-0000-0000000000aa"
RG = "rg-hub"
RT_RG = "rg-spoke"
STORE = CatalogueStore()
BASELINE = "azureml-2021.11"
FAST_AZURE = {"polling_interval": 0, "retry_total": 2, "retry_backoff_max": 0.1, "write_backoff_initial": 0.01,
              "write_backoff_max": 0.05, "settle_poll": 0.01, "write_timeout": 60}

FOREIGN_GROUP: dict[str, Any] = {
    "properties": {
        "priority": 200,
        "ruleCollections": [{
            "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
            "name": "platform-dns",
            "priority": 100,
            "action": {"type": "Allow"},
            "rules": [{"ruleType": "NetworkRule", "name": "allow-dns", "ipProtocols": ["UDP"],
                       "sourceAddresses": ["10.0.0.0/8"], "destinationAddresses": ["168.63.129.16"],
                       "destinationPorts": ["53"]}],
        }],
    },
}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def seed_policy(emu: Emulator, name: str, *, dns_proxy: bool = True, tier: str = "Standard",
                foreign: bool = True, route_table: str | None = None) -> None:
    emu.add_resource_group(SUB, RG)
    emu.add_resource_group(SUB, RT_RG)
    emu.register_provider(SUB, "Microsoft.Network")
    emu.put_policy(SUB, RG, name, {"location": "westus2",
                                   "properties": {"sku": {"tier": tier}, "dnsSettings": {"enableProxy": dns_proxy}}})
    if foreign:
        emu.put_rule_collection_group(SUB, RG, name, "platform-baseline", json.loads(json.dumps(FOREIGN_GROUP)))
    if route_table:
        emu.put_route_table(SUB, RT_RG, route_table, {
            "location": "westus2",
            "properties": {"routes": [{"name": "default-to-firewall", "properties": {
                "addressPrefix": "0.0.0.0/0", "nextHopType": "VirtualAppliance", "nextHopIpAddress": "10.0.1.4"}}]},
        })


def write_config(tmp: Path, emu: Emulator, policy: str, *, features: list[str] | None = None,
                 route_table: str | None = None, workspaces: list[dict[str, Any]] | None = None,
                 extra: dict[str, Any] | None = None) -> Path:
    doc: dict[str, Any] = {
        "catalogue": BASELINE,  # pinned: tests name rules of this version
        "cloud": "AzureCloud",
        "arm_endpoint": emu.base_url,
        "allow_custom_arm_endpoint": True,  # the emulator is not a cloud's Resource Manager
        "subscription_id": SUB,
        "firewall_policy": {"resource_group": RG, "name": policy},
        "rule_collection_group": {"name": "azureml-egress", "priority": 300},
        "workspaces": workspaces or [{
            "name": "mlws-prod", "region": "westus2", "storage_account": "mlwsprodsa",
            "source_addresses": ["10.20.0.0/24"],
            "features": features or ["compute", "notebooks", "python_packages", "private_endpoint"],
        }],
        "azure": FAST_AZURE,
    }
    if route_table:
        doc["route_table"] = {"resource_group": RT_RG, "name": route_table}
    doc.update(extra or {})
    path = tmp / f"{policy}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def compiled(path: Path) -> tuple[Target, DesiredTarget]:
    config = load_config(path, STORE.get)
    target = config.targets[0]
    return target, compile_target(target, STORE.get(target.catalogue_version))


def group(emu: Emulator, policy: str, name: str = "azureml-egress") -> dict[str, Any] | None:
    return emu.get_rule_collection_group(SUB, RG, policy, name)


def writes(emu: Emulator, policy: str | None = None) -> list[Any]:
    return [r for r in emu.requests() if r.method in ("PUT", "DELETE", "PATCH", "POST")
            and (policy is None or f"/{policy}/" in r.path + "/")]
