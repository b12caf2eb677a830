"""Renderers of the desired state: ARM bodies valid for Azure, stable output, golden files.

- Every rule collection group amlfw would PUT validates against the official swagger (firewallPolicy.json,
  2026-03-01), with the polymorphic collections and rules checked against their subtype definitions, and obeys
  the service rules Azure enforces beyond the swagger.
- Rendering is deterministic and independent of the order of configuration lists and catalogue entries.
- Golden files: `tests/golden/*`, regenerated with `python tests/golden/regenerate.py`.
"""

from __future__ import annotations

import csv
import difflib
import importlib.util
import io
import ipaddress
import itertools
import json
import random
import re
from collections.abc import Iterator
from dataclasses import replace
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import unquote, urljoin, urlparse

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

from reconciler.arm import group_to_arm
from reconciler.catalogue import CatalogueStore
from reconciler.cli import main
from reconciler.compile import compile_target
from reconciler.config import Target, load_config
from reconciler.model import DesiredTarget
from reconciler.render.desired import (
    ALLOW_LIST_COLUMNS,
    render_allow_json,
    render_arm,
    render_csv,
    render_table,
)

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "config" / "examples"
GOLDEN = REPO / "tests" / "golden"
AZURE_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,78}[A-Za-z0-9_])?$")


@cache
def _store() -> CatalogueStore:
    return CatalogueStore(REPO / "config" / "catalogue")


def compile_file(path: Path, store: CatalogueStore | None = None) -> list[tuple[Target, DesiredTarget]]:
    store = store or _store()
    config = load_config(path, store.get)
    return [(t, compile_target(t, store.get(t.catalogue_version))) for t in config.targets]


@cache
def example_pairs(name: str) -> tuple[tuple[Target, DesiredTarget], ...]:
    return tuple(compile_file(EXAMPLES / f"{name}.yaml"))


EXAMPLE_NAMES = ("public", "usgov", "china", "fleet")


# ------------------------------------------------------------------------------------------ swagger


class Swagger:
    """The rule-collection-group definitions of the official swagger, as JSON Schema (draft 4) validators.

    Swagger's `discriminator` is not JSON Schema: a collection validated as `FirewallPolicyRuleCollection` only
    checks the base properties. So the body is validated in three steps, choosing the subtype explicitly:
    the group, each collection by its `ruleCollectionType`, each rule by its `ruleType`.
    """

    def __init__(self, spec_dir: Path) -> None:
        self.spec_dir = spec_dir
        self.main_uri = (spec_dir / "firewallPolicy.json").as_uri()
        self._docs: dict[str, dict[str, Any]] = {}
        self._validators: dict[str, jsonschema.Draft4Validator] = {}
        # load the three documents up front (a registry is immutable: what `retrieve` finds is not kept)
        common_uri = (spec_dir / "common.json").as_uri()
        uris = [self.main_uri, common_uri, urljoin(common_uri, self._types_ref(spec_dir))]
        self.registry: Registry[Any] = Registry(retrieve=self._retrieve).with_resources(
            (uri, self._retrieve(uri)) for uri in uris)
        self.collection_types = self.subtypes("FirewallPolicyRuleCollection")
        self.rule_types = self.subtypes("FirewallPolicyRule")

    def subtypes(self, base: str) -> dict[str, str]:
        """Discriminator value -> definition, from the swagger's `allOf` + `x-ms-discriminator-value`."""
        out = {}
        for name, schema in self._doc(self.main_uri)["definitions"].items():
            refs = [part.get("$ref") for part in schema.get("allOf", [])]
            if f"#/definitions/{base}" in refs and "x-ms-discriminator-value" in schema:
                out[schema["x-ms-discriminator-value"]] = name
        return out

    @staticmethod
    def _types_ref(spec_dir: Path) -> str:
        """The relative `$ref` common.json uses for common-types (a path of the spec repository)."""
        found = re.search(r'"(\.\./[^"#]*common-types/[^"#]*)#', (spec_dir / "common.json").read_text(encoding="utf-8"))
        return found.group(1) if found else "../common-types/resource-management/v5/types.json"

    def _local(self, uri: str) -> Path:
        path = Path(unquote(urlparse(uri).path))
        if "common-types" in path.parts:  # `../../../../../../common-types/...` from the spec repository layout
            return self.spec_dir.parent / Path(*path.parts[path.parts.index("common-types"):])
        return path

    def _doc(self, uri: str) -> dict[str, Any]:
        uri = uri.split("#")[0]
        if uri not in self._docs:
            self._docs[uri] = json.loads(self._local(uri).read_text(encoding="utf-8"))
        return self._docs[uri]

    def _retrieve(self, uri: str) -> Resource[Any]:
        return Resource.from_contents(self._doc(uri), default_specification=DRAFT4)

    def errors(self, instance: object, definition: str) -> list[str]:
        validator = self._validators.get(definition)
        if validator is None:
            validator = jsonschema.Draft4Validator({"$ref": f"{self.main_uri}#/definitions/{definition}"},
                                                   registry=self.registry)
            self._validators[definition] = validator
        return [f"{definition} at /{'/'.join(map(str, e.absolute_path))}: {e.message}"
                for e in validator.iter_errors(instance)]

    def declared(self, definition: str, uri: str | None = None) -> dict[str, dict[str, Any]]:
        """Properties a definition declares, its `allOf` bases included (what swagger lets a body carry)."""
        uri = uri or self.main_uri
        schema = self._doc(uri)["definitions"][definition]
        props: dict[str, dict[str, Any]] = dict(schema.get("properties", {}))
        for part in schema.get("allOf", []):
            ref_file, _, pointer = part["$ref"].partition("#")
            base_uri = uri if not ref_file else (Path(self._local(uri)).parent / ref_file).resolve().as_uri()
            props |= self.declared(pointer.rsplit("/", 1)[-1], base_uri)
        return props

    def _shape(self, instance: dict[str, Any], definition: str, where: str) -> list[str]:
        """Keys swagger does not declare (typos such as `terminateTls`) and read-only keys (never in a PUT)."""
        declared = self.declared(definition)
        out = [f"{where}: {k!r} is not a property of {definition}" for k in instance if k not in declared]
        out += [f"{where}: {k!r} is read-only in {definition}" for k in instance
                if declared.get(k, {}).get("readOnly")]
        return out

    def validate_group_body(self, body: dict[str, Any]) -> list[str]:
        problems = self.errors(body, "FirewallPolicyRuleCollectionGroup")
        problems += self._shape(body, "FirewallPolicyRuleCollectionGroup", "group")
        props = body.get("properties", {})
        problems += self._shape(props, "FirewallPolicyRuleCollectionGroupProperties", "group.properties")
        for c in props.get("ruleCollections", []):
            ctype = self.collection_types.get(c.get("ruleCollectionType"))
            if ctype is None:
                problems.append(f"{c.get('name')}: unknown ruleCollectionType {c.get('ruleCollectionType')!r}")
                continue
            problems += self.errors(c, ctype)
            problems += self._shape(c, ctype, c["name"])
            for r in c.get("rules", []):
                rtype = self.rule_types.get(r.get("ruleType"))
                if rtype is None:
                    problems.append(f"{c['name']}/{r.get('name')}: unknown ruleType {r.get('ruleType')!r}")
                    continue
                problems += self.errors(r, rtype)
                problems += self._shape(r, rtype, f"{c['name']}/{r.get('name')}")
        return problems


@pytest.fixture(scope="module")
def swagger(spec_dir: Path) -> Swagger:
    return Swagger(spec_dir)


# ------------------------------------------------------------------------------------------ service rules

APP_DESTINATIONS = ("targetFqdns", "fqdnTags", "webCategories", "targetUrls")
NET_DESTINATIONS = ("destinationAddresses", "destinationIpGroups", "destinationFqdns")
PORT_RE = re.compile(r"^(\*|\d{1,5}(-\d{1,5})?)$")
TAG_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)?$")


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return value == "*"
    return True


def service_rule_problems(body: dict[str, Any], tag_names: frozenset[str] | None) -> list[str]:
    """What Azure rejects (or silently mis-handles) although the swagger accepts it.

    `tag_names`: the cloud's service tags (exact spelling), or None where no list exists (China): then any
    name of tag shape is accepted as a tag.
    """
    problems: list[str] = []
    lowered = {t.lower() for t in tag_names} if tag_names is not None else None

    def is_tag(value: str) -> bool:
        if lowered is None:
            return bool(TAG_RE.match(value)) and not _is_ip(value)
        return value.lower() in lowered

    collections = body["properties"]["ruleCollections"]
    priorities = [c["priority"] for c in collections]
    if len(priorities) != len(set(priorities)):
        problems.append(f"duplicate collection priorities {sorted(priorities)}")
    for c in collections:
        where = c["name"]
        if not AZURE_NAME.match(where):
            problems.append(f"{where}: invalid collection name")
        names = [r["name"].lower() for r in c["rules"]]
        if len(names) != len(set(names)):
            problems.append(f"{where}: duplicate rule names")
        if not c["rules"]:
            problems.append(f"{where}: empty collection")
        if len({r["ruleType"] for r in c["rules"]}) > 1:
            problems.append(f"{where}: a collection holds rules of one type only")
        for r in c["rules"]:
            at = f"{where}/{r['name']}"
            if not AZURE_NAME.match(r["name"]):
                problems.append(f"{at}: invalid rule name")
            if not (r.get("sourceAddresses") or r.get("sourceIpGroups")):
                problems.append(f"{at}: no source")
            if r["ruleType"] == "ApplicationRule":
                kinds = [k for k in APP_DESTINATIONS if r.get(k)]
                if len(kinds) != 1:
                    problems.append(f"{at}: an application rule has exactly one destination kind, got {kinds}")
                for p in r.get("protocols", []):
                    if p["protocolType"] not in ("Http", "Https") or not 0 <= p["port"] <= 64000:
                        problems.append(f"{at}: application protocol {p} (Http/Https, port 0-64000)")
                if not r.get("protocols"):
                    problems.append(f"{at}: no protocols")
                if r.get("destinationAddresses"):
                    problems.append(f"{at}: service tags and addresses belong in network rules")
                for fqdn in r.get("targetFqdns", []):
                    if "*" in fqdn[1:] or (fqdn.startswith("*") and not fqdn.startswith("*.")):
                        problems.append(f"{at}: wildcard {fqdn!r} (only a leading '*.' works)")
                    if is_tag(fqdn) and "." in fqdn and lowered is not None:
                        problems.append(f"{at}: service tag {fqdn!r} used as an FQDN")
                if r.get("terminateTLS") and not r.get("targetUrls"):
                    problems.append(f"{at}: terminateTLS without targetUrls")
                for url in r.get("targetUrls", []):
                    if "://" in url or "?" in url:
                        problems.append(f"{at}: targetUrl {url!r} has a scheme or query")
            elif r["ruleType"] == "NetworkRule":
                kinds = [k for k in NET_DESTINATIONS if r.get(k)]
                if not kinds:
                    problems.append(f"{at}: a network rule needs a destination")
                for fqdn in r.get("destinationFqdns", []):
                    if "*" in fqdn:
                        problems.append(f"{at}: wildcard {fqdn!r} in destinationFqdns")
                addrs = r.get("destinationAddresses", [])
                tags = [a for a in addrs if not _is_ip(a)]
                for a in tags:
                    if not is_tag(a):
                        problems.append(f"{at}: {a!r} is neither an address nor a service tag")
                if tags and len(tags) != len(addrs):
                    problems.append(f"{at}: service tags and addresses mixed in one rule")
                for port in r.get("destinationPorts", []):
                    bounds = [int(x) for x in port.split("-")] if port != "*" else [1]
                    if not PORT_RE.match(port) or not all(1 <= b <= 65535 for b in bounds) or bounds != sorted(bounds):
                        problems.append(f"{at}: port {port!r}")
                if not r.get("ipProtocols"):
                    problems.append(f"{at}: no ipProtocols")
    return problems


def rendered_targets(name: str) -> list[dict[str, Any]]:
    targets: list[dict[str, Any]] = json.loads(render_arm(example_pairs(name)))["targets"]
    return targets


def _bodies() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for name in EXAMPLE_NAMES:
        for t in rendered_targets(name):
            for body in t["ruleCollectionGroups"]:
                yield name, t["cloud"], body


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_rendered_groups_validate_against_the_swagger(swagger: Swagger, example: str) -> None:
    for t in rendered_targets(example):
        (body,) = t["ruleCollectionGroups"]
        assert body["properties"]["ruleCollections"]
        assert swagger.validate_group_body(body) == []


@pytest.mark.parametrize("example", EXAMPLE_NAMES)
def test_rendered_groups_obey_azure_service_rules(example: str) -> None:
    tag_names = _store().service_tag_names()
    for t in rendered_targets(example):
        (body,) = t["ruleCollectionGroups"]
        assert service_rule_problems(body, tag_names.get(t["cloud"])) == []
        for route in t["routes"]:
            assert AZURE_NAME.match(route["name"])
            assert route["properties"]["nextHopType"] == "Internet"
            assert "nextHopIpAddress" not in route["properties"]
        assert len(t["routes"]) <= 25  # service-tag routes per route table


def test_official_examples_pass_the_validator(swagger: Swagger, spec_dir: Path) -> None:
    """The validator itself: Azure's own PUT examples are valid."""
    examples = spec_dir / "examples"
    for name in ("FirewallPolicyRuleCollectionGroupPut.json",
                 "FirewallPolicyRuleCollectionGroupWithWebCategoriesPut.json"):
        body = json.loads((examples / name).read_text(encoding="utf-8"))["parameters"]["parameters"]
        assert swagger.validate_group_body(body) == [], name


BROKEN_BODIES = [
    ("ftp-protocol", lambda b: _app(b)["protocols"].append({"protocolType": "Ftp", "port": 21}), "Ftp"),
    ("app-port-too-high", lambda b: _app(b)["protocols"].append({"protocolType": "Https", "port": 64001}), "64001"),
    ("group-priority", lambda b: b["properties"].__setitem__("priority", 99), "99"),
    ("collection-priority", lambda b: b["properties"]["ruleCollections"][0].__setitem__("priority", 70000), "70000"),
    ("typo", lambda b: _app(b).__setitem__("terminateTls", True), "'terminateTls' is not a property"),
    ("read-only", lambda b: b["properties"].__setitem__("provisioningState", "Succeeded"), "read-only"),
    ("unknown-rule-type", lambda b: _app(b).__setitem__("ruleType", "FqdnRule"), "unknown ruleType"),
    ("ports-not-strings", lambda b: _net(b).__setitem__("destinationPorts", [443]), "443 is not of type 'string'"),
    ("bad-ip-protocol", lambda b: _net(b).__setitem__("ipProtocols", ["SCTP"]), "'SCTP' is not one of"),
    ("bad-action", lambda b: b["properties"]["ruleCollections"][0].__setitem__("action", {"type": "DNAT"}),
     "'DNAT' is not one of"),
]


def _app(body: dict[str, Any]) -> dict[str, Any]:
    rule: dict[str, Any] = next(r for c in body["properties"]["ruleCollections"] for r in c["rules"]
                                if r["ruleType"] == "ApplicationRule")
    return rule


def _net(body: dict[str, Any]) -> dict[str, Any]:
    rule: dict[str, Any] = next(r for c in body["properties"]["ruleCollections"] for r in c["rules"]
                                if r["ruleType"] == "NetworkRule")
    return rule


@pytest.mark.parametrize(("breaks", "message"), [b[1:] for b in BROKEN_BODIES], ids=[b[0] for b in BROKEN_BODIES])
def test_validator_catches_broken_bodies(swagger: Swagger, breaks: Any, message: str) -> None:
    body = json.loads(json.dumps(group_to_arm(example_pairs("public")[0][1].group)))
    breaks(body)
    problems = swagger.validate_group_body(body)
    assert problems
    assert any(message in p for p in problems), problems


SERVICE_BREAKS = [
    ("two-destination-kinds", lambda b: _app(b).__setitem__("fqdnTags", ["WindowsUpdate"]), "one destination kind"),
    ("wildcard-network-fqdn", lambda b: _net(b).__setitem__("destinationFqdns", ["*.example.com"]), "wildcard"),
    ("tag-in-app-rule", lambda b: _app(b).__setitem__("destinationAddresses", ["Storage"]), "network rules"),
    ("fqdn-as-address", lambda b: _net(b).__setitem__("destinationAddresses", ["example.com"]), "neither"),
    ("tag-misspelt", lambda b: _net(b).__setitem__("destinationAddresses", ["Keyvault.WestUS2"]), "neither"),
    ("mixed", lambda b: _net(b).__setitem__("destinationAddresses", ["Storage", "10.0.0.0/8"]), "mixed"),
    ("mid-wildcard", lambda b: _app(b).__setitem__("targetFqdns", ["www.*.example.com"]), "wildcard"),
    ("no-dot-wildcard", lambda b: _app(b).__setitem__("targetFqdns", ["*example.com"]), "wildcard"),
    ("http-port-0-64000", lambda b: _app(b).__setitem__("protocols", [{"protocolType": "Http", "port": 65000}]),
     "port 0-64000"),
]


@pytest.mark.parametrize(("breaks", "message"), [b[1:] for b in SERVICE_BREAKS], ids=[b[0] for b in SERVICE_BREAKS])
def test_service_rule_checks_catch_what_azure_rejects(breaks: Any, message: str) -> None:
    body = json.loads(json.dumps(group_to_arm(example_pairs("public")[0][1].group)))
    breaks(body)
    problems = service_rule_problems(body, _store().service_tag_names()["AzureCloud"])
    assert any(message in p for p in problems), problems


# ------------------------------------------------------------------------------------------ order independence

WORKSPACE_POOL = [
    {"name": "mlws-alpha", "region": "westus2", "storage_account": "alphasa",
     "source_addresses": ["10.1.0.0/24", "10.1.1.0/24", "192.168.0.0/16"]},
    {"name": "mlws-beta", "region": "eastus", "storage_account": "betasa", "source_addresses": ["10.2.0.0/24"],
     "source_ip_groups": ["/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/"
                          "Microsoft.Network/ipGroups/ipg-b", "/subscriptions/00000000-0000-0000-0000-000000000001/"
                          "resourceGroups/rg/providers/Microsoft.Network/ipGroups/ipg-a"]},
    {"name": "mlws-gamma", "region": "westeurope", "storage_account": "gammasa",
     "source_addresses": ["10.3.0.0/24", "10.3.2.0/24"]},
    {"name": "MLWS-Delta", "region": "West US 2", "storage_account": "deltasa", "source_addresses": ["10.4.0.0/24"],
     "priority": 20000},
]
FEATURES = sorted(_store().get().feature_names - {"baseline"})


@st.composite
def fleet_docs(draw: st.DrawFn) -> tuple[dict[str, Any], int]:
    chosen = draw(st.lists(st.sampled_from(range(len(WORKSPACE_POOL))), min_size=1, max_size=3, unique=True))
    workspaces = []
    for i in chosen:
        feats = draw(st.lists(st.sampled_from(FEATURES), min_size=1, max_size=6, unique=True))
        workspaces.append({**WORKSPACE_POOL[i], "features": feats})
    doc = {
        "cloud": "AzureCloud", "subscription_id": "00000000-0000-0000-0000-000000000001",
        "firewall_policy": {"resource_group": "rg", "name": "fw"},
        "firewall": draw(st.sampled_from([{"tier": "Standard"}, {"tier": "Premium", "tls_inspection": True}])),
        "rule_collection_group": {"name": "azureml-egress", "priority": 300},
        "route_table": {"resource_group": "rg", "name": "rt"}, "workspaces": workspaces,
    }
    return doc, draw(st.integers(min_value=0, max_value=2**32 - 1))


def _shuffled(doc: dict[str, Any], rnd: random.Random) -> dict[str, Any]:
    out = json.loads(json.dumps(doc))
    rnd.shuffle(out["workspaces"])
    for ws in out["workspaces"]:
        for key in ("features", "source_addresses", "source_ip_groups"):
            if key in ws:
                rnd.shuffle(ws[key])
        ws["features"] = ws["features"] + ws["features"][:1]  # a repeated feature changes nothing either
    return out


_COUNTER = itertools.count()


def _render_doc(doc: dict[str, Any], directory: Path, store: Any) -> str:
    path = directory / f"c{next(_COUNTER)}.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    try:
        config = load_config(path, store.get)
        catalogue = store.get(None)
        return render_arm([(t, compile_target(t, catalogue)) for t in config.targets])
    finally:
        path.unlink()


class _ShuffledStore:
    """A catalogue store whose catalogue lists its entries in another order."""

    def __init__(self, rnd: random.Random) -> None:
        cat = _store().get()
        entries = list(cat.entries)
        rnd.shuffle(entries)
        self.catalogue = replace(cat, entries=tuple(entries))

    def get(self, version: str | None = None) -> Any:
        return self.catalogue


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("render")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=fleet_docs())
def test_render_is_independent_of_input_order(case: tuple[dict[str, Any], int], scratch: Path) -> None:
    doc, seed = case
    rnd = random.Random(seed)
    first = _render_doc(doc, scratch, _store())
    assert _render_doc(doc, scratch, _store()) == first  # deterministic
    assert _render_doc(_shuffled(doc, rnd), scratch, _ShuffledStore(rnd)) == first
    parsed = json.loads(first)
    assert parsed["format_version"] == 1
    for t in parsed["targets"]:
        for body in t["ruleCollectionGroups"]:
            assert service_rule_problems(body, _store().service_tag_names()["AzureCloud"]) == []


# ------------------------------------------------------------------------------------------ other formats


def test_table_csv_and_json_allow_list() -> None:
    pairs = example_pairs("fleet")
    table = render_table(pairs)
    for t, d in pairs:
        assert f"target {t.name}  ({t.cloud}, catalogue {d.catalogue_version})" in table
        for c in d.group.rule_collections:
            assert f"  collection {c.name} (priority {c.priority}, Allow)" in table
    rows = list(csv.DictReader(io.StringIO(render_csv(pairs))))
    assert tuple(rows[0]) == ALLOW_LIST_COLUMNS
    assert len(rows) == sum(len(d.allow_list) for _, d in pairs)
    assert {r["target"] for r in rows} == {t.name for t, _ in pairs}
    doc = json.loads(render_allow_json(pairs))
    assert doc["format_version"] == 1
    assert doc["catalogue_versions"] == [pairs[0][1].catalogue_version]
    assert doc["allow_list"] == rows


def test_arm_render_carries_requirements_and_routes() -> None:
    (t,) = rendered_targets("usgov")
    assert t["requirements"] == {"dnsProxy": True, "premium": True, "tlsInspection": True}
    assert t["firewallPolicy"].endswith("/providers/Microsoft.Network/firewallPolicies/fwpol-hub-gov")
    assert t["routeTable"].endswith("/providers/Microsoft.Network/routeTables/rt-aml-compute")
    assert [r["properties"]["nextHopType"] for r in t["routes"]] == ["Internet"] * len(t["routes"])


# ------------------------------------------------------------------------------------------ golden files


def _regenerate_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("golden_regenerate", GOLDEN / "regenerate.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REGENERATE = _regenerate_module()


@pytest.mark.parametrize("golden", sorted(REGENERATE.CASES))
def test_golden(golden: str, capsys: pytest.CaptureFixture[str]) -> None:
    config, fmt = REGENERATE.CASES[golden]
    assert main(REGENERATE.render_args(config, fmt)) == 0
    actual = capsys.readouterr().out
    path = GOLDEN / golden
    expected = path.read_text(encoding="utf-8") if path.is_file() else ""
    if actual != expected:
        diff = "".join(difflib.unified_diff(expected.splitlines(keepends=True), actual.splitlines(keepends=True),
                                            f"tests/golden/{golden}", "amlfw render (now)", n=2))
        lines = diff.splitlines(keepends=True)
        shown = "".join(lines[:80]) + (f"... ({len(lines) - 80} more diff lines)\n" if len(lines) > 80 else "")
        pytest.fail(f"`amlfw render --config config/examples/{config} --format {fmt}` differs from "
                    f"tests/golden/{golden}.\nIf the change is intended, run `python tests/golden/regenerate.py` "
                    f"and review `git diff tests/golden`.\n{shown}", pytrace=False)
