"""Generated bad input for the fuzz suite (tests/test_fuzz.py): malformed configurations, catalogue files and ARM
answers. Deterministic: case `i` of a kind is always the same, so a failure names a case that can be re-run.

Every generator breaks its input on purpose (a required key removed, a value of the wrong type or size, an unknown
key, truncated or non-UTF-8 text...), so each case must end in exactly one clean error, never in success."""

from __future__ import annotations

import copy
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

SUB = "00000000-0000-0000-0000-000000000001"


@dataclass(frozen=True)
class Case:
    kind: str
    index: int
    what: str
    payload: bytes  # a file's bytes (configs, catalogue files) or an ARM body


def _junk(rng: random.Random) -> Any:
    """A value of a shape no field accepts where a specific one is required."""
    choices: list[Callable[[], Any]] = [
        lambda: None, lambda: True, lambda: -rng.randint(1, 10**9), lambda: rng.random() * 1e12,
        list, dict, lambda: [None], lambda: [[["deep"]]], lambda: {"a": {"b": {"c": 1}}},
        lambda: "x" * rng.choice([100_000, 1_000_000]), lambda: "..", lambda: ".", lambda: "\u202e\u0000evil",
        lambda: "../../etc/passwd", lambda: "<script>", lambda: "' OR 1=1 --", lambda: "\U0001f525" * 50,
        lambda: " ", lambda: "", lambda: "TCP:500-100", lambda: 10**30,
    ]
    return rng.choice(choices)()


# ---------------------------------------------------------------------------------------------- configurations


def valid_config() -> dict[str, Any]:
    return {
        "catalogue": "azureml-2021.11", "cloud": "AzureCloud", "subscription_id": SUB,
        "firewall_policy": {"resource_group": "rg-hub", "name": "fwpol-hub"},
        "rule_collection_group": {"name": "azureml-egress", "priority": 300},
        "workspaces": [{"name": "mlws", "region": "westus2", "storage_account": "mlwssa",
                        "source_addresses": ["10.0.0.0/24"], "features": ["compute"]}],
    }


# (path, junk that is always wrong there). Paths name a place in valid_config(); every value listed is invalid.
_CONFIG_SLOTS: list[tuple[tuple[str | int, ...], Callable[[random.Random], Any]]] = [
    (("cloud",), lambda r: r.choice([None, 5, "Mars", "azurecloud", [], "x" * 100_000])),
    (("catalogue",), lambda r: r.choice([5, [], "azureml-1999.01", "../azureml-2021.11", "x" * 5000])),
    (("subscription_id",), lambda r: r.choice([None, "nope", 12, "x" * 100_000, "0000-0000", []])),
    (("firewall_policy",), lambda r: r.choice([None, "fw", [], 7])),
    (("firewall_policy", "resource_group"), lambda r: r.choice([None, "..", ".", "rg.", "r" * 91, "a/b", 5, []])),
    (("firewall_policy", "name"), lambda r: r.choice([None, "-x", "fw pol", "f" * 81, "x.", 5, {}, "\u0000"])),
    (("rule_collection_group", "name"), lambda r: r.choice([None, "", "-g", "g" * 81, 3.5, ["g"]])),
    (("rule_collection_group", "priority"), lambda r: r.choice([None, 99, 65001, -1, "300", 3.5, True, 10**20])),
    (("workspaces",), lambda r: r.choice([None, [], "mlws", {}, [None], [5], [[]]])),
    (("workspaces", 0, "name"), lambda r: r.choice([None, "x", "-ws", "w" * 40, 5, "ws ws"])),
    (("workspaces", 0, "region"), lambda r: r.choice([None, "atlantis", 5, "", "x" * 1_000_000, []])),
    (("workspaces", 0, "storage_account"), lambda r: r.choice(["My_Storage", "ab", "s" * 25, 5, []])),
    (("workspaces", 0, "source_addresses"), lambda r: r.choice([
        "10.0.0.0/24", [None], ["10.0.0.0/33"], ["fd00::/8"], ["10.0.0.1/24"], ["x" * 100_000], [5], [[]]])),
    (("workspaces", 0, "features"), lambda r: r.choice([None, [], ["warp"], "compute", [5], ["x" * 100_000]])),
    (("workspaces", 0, "priority"), lambda r: r.choice([99, 65001, "high", 3.5, True])),
    (("workspaces", 0, "source_ip_groups"), lambda r: r.choice([
        [f"/subscriptions/{SUB}/resourceGroups/../providers/Microsoft.Network/ipGroups/g"],
        [f"/subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.Network/ipGroups/-g"], ["ipg"], "x", [5]])),
    (("route_table",), lambda r: r.choice(["rt", [], {"name": "rt"}, {"resource_group": "..", "name": "rt"}])),
    (("credential",), lambda r: r.choice(["mi", {"kind": "password"}, {"kind": "managed_identity",
                                                                       "client_id": "me"}, {"x": 1}])),
    (("azure",), lambda r: r.choice([{"retry_total": 99}, {"read_timeout": 0}, {"polling_interval": "fast"},
                                     {"max_response_bytes": 1}, {"write_timeout": -5}, {"nope": 1}, "fast"])),
    (("limits",), lambda r: r.choice([{"max_groups": 0}, {"max_group_bytes": 10**12}, {"max": 1}, []])),
    (("firewall",), lambda r: r.choice([{"tier": "Gold"}, {"tls_inspection": "yes"},
                                        {"tier": "Standard", "tls_inspection": True}, "Premium"])),
    (("arm_endpoint",), lambda r: r.choice(["http://localhost", "https://management.azure.com.evil.test",
                                            "https://evil.test", "ftp://x", 5, "https://x" * 50_000])),
    (("allow_custom_arm_endpoint",), lambda r: r.choice(["yes", 1, [], "true"])),
    (("name",), lambda r: r.choice([5, [], "n" * 300, "a\u0000b"])),
]


def _set_path(doc: Any, path: tuple[str | int, ...], value: Any) -> None:
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value


def _config_mutation(rng: random.Random) -> tuple[str, bytes]:
    doc = valid_config()
    roll = rng.random()
    if roll < 0.55:
        path, make = rng.choice(_CONFIG_SLOTS)
        value = make(rng)
        if path == ("azure",) and isinstance(value, dict) and "read_timeout" in value:
            value = {"read_timeout": 0}
        _set_path(doc, path, value)
        what = f"{'.'.join(map(str, path))} = {json.dumps(value, default=str)[:60]}"
        return what, yaml.safe_dump(doc, width=1 << 30, allow_unicode=True).encode("utf-8")
    if roll < 0.65:
        key = rng.choice(["cloud", "subscription_id", "firewall_policy", "rule_collection_group", "workspaces"])
        del doc[key]
        return f"without {key}", yaml.safe_dump(doc).encode()
    if roll < 0.72:
        where = rng.choice([doc, doc["workspaces"][0], doc["firewall_policy"], doc["rule_collection_group"]])
        name = rng.choice(["colour", "Cloud", "x" * rng.choice([10, 100_000]), "priority ", "workspace"])
        where[name] = _junk(rng)
        return f"unknown key {name[:20]!r}", yaml.safe_dump(doc, width=1 << 30).encode()
    text = yaml.safe_dump(doc).encode()
    if roll < 0.8:
        cut = rng.randint(1, len(text) - 1)
        broken = text[:cut] + rng.choice([b"\n  - [", b": {", b"\t\t:", b"\n- x\n  y: [", b"'", b"\"\\x"])
        return f"truncated at {cut}", broken
    if roll < 0.86:
        pos = rng.randint(0, len(text) - 1)
        return f"non-UTF-8 byte at {pos}", text[:pos] + bytes([rng.choice([0xff, 0xfe, 0xc3, 0x80])]) + text[pos:]
    if roll < 0.9:
        return "a repeated key", text + b"cloud: AzureCloud\n"
    if roll < 0.94:
        return "not a mapping", rng.choice([b"- a\n- b\n", b"42\n", b"'text'\n", b"", b"---\n...\n", b"~\n"])
    if roll < 0.97:
        # an alias bomb: each level doubles; safe_load builds references, validation must not expand them
        lines = ["a0: &a0 [x]"] + [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}]" for i in range(1, 25)]
        return "alias bomb", ("\n".join(lines) + "\nworkspaces: *a24\n").encode()
    return "a python tag", b"cloud: !!python/object/apply:os.system ['true']\n"


def config_cases(count: int, seed: int = 9) -> list[Case]:
    rng = random.Random(seed)
    return [Case("config", i, *_config_mutation(rng)) for i in range(count)]


# ---------------------------------------------------------------------------------------------- catalogue files

CATALOGUE_ENTRY: dict[str, Any] = {
    "id": "zz.fuzz", "kind": "fqdn", "value": "fuzz.example.com", "direction": "outbound", "ports": ["TCP:443"],
    "clouds": ["AzureCloud"], "features": ["baseline"], "purpose": "fuzz", "provenance": {"section": "fuzz"},
}

_ENTRY_SLOTS: list[tuple[str, list[Any]]] = [
    ("id", [None, "", "Upper", "z" * 65, True, [], "a b", "../x"]),
    ("kind", [None, "ip", 5, [], "FQDN"]),
    ("value", [None, "", "a b.com", "x" * 300 + ".com", "*bad.com", "a..b.com", "-a.com", 5, [], "{nope}.com",
               "https://x.com"]),
    ("direction", [None, "sideways", 5, []]),
    ("ports", [None, [], "TCP:443", ["TCP"], ["TCP:0"], ["TCP:65536"], ["TCP:500-100"], ["SCTP:1"], [5],
               ["Https:64001"], ["TCP:1-2-3"], ["TCP:x"]]),
    ("clouds", [None, [], ["Mars"], "AzureCloud", [5]]),
    ("features", [None, [], ["warp"], "baseline", [None]]),
    ("purpose", [None, "", [], "p" * 20_000]),
    ("provenance", [None, "seed", [], {"nope": 1}]),
    ("apply_as", ["teleport", 5, "route"]),
    ("fallback", ["tag", 5, {"kind": "fqdn"}]),
]


def _catalogue_mutation(rng: random.Random) -> tuple[str, str, bytes]:
    """(what, file name relative to the version folder or '../name', new bytes)."""
    roll = rng.random()
    if roll < 0.6:
        entry = copy.deepcopy(CATALOGUE_ENTRY)
        key, values = rng.choice(_ENTRY_SLOTS)
        value = rng.choice(values)
        if value is None and key in ("apply_as", "fallback"):
            value = 5
        if key == "apply_as" and value == "route":
            entry["direction"] = "outbound"  # routes are inbound service tags: an outbound fqdn route is wrong
        entry[key] = value
        return f"entry {key} = {json.dumps(value)[:60]}", "zz-fuzz.yaml", yaml.safe_dump(
            {"entries": [entry]}, width=1 << 30).encode()
    if roll < 0.7:
        entry = copy.deepcopy(CATALOGUE_ENTRY)
        missing = rng.choice(["id", "kind", "value", "direction", "ports", "clouds", "features", "purpose"])
        del entry[missing]
        return f"entry without {missing}", "zz-fuzz.yaml", yaml.safe_dump({"entries": [entry]}).encode()
    if roll < 0.78:
        body = rng.choice([{"entries": "x"}, {"entries": [None]}, {"entries": [5]}, {"entry": []}, [1], "x",
                           {"entries": [CATALOGUE_ENTRY, CATALOGUE_ENTRY]}])
        return f"file shape {json.dumps(body)[:40]}", "zz-fuzz.yaml", yaml.safe_dump(body).encode()
    if roll < 0.86:
        text = yaml.safe_dump({"entries": [CATALOGUE_ENTRY]}).encode()
        pos = rng.randint(0, len(text) - 1)
        return f"non-UTF-8 at {pos}", "zz-fuzz.yaml", text[:pos] + b"\xff\xfe" + text[pos:]
    if roll < 0.93:
        name, body = rng.choice([
            ("../service-tag-features.yaml", {"AzureCloud": {"no_firewall": rng.choice([5, "x", [None], {}])}}),
            ("../service-tag-features.yaml", {"Mars": {"no_firewall": []}}),
            ("../service-tag-features.yaml", {"AzureCloud": {"no_firewall": [], "extra": []}}),
            ("../service-tag-features.yaml", ["x"]),
            ("../regions.yaml", rng.choice([["x"], {"AzureCloud": "westus2"}, "x"])),
            ("../service-tag-names.yaml", rng.choice([{"AzureCloud": 5}, ["x"], {"AzureCloud": [None]}])),
        ])
        return f"{name} = {json.dumps(body)[:40]}", name, yaml.safe_dump(body).encode()
    text = yaml.safe_dump({"entries": [CATALOGUE_ENTRY]}).encode()
    cut = rng.randint(1, len(text) - 1)
    return f"truncated at {cut}", "zz-fuzz.yaml", text[:cut] + rng.choice([b"\n  - [", b": {", b"'", b"\t:"])


@dataclass(frozen=True)
class CatalogueCase:
    index: int
    what: str
    file: str
    payload: bytes


def catalogue_cases(count: int, seed: int = 9) -> list[CatalogueCase]:
    rng = random.Random(seed)
    return [CatalogueCase(i, *_catalogue_mutation(rng)) for i in range(count)]


# ---------------------------------------------------------------------------------------------- ARM answers


def _json_paths(doc: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(doc, dict):
        for k, v in doc.items():
            out += _json_paths(v, (*prefix, k))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out += _json_paths(v, (*prefix, i))
    return out


# The fields amlfw reads in a LIST of rule collection groups, and a value of the wrong shape for each.
_ARM_BREAKERS: dict[str, list[Any]] = {
    "value": [None, "x", 5, {"a": 1}, [None], ["x"], [5], [[]]],
    "properties": ["x", 5, [], True],
    "priority": ["abc", "100", 1.5, [], {}, True],
    "ruleCollections": ["x", 5, {}, [None], ["x"], [[]]],
    "rules": ["x", 5, {}, [None], ["x"], [[]]],
    "name": [5, [], {}, True],
    "ruleType": [5, [], {}],
    "ruleCollectionType": [5, [], {}],
    "action": ["Allow", 5, []],
    "destinationPorts": ["53", [53], [None], {}],
    "ipProtocols": ["UDP", [5], {}],
    "sourceAddresses": ["10.0.0.0/8", [None], {}],
    "destinationAddresses": ["x", [1], {}],
    "description": [5, [], {}],
}


# The objects amlfw reads in a GET of the firewall policy.
_POLICY_BREAKERS: dict[str, list[Any]] = {
    "properties": ["x", 5, [], True],
    "sku": ["Standard", 5, [], True],
    "dnsSettings": ["x", 5, [True]],
    "transportSecurity": ["x", 5, [1]],
}


def arm_policy_cases(template: dict[str, Any], count: int, seed: int = 9) -> list[Case]:
    """Broken copies of a GET firewall policy answer."""
    rng = random.Random(seed)
    props = template.get("properties") or {}
    slots = [("properties",)] + [("properties", k) for k in ("sku", "dnsSettings", "transportSecurity")
                                 if k in props or k == "transportSecurity"]
    cases = []
    for i in range(count):
        if rng.random() < 0.7:
            path = rng.choice(slots)
            value = rng.choice(_POLICY_BREAKERS[path[-1]])
            doc = copy.deepcopy(template)
            _set_path(doc, path, value)
            cases.append(Case("arm-policy", i, f"policy {'/'.join(path)} = {json.dumps(value)[:40]}",
                              json.dumps(doc).encode()))
        else:
            text = json.dumps(template).encode()
            cut = rng.randint(0, len(text) - 1)
            body = rng.choice([text[:cut], b"<html>Bad gateway</html>", b"null", b"[]", b"\"x\"", b"7"])
            cases.append(Case("arm-policy", i, f"policy body {body[:20]!r}", body))
    return cases


def arm_list_cases(template: dict[str, Any], count: int, seed: int = 9) -> list[Case]:
    """Broken copies of a LIST answer: one field amlfw reads given a wrong shape, or the body itself broken."""
    rng = random.Random(seed)
    paths = [p for p in _json_paths(template) if p and isinstance(p[-1], str) and p[-1] in _ARM_BREAKERS]
    cases = []
    for i in range(count):
        roll = rng.random()
        if roll < 0.75:
            path = rng.choice(paths)
            value = rng.choice(_ARM_BREAKERS[path[-1]])
            doc = copy.deepcopy(template)
            _set_path(doc, path, value)
            cases.append(Case("arm", i, f"{'/'.join(map(str, path))} = {json.dumps(value)[:40]}",
                              json.dumps(doc).encode()))
        elif roll < 0.9:
            text = json.dumps(template).encode()
            cut = rng.randint(0, len(text) - 1)
            cases.append(Case("arm", i, f"truncated at {cut}", text[:cut]))
        else:
            body = rng.choice([b"<html><body>Service Unavailable</body></html>", b"null", b"[]", b"42", b"\"x\"",
                               b"\xff\xfe{}", b"{\"value\": [] ", b"{}{}", b"NaN"])
            cases.append(Case("arm", i, f"body {body[:20]!r}", body))
    return cases
