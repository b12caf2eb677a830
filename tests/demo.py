"""`make run`: the main job end to end against the embedded local ARM emulator.

1. start the emulator (HTTPS, throwaway CA, managed-identity token endpoint) on 127.0.0.1;
2. seed a hub firewall policy holding a foreign rule collection group and a drifted copy of amlfw's group
   (a rule deleted by hand, a port changed, an extra rule added), and a route table with a foreign route;
3. run `amlfw reconcile --once --dry-run` (the drift report, exit 2), then `amlfw reconcile --once` (apply),
   then the dry-run again (clean, exit 0), each as the real CLI in a subprocess with the real Azure SDK;
4. check the foreign group is byte-identical, stop the emulator.

Exits non-zero if any step does not behave as described.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from reconciler.arm import group_to_arm
from reconciler.catalogue import CatalogueStore
from reconciler.compile import compile_target
from reconciler.config import load_config
from tests.emulator import Emulator
from tests.engine_support import FOREIGN_GROUP

ROOT = Path(__file__).resolve().parents[1]
RUN_DIR = ROOT / ".amlfw-run"
SUB = "00000000-0000-0000-0000-000000000001"



def banner(text: str) -> None:
    print(f"\n\033[1m==> {text}\033[0m" if sys.stdout.isatty() else f"\n==> {text}", flush=True)


def drifted(group_body: dict[str, object]) -> dict[str, object]:
    """amlfw's group as someone edited it by hand in the portal."""
    body = json.loads(json.dumps(group_body))
    for coll in body["properties"]["ruleCollections"]:
        rules = coll["rules"]
        if coll["name"].endswith("-app"):
            rules[:] = [r for r in rules if r["name"] != "app-pypi.org"]  # someone deleted a rule
            rules.append({"ruleType": "ApplicationRule", "name": "allow-everything-temp",  # and added one
                          "protocols": [{"protocolType": "Https", "port": 443}], "sourceAddresses": ["*"],
                          "targetFqdns": ["*"]})
        else:
            for r in rules:
                if r["name"] == "tag-AzureResourceManager-tcp":
                    r["destinationPorts"] = ["8443"]  # and changed a port
    return body


def main() -> int:
    RUN_DIR.mkdir(exist_ok=True)
    base = yaml.safe_load((ROOT / "config/examples/public.yaml").read_text())
    t0 = time.monotonic()
    with Emulator(op_duration=0.3, observed_defaults=True) as emu:
        base["arm_endpoint"] = emu.base_url
        base["allow_custom_arm_endpoint"] = True
        base["azure"] = {"polling_interval": 0.2, "write_backoff_initial": 0.2, "settle_poll": 0.2}
        config_path = RUN_DIR / "demo.yaml"
        config_path.write_text(yaml.safe_dump(base, sort_keys=False))

        banner(f"emulator listening on {emu.base_url} (CA {emu.ca_bundle})")
        emu.add_resource_group(SUB, "rg-hub")
        emu.add_resource_group(SUB, "rg-spoke")
        emu.register_provider(SUB, "Microsoft.Network")
        emu.put_policy(SUB, "rg-hub", "fwpol-hub", {
            "location": "westus2",
            "properties": {"sku": {"tier": "Standard"}, "dnsSettings": {"enableProxy": True}},
        })
        emu.put_rule_collection_group(SUB, "rg-hub", "fwpol-hub", "platform-baseline", FOREIGN_GROUP)
        store = CatalogueStore()
        config = load_config(config_path, store.get)
        target = config.targets[0]
        desired = compile_target(target, store.get(target.catalogue_version))
        emu.put_rule_collection_group(SUB, "rg-hub", "fwpol-hub", target.group_name,
                                      drifted(group_to_arm(desired.group)))
        emu.put_route_table(SUB, "rg-spoke", "rt-aml-compute", {
            "location": "westus2",
            "properties": {"routes": [{"name": "default-to-firewall", "properties": {
                "addressPrefix": "0.0.0.0/0", "nextHopType": "VirtualAppliance", "nextHopIpAddress": "10.0.1.4"}}]},
        })
        foreign_before = emu.get_rule_collection_group(SUB, "rg-hub", "fwpol-hub", "platform-baseline")
        print(f"seeded policy fwpol-hub: foreign group platform-baseline, drifted {target.group_name} "
              f"({desired.group.rule_count} rules desired), route table rt-aml-compute with a foreign route")

        env = {**os.environ, **emu.env()}
        amlfw = [sys.executable, "-m", "reconciler", "reconcile", "--config", str(config_path), "--once"]

        def run(args: list[str], expect: int) -> None:
            proc = subprocess.run(args, env=env, capture_output=True, text=True, check=False, timeout=300)
            sys.stdout.write(proc.stdout)
            if proc.returncode != expect:
                sys.stderr.write(proc.stderr)
                raise SystemExit(f"demo failed: exit {proc.returncode}, expected {expect}")
            print(f"(exit {proc.returncode})")

        banner("amlfw reconcile --once --dry-run   # the drift report; exit 2 means drift")
        emu.clear_requests()
        run([*amlfw, "--dry-run"], 2)
        methods = {r.method for r in emu.requests()}
        print(f"ARM calls of the dry-run: {len(emu.requests())}, methods {sorted(methods)}")
        if methods != {"GET"}:
            raise SystemExit("demo failed: the dry-run wrote")

        banner("amlfw reconcile --once   # apply: one PUT of the complete group, routes one by one")
        emu.clear_requests()
        run(amlfw, 0)
        writes = [r for r in emu.requests() if r.method in ("PUT", "DELETE")]
        print("writes: " + ", ".join(f"{r.method} {r.path.rsplit('/', 2)[-2]}/{r.path.rsplit('/', 1)[-1]}"
                                     for r in writes))

        banner("amlfw reconcile --once --dry-run   # again: in sync, exit 0")
        emu.clear_requests()
        run([*amlfw, "--dry-run"], 0)
        print(f"ARM calls of a no-op pass: {len(emu.requests())} "
              f"({', '.join(sorted(r.method + ' ' + r.path.rsplit('/', 1)[-1] for r in emu.requests()))})")

        foreign_after = emu.get_rule_collection_group(SUB, "rg-hub", "fwpol-hub", "platform-baseline")
        if json.dumps(foreign_before, sort_keys=True) != json.dumps(foreign_after, sort_keys=True):
            raise SystemExit("demo failed: the foreign group changed")
        banner(f"done in {time.monotonic() - t0:.1f}s: drift found, repaired, clean; foreign group untouched")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
