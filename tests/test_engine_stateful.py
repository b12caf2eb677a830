"""A hypothesis state machine over the real engine and the emulator: random configurations and random
manual edits; after every apply, a dry-run is clean and the foreign group is byte-identical."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule, run_state_machine_as_test

from reconciler.arm import group_to_arm
from reconciler.engine import reconcile_target
from tests.emulator import Emulator
from tests.engine_support import RG, SUB, compiled, group, seed_policy, unique, write_config

FEATURES = ["compute", "notebooks", "python_packages", "r_packages", "vscode", "monitoring", "hbi_workspace",
            "custom_images", "microsoft_images", "private_endpoint", "arc_extension"]
EDITS = ["remove-rule", "change-port", "add-rule", "collection-priority", "delete-group", "add-fqdn",
         "rename-rule", "shuffle"]


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    with Emulator(op_duration=0.0, observed_defaults=True) as e:
        yield e


def _canon(body: dict[str, Any] | None) -> str:
    return json.dumps(body, sort_keys=True)


def _norm(value: Any) -> Any:
    """An oracle independent of reconciler.plan: drop empty/default fields, sort every list."""
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items() if v not in ([], None, False, "")}
    if isinstance(value, list):
        return sorted((_norm(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True).lower())
    return value.lower() if isinstance(value, str) and "." in value and " " not in value else value


def test_apply_then_dry_run_is_clean_and_foreign_is_untouched(emu: Emulator, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in emu.env().items():
        monkeypatch.setenv(k, v)

    class Machine(RuleBasedStateMachine):
        @initialize(features=st.sets(st.sampled_from(FEATURES), min_size=1, max_size=4),
                    two=st.booleans())
        def setup(self, features: set[str], two: bool) -> None:
            self.policy = unique("sm")
            seed_policy(emu, self.policy)
            self.foreign = _canon(emu.get_rule_collection_group(SUB, RG, self.policy, "platform-baseline"))
            self.features = sorted(features)
            self.two = two
            self.write()

        def write(self) -> None:
            workspaces = [{"name": "mlws-a", "region": "westus2", "storage_account": "mlwsasa",
                           "source_addresses": ["10.1.0.0/24"], "features": self.features}]
            if self.two:
                workspaces.append({"name": "mlws-b", "region": "eastus", "storage_account": "mlwsbsa",
                                   "source_addresses": ["10.2.0.0/24", "10.3.0.0/24"], "features": ["compute"]})
            self.path = write_config(tmp_path, emu, self.policy, workspaces=workspaces)

        @rule(features=st.sets(st.sampled_from(FEATURES), min_size=1, max_size=5), two=st.booleans())
        def change_config(self, features: set[str], two: bool) -> None:
            self.features = sorted(features)
            self.two = two
            self.write()

        @rule(kind=st.sampled_from(EDITS), pick=st.integers(0, 10_000))
        def manual_edit(self, kind: str, pick: int) -> None:
            body = group(emu, self.policy)
            if body is None:
                return
            if kind == "delete-group":
                emu.delete_rule_collection_group(SUB, RG, self.policy, "azureml-egress")
                return
            cols = body["properties"]["ruleCollections"]
            if not cols:
                return
            col = cols[pick % len(cols)]
            rules = col["rules"]
            if kind == "collection-priority":
                col["priority"] = 20000 + pick % 1000
            elif kind == "add-rule":
                rules.append({"ruleType": "NetworkRule", "name": f"manual-{pick}", "ipProtocols": ["TCP"],
                              "sourceAddresses": ["*"], "destinationAddresses": ["10.9.9.9"],
                              "destinationPorts": ["22"]}
                             if col["name"].endswith("-net") else
                             {"ruleType": "ApplicationRule", "name": f"manual-{pick}", "sourceAddresses": ["*"],
                              "protocols": [{"protocolType": "Https", "port": 443}], "targetFqdns": ["example.org"]})
            elif rules:
                r = rules[pick % len(rules)]
                if kind == "remove-rule":
                    rules.remove(r)
                elif kind == "change-port":
                    if r["ruleType"] == "NetworkRule":
                        r["destinationPorts"] = ["2222"]
                    else:
                        r["protocols"] = [{"protocolType": "Http", "port": 8080}]
                elif kind == "add-fqdn" and r["ruleType"] == "ApplicationRule" and r.get("targetFqdns"):
                    r["targetFqdns"] = [*r["targetFqdns"], "evil.example.com"]
                elif kind == "rename-rule":
                    r["name"] = f"renamed-{pick}"
                elif kind == "shuffle":  # order alone is not drift, and must not cause a write
                    rules.reverse()
            emu.put_rule_collection_group(SUB, RG, self.policy, "azureml-egress", body)

        @rule()
        def apply(self) -> None:
            target, desired = compiled(self.path)
            out = reconcile_target(target, desired, dry_run=False)
            assert out.status in ("applied", "in_sync"), out.error
            again = reconcile_target(target, desired, dry_run=True)
            assert again.status == "in_sync", again.plan
            live = group(emu, self.policy)
            assert live is not None
            names = sorted(c["name"] for c in live["properties"]["ruleCollections"])  # order is not drift
            assert names == sorted(c.name for c in desired.group.rule_collections)
            want = group_to_arm(desired.group)["properties"]["ruleCollections"]
            assert _norm(live["properties"]["ruleCollections"]) == _norm(want)

        @rule()
        def shuffle_only_is_not_drift(self) -> None:
            target, desired = compiled(self.path)
            if reconcile_target(target, desired, dry_run=True).status != "in_sync":
                return
            body = group(emu, self.policy)
            assert body is not None
            for c in body["properties"]["ruleCollections"]:
                c["rules"].reverse()
                for r in c["rules"]:
                    for key in ("sourceAddresses", "destinationPorts", "targetFqdns"):
                        if isinstance(r.get(key), list):
                            r[key].reverse()
            body["properties"]["ruleCollections"].reverse()
            emu.put_rule_collection_group(SUB, RG, self.policy, "azureml-egress", body)
            assert reconcile_target(target, desired, dry_run=True).status == "in_sync"

        @invariant()
        def foreign_group_untouched(self) -> None:
            if hasattr(self, "policy"):
                assert _canon(emu.get_rule_collection_group(SUB, RG, self.policy, "platform-baseline")) == \
                    self.foreign

    run_state_machine_as_test(Machine, settings=settings(
        max_examples=8, stateful_step_count=6, deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]))
