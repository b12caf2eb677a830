"""`reconciler.catalogue.diff` on small hand-built catalogues, and `amlfw catalogue diff` on the shipped versions."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import pytest

from reconciler.catalogue import CatalogueStore
from reconciler.catalogue.diff import CatalogueDiff, Destination, diff_catalogues, render_text, to_json
from reconciler.model import Catalogue, Endpoint, Fallback, FeatureInfo, PortSpec, Provenance
from tests.conftest import RunAmlfw

OLD, NEW = "azureml-2021.11", "azureml-2026.03"


def ep(eid: str, value: str, *, kind: str = "fqdn", ports: tuple[str, ...] = ("Https:443",),
       clouds: tuple[str, ...] = ("AzureCloud",), features: tuple[str, ...] = ("baseline",),
       direction: str = "outbound", apply_as: str = "firewall", fallback: str | None = None,
       purpose: str = "test") -> Endpoint:
    specs = tuple(PortSpec(*p.split(":", 1)) for p in ports)
    return Endpoint(id=eid, kind=kind, value=value, direction=direction, ports=specs,  # type: ignore[arg-type]
                    clouds=frozenset(clouds), features=frozenset(features), purpose=purpose,
                    provenance=Provenance(section="test"), apply_as=apply_as,  # type: ignore[arg-type]
                    fallback=Fallback("service_tag", fallback) if fallback else None)


def cat(version: str, *entries: Endpoint, implies: dict[str, tuple[str, ...]] | None = None) -> Catalogue:
    implies = implies or {}
    names = {"baseline", *implies, *(i for v in implies.values() for i in v), *(f for e in entries for f in e.features)}
    features = tuple(FeatureInfo(n, n, implies.get(n, ())) for n in sorted(names))
    return Catalogue(version=version, title=version, source=(), features=features, corrections=(),
                     well_known_ports=(), entries=entries, regions=())


def dests(items: tuple[Destination, ...]) -> set[tuple[str, str, str]]:
    return {(d.cloud, d.value, d.port) for d in items}


# ------------------------------------------------------------------------------------------------ pure


def test_added_removed_changed_and_unchanged() -> None:
    a = cat("v1", ep("keep", "keep.example.com"), ep("gone", "gone.example.com"),
            ep("ports", "p.example.com"), ep("doc", "doc.example.com", purpose="old words"))
    b = cat("v2", ep("keep", "keep.example.com"), ep("new", "new.example.com"),
            ep("ports", "p.example.com", ports=("Https:443", "Https:8443")),
            ep("doc", "doc.example.com", purpose="new"))
    d = diff_catalogues(a, b)
    assert (d.from_version, d.to_version) == ("v1", "v2")
    assert [e.id for e in d.added] == ["new"]
    assert [e.id for e in d.removed] == ["gone"]
    assert [c.id for c in d.changed] == ["ports"]
    (change,) = d.changed[0].fields
    assert (change.field, change.added, change.removed) == ("ports", ("Https:8443",), ())
    assert d.unchanged == ("doc", "keep")  # purpose, provenance, notes are documentation, not a change
    assert dests(d.gained) == {("AzureCloud", "new.example.com", "Https:443"),
                               ("AzureCloud", "p.example.com", "Https:8443")}
    assert dests(d.lost) == {("AzureCloud", "gone.example.com", "Https:443")}
    assert not d.is_empty
    assert diff_catalogues(a, a).is_empty


@pytest.mark.parametrize(("old", "new", "field", "old_value", "new_value"), [
    (ep("x", "a.example.com"), ep("x", "b.example.com"), "value", ("a.example.com",), ("b.example.com",)),
    (ep("x", "example.com/a/*", kind="url_path"), ep("x", "example.com/a/*"), "kind", ("url_path",), ("fqdn",)),
    (ep("x", "Tag", kind="service_tag", direction="inbound", apply_as="nsg"),
     ep("x", "Tag", kind="service_tag", direction="inbound", apply_as="route"), "apply_as", ("nsg",), ("route",)),
    (ep("x", "*.e.com", kind="wildcard_fqdn", ports=("UDP:5831",)),
     ep("x", "*.e.com", kind="wildcard_fqdn", ports=("UDP:5831",), fallback="AzureMachineLearning"),
     "fallback", (), ("AzureMachineLearning",)),
    (ep("x", "a.example.com"), ep("x", "a.example.com", clouds=("AzureCloud", "AzureUSGovernment")),
     "clouds", ("AzureCloud",), ("AzureCloud", "AzureUSGovernment")),
    (ep("x", "a.example.com", features=("f",)), ep("x", "a.example.com", features=("baseline",)),
     "features", ("f",), ("baseline",)),
    # issue 13: the strategy data changes the rules too
    (ep("x", "a.example.com"), replace(ep("x", "a.example.com"), strategy="fqdns"), "strategy", ("common",),
     ("fqdns",)),
    (replace(ep("x", "a.example.com"), strategy="fqdns"),
     replace(ep("x", "a.example.com"), strategy="fqdns", covered_by=("Storage.{region}",)),
     "covered_by", (), ("Storage.{region}",)),
], ids=["value", "kind", "apply_as", "fallback", "clouds", "features", "strategy", "covered_by"])
def test_each_field_change_is_reported(old: Endpoint, new: Endpoint, field: str, old_value: tuple[str, ...],
                                       new_value: tuple[str, ...]) -> None:
    d = diff_catalogues(cat("v1", old), cat("v2", new))
    (c,) = d.changed
    (f,) = c.fields
    assert (f.field, f.old, f.new) == (field, old_value, new_value)
    assert c.field(field) is f and c.field("ports") is None


def test_port_spelling_is_an_entry_change_but_not_a_destination_change() -> None:
    """`TCP:443` and `Https:443` on a host compile to the same application rule; on a tag `Https` is TCP."""
    a = cat("v1", ep("h", "h.example.com", ports=("Http:80", "Https:443")),
            ep("t", "Tag", kind="service_tag", ports=("Https:443",)))
    b = cat("v2", ep("h", "h.example.com", ports=("TCP:443",)), ep("t", "Tag", kind="service_tag", ports=("TCP:443",)))
    d = diff_catalogues(a, b)
    assert {c.id for c in d.changed} == {"h", "t"}
    assert d.gained == ()
    assert dests(d.lost) == {("AzureCloud", "h.example.com", "Http:80")}


def test_cloud_filter() -> None:
    a = cat("v1", ep("x", "x.example.com"), ep("g", "gov.example.us", clouds=("AzureUSGovernment",)))
    b = cat("v2", ep("x", "x.example.com", clouds=("AzureCloud", "AzureUSGovernment")))
    whole = diff_catalogues(a, b)
    assert [c.id for c in whole.changed] == ["x"] and [e.id for e in whole.removed] == ["g"]
    gov = diff_catalogues(a, b, cloud="AzureUSGovernment")
    assert [e.id for e in gov.added] == ["x"]  # it now applies to this cloud
    assert [e.id for e in gov.removed] == ["g"] and gov.changed == ()
    assert dests(gov.gained) == {("AzureUSGovernment", "x.example.com", "Https:443")}
    public = diff_catalogues(a, b, cloud="AzureCloud")
    assert public.added == public.removed == () and [c.id for c in public.changed] == ["x"]
    assert public.gained == public.lost == ()  # the entry changed, but not for this cloud
    assert {d.cloud for d in whole.gained + whole.lost} == {"AzureUSGovernment"}


def test_feature_filter_uses_each_versions_baseline_and_implications() -> None:
    a = cat("v1", ep("b", "base.example.com"), ep("m", "mcr.example.com", features=("images",)),
            ep("c", "custom.example.com", features=("custom",)), ep("o", "other.example.com", features=("other",)),
            implies={"custom": ("images",)})
    b = cat("v2", ep("b", "base.example.com"), ep("m", "mcr.example.com"),  # moved into the baseline
            ep("c", "custom.example.com", features=("custom",)), ep("o", "other.example.com", features=("other",)))
    d = diff_catalogues(a, b, feature="custom")
    assert d.features == ("custom",)
    assert [c.id for c in d.changed] == ["m"] and d.added == d.removed == ()
    assert d.gained == d.lost == ()  # a custom-images workspace needs the same destinations
    d = diff_catalogues(a, b, feature=["other"])
    assert [e.id for e in d.added] == ["m"]  # a workspace without images now needs MCR
    assert dests(d.gained) == {("AzureCloud", "mcr.example.com", "Https:443")}
    assert "o" in d.unchanged and "c" not in d.unchanged + tuple(e.id for e in d.added)
    several = diff_catalogues(a, b, feature=["other", "custom"])
    assert several.features == ("custom", "other")
    unknown = diff_catalogues(a, b, feature="nowhere")  # selects the baseline only, in both versions
    assert [e.id for e in unknown.added] == ["m"]


def test_destinations_are_sorted_and_keep_direction_and_placeholders() -> None:
    a = cat("v1", ep("r", "Batch.{region}", kind="service_tag", ports=("Any:*",), direction="inbound",
                     apply_as="route", clouds=("AzureChinaCloud", "AzureCloud")))
    b = cat("v2", ep("z", "z.example.com", clouds=("AzureUSGovernment", "AzureCloud")),
            ep("a", "A.example.com", ports=("Https:443", "Http:80")))
    d = diff_catalogues(a, b)
    assert [(x.cloud, x.value, x.port) for x in d.gained] == [
        ("AzureCloud", "A.example.com", "Http:80"), ("AzureCloud", "A.example.com", "Https:443"),
        ("AzureCloud", "z.example.com", "Https:443"), ("AzureUSGovernment", "z.example.com", "Https:443")]
    assert [(x.cloud, x.direction, x.apply_as, x.value, x.port) for x in d.lost] == [
        ("AzureCloud", "inbound", "route", "Batch.{region}", "Any:*"),
        ("AzureChinaCloud", "inbound", "route", "Batch.{region}", "Any:*")]


def _small_diff() -> CatalogueDiff:
    a = cat("v1", ep("tag.aml", "AzureMachineLearning", kind="service_tag", ports=("TCP:443",)),
            ep("old.host", "old.example.com"),
            ep("route.batch", "Batch.{region}", kind="service_tag", ports=("Any:*",), direction="inbound",
               apply_as="route"))
    b = cat("v2", ep("tag.aml", "AzureMachineLearning", kind="service_tag", ports=("TCP:443", "UDP:5831")),
            ep("x.mcr", "MicrosoftContainerRegistry", kind="service_tag", ports=("TCP:443",)))
    return diff_catalogues(a, b)


def test_render_text_is_terraform_like() -> None:
    text = render_text(_small_diff())
    lines = text.splitlines()
    assert lines[0] == "catalogue diff v1 -> v2  (every cloud; every feature)"
    assert lines[1] == "entries: 1 added, 2 removed, 1 changed, 0 unchanged"
    assert any(line.startswith("+ x.mcr ") and "MicrosoftContainerRegistry  TCP:443  [baseline]" in line
               for line in lines)
    assert any(line.startswith("- old.host ") for line in lines)
    assert any(line.startswith("- route.batch ") and line.endswith("(inbound route)") for line in lines)
    at = lines.index(next(line for line in lines if line.startswith("~ tag.aml")))
    assert lines[at + 1].strip() == "ports: +UDP:5831"
    assert "  + AzureMachineLearning" in text and text.endswith("\n")
    assert any(line.split() == ["+", "AzureMachineLearning", "UDP:5831"] for line in lines)
    assert any(line.split()[:3] == ["-", "Batch.{region}", "Any:*"] for line in lines)


def test_json_document() -> None:
    doc = to_json(_small_diff())
    json.dumps(doc)  # serialisable as is
    assert doc["format_version"] == 1
    assert (doc["from"], doc["to"], doc["filters"]) == ("v1", "v2", {"cloud": None, "features": []})
    assert doc["summary"] == {"added": 1, "removed": 2, "changed": 1, "unchanged": 0,
                              "destinations_gained": 2, "destinations_lost": 2}
    (changed,) = doc["changed"]
    assert changed == {"id": "tag.aml", "value": "AzureMachineLearning", "fields": {"ports": {
        "old": ["TCP:443"], "new": ["TCP:443", "UDP:5831"], "added": ["UDP:5831"], "removed": []}}}
    assert {e["id"] for e in doc["removed"]} == {"old.host", "route.batch"}
    assert doc["added"][0]["fallback"] is None and doc["added"][0]["apply_as"] == "firewall"
    assert {"cloud": "AzureCloud", "direction": "inbound", "apply_as": "route", "value": "Batch.{region}",
            "port": "Any:*"} in doc["destinations"]["lost"]


def test_scalar_changes_in_json_and_text() -> None:
    d = diff_catalogues(cat("v1", ep("t", "Mcr.{region}", kind="service_tag", ports=("TCP:443",))),
                        cat("v2", ep("t", "Mcr", kind="service_tag", ports=("TCP:443",), fallback=None)))
    assert to_json(d)["changed"][0]["fields"] == {"value": {"old": "Mcr.{region}", "new": "Mcr"}}
    assert '      value: "Mcr.{region}" -> "Mcr"' in render_text(d).splitlines()


# ------------------------------------------------------------------------------------------------ shipped


@pytest.fixture(scope="module")
def shipped(catalogue_store: CatalogueStore) -> tuple[Catalogue, Catalogue]:
    return catalogue_store.get(OLD), catalogue_store.get(NEW)


def test_shipped_versions_in_process(shipped: tuple[Catalogue, Catalogue]) -> None:
    old, new = shipped
    d = diff_catalogues(old, new)
    assert {c.id for c in d.changed} >= {"tag.azure-machine-learning", "tag.microsoft-container-registry"}
    aml = next(c for c in d.changed if c.id == "tag.azure-machine-learning")
    assert [(f.field, f.added) for f in aml.fields] == [("ports", ("TCP:8787", "TCP:18881", "UDP:5831"))]
    for c in ("AzureCloud", "AzureUSGovernment", "AzureChinaCloud"):
        per_cloud = diff_catalogues(old, new, cloud=c)
        assert per_cloud.gained == tuple(x for x in d.gained if x.cloud == c)
        assert per_cloud.lost == tuple(x for x in d.lost if x.cloud == c)
    assert diff_catalogues(new, old).gained == tuple(sorted(d.lost, key=Destination.sort_key))


def test_cli_text(run_amlfw: RunAmlfw) -> None:
    r = run_amlfw("catalogue", "diff", OLD, NEW, "--cloud", "AzureCloud")
    assert (r.returncode, r.stderr) == (0, ""), r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == f"catalogue diff {OLD} -> {NEW}  (AzureCloud; every feature)"
    assert any(line.split() == ["+", "AzureMachineLearning", "UDP:5831"] for line in lines)
    assert any(line.split() == ["-", "viennaglobal.azurecr.io", "Https:443"] for line in lines)
    assert any(line.startswith("- images.viennaglobal-azurecr-io ") for line in lines)
    assert any(line.startswith("- inbound.udr.batch-node-management-region ") for line in lines)
    assert any(line.split() == ["-", "BatchNodeManagement.{region}", "Any:*", "(inbound", "route)"] for line in lines)
    assert any(line.startswith("~ tag.azure-machine-learning ") for line in lines)
    assert "Destinations" in r.stdout and "AzureUSGovernment:" not in r.stdout


def test_cli_json_with_filters(run_amlfw: RunAmlfw) -> None:
    r = run_amlfw("catalogue", "diff", OLD, NEW, "--cloud", "AzureUSGovernment", "--feature", "compute",
                  "--format", "json")
    assert (r.returncode, r.stderr) == (0, ""), r.stderr
    doc: dict[str, Any] = json.loads(r.stdout)
    assert doc["format_version"] == 1
    assert doc["filters"] == {"cloud": "AzureUSGovernment", "features": ["compute"]}
    gained = {(x["value"], x["port"]) for x in doc["destinations"]["gained"]}
    lost = {(x["value"], x["port"], x["apply_as"]) for x in doc["destinations"]["lost"]}
    assert {("AzureMachineLearning", "UDP:5831"), ("{region}.tundra.azureml.us", "UDP:5831"),
            ("BatchNodeManagement.{region}", "TCP:443"), ("mcr.microsoft.com", "Https:443")} <= gained
    assert ("*.{region}.batch.azure.com", "Https:443") not in gained  # public tab only
    assert ("graph.windows.net", "Http:80", "firewall") in lost
    assert ("BatchNodeManagement", "TCP:29876-29877", "nsg") in lost
    assert all(x["cloud"] == "AzureUSGovernment" for x in doc["destinations"]["gained"] + doc["destinations"]["lost"])


@pytest.mark.parametrize(("args", "message"), [
    ([OLD, "azureml-1999.01"], "error: TO: unknown catalogue version 'azureml-1999.01' (available: "),
    (["azureml-1999.01", NEW], "error: FROM: unknown catalogue version 'azureml-1999.01' (available: "),
    ([OLD, NEW, "--feature", "warp_drive"], "error: --feature: unknown feature 'warp_drive'"),
], ids=["to", "from", "feature"])
def test_cli_usage_mistakes(run_amlfw: RunAmlfw, args: list[str], message: str) -> None:
    r = run_amlfw("catalogue", "diff", *args)
    assert (r.returncode, r.stdout) == (1, "")
    assert r.stderr.startswith(message)
    assert len(r.stderr.splitlines()) == 1
