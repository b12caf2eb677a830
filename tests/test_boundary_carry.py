"""F7: foreign collections inside the owned group are carried through as the raw JSON they came in: after our
PUT the emulator holds them exactly as before, whatever their type and whatever fields amlfw does not model."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from reconciler.arm import group_from_arm, group_to_arm
from reconciler.engine import reconcile_target
from tests.emulator import Emulator
from tests.emulator.pytest_plugin import *  # noqa: F403
from tests.engine_support import RG, SUB, compiled, group, seed_policy, unique, write_config

FOREIGN_COLLECTIONS: list[dict[str, Any]] = [
    {   # a NAT collection: a type amlfw does not model, with its own action and rule type
        "ruleCollectionType": "FirewallPolicyNatRuleCollection",
        "name": "team-dnat",
        "priority": 110,
        "action": {"type": "DNAT"},
        "rules": [{"ruleType": "NatRule", "name": "rdp", "ipProtocols": ["TCP"], "sourceAddresses": ["*"],
                   "destinationAddresses": ["203.0.113.10"], "destinationPorts": ["3389"],
                   "translatedAddress": "10.0.0.4", "translatedPort": "3389"}],
    },
    {   # a filter collection whose rules set fields amlfw does not model, in an order amlfw would not write
        "rules": [
            {"name": "geo", "ruleType": "NetworkRule", "ipProtocols": ["TCP", "UDP"],
             "destinationPorts": ["443", "80"], "sourceAddresses": ["10.0.0.0/8"],
             "destinationAddresses": ["192.0.2.1"], "description": "kept as written"},
        ],
        "priority": 120,
        "name": "team-filter",
        "action": {"type": "Deny"},
        "ruleCollectionType": "FirewallPolicyFilterRuleCollection",
    },
    {
        "ruleCollectionType": "FirewallPolicyFilterRuleCollection", "name": "team-app", "priority": 125,
        "action": {"type": "Allow"},
        "rules": [{"ruleType": "ApplicationRule", "name": "headers", "sourceAddresses": ["10.1.0.0/16"],
                   "protocols": [{"port": 443, "protocolType": "Https"}], "targetFqdns": ["b.example.org",
                                                                                       "a.example.org"],
                   "httpHeadersToInsert": [{"header": "X-Team", "value": "blue"}]}],
    },
]


def _add_foreign_and_drift(emu: Emulator, policy: str) -> None:
    """Another tool adds its collections to our group and deletes one of our rules (so the next pass PUTs)."""
    doc = group(emu, policy)
    assert doc is not None
    ours = doc["properties"]["ruleCollections"]
    ours[0]["rules"] = ours[0]["rules"][1:]
    emu.put_rule_collection_group(SUB, RG, policy, "azureml-egress", {
        "properties": {"priority": 300, "ruleCollections": [*ours, *copy.deepcopy(FOREIGN_COLLECTIONS)]}})


def _foreign_of(doc: dict[str, Any] | None) -> list[dict[str, Any]]:
    assert doc is not None
    return [c for c in doc["properties"]["ruleCollections"] if c["name"].startswith("team-")]


def test_foreign_collections_come_back_identical_after_our_put(emulator: Emulator, arm_env: dict[str, str],
                                                               tmp_path: Path) -> None:
    policy = unique("fwpol")
    seed_policy(emulator, policy)
    target, desired = compiled(write_config(tmp_path, emulator, policy))
    assert reconcile_target(target, desired, dry_run=False).status == "applied"
    _add_foreign_and_drift(emulator, policy)
    before = _foreign_of(group(emulator, policy))
    assert len(before) == len(FOREIGN_COLLECTIONS)
    outcome = reconcile_target(target, desired, dry_run=False)
    assert outcome.status == "applied", outcome.error
    assert outcome.group_written
    after = _foreign_of(group(emulator, policy))
    # byte-identical: same keys in the same order, same values
    assert json.dumps(after) == json.dumps(before)
    again = reconcile_target(target, desired, dry_run=True)
    assert again.status == "in_sync", again.plan


def test_a_collection_of_an_unknown_type_is_carried_through_raw() -> None:
    """A type no API version amlfw knows, with unknown fields at every level, survives parse -> body unchanged."""
    future = {"ruleCollectionType": "FirewallPolicyFutureRuleCollection", "name": "team-future", "priority": 130,
              "mode": {"kind": "shadow", "weights": [1, 2.5, None]},
              "rules": [{"ruleType": "FutureRule", "name": "f1", "selector": {"labels": {"a": "b"}}}]}
    noaction = {"ruleCollectionType": "FirewallPolicyFilterRuleCollection", "name": "team-noaction",
                "priority": 140, "rules": []}
    raw = {"name": "azureml-egress", "properties": {"priority": 300, "ruleCollections": [future, noaction]}}
    group_model = group_from_arm(json.loads(json.dumps(raw)))
    body = group_to_arm(group_model)
    assert body["properties"]["ruleCollections"] == [future, noaction]
    assert json.dumps(body["properties"]["ruleCollections"]) == json.dumps([future, noaction])
    assert "action" not in body["properties"]["ruleCollections"][1], "no action is injected"
