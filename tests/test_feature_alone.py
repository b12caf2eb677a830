"""Every feature alone (plus the baseline) works, in every cloud, both catalogue versions and both strategies
(issue 13, item 3).

For a workspace with one feature, each endpoint the catalogue lists for it (and for the baseline and the
features it implies) must be let through by the compiled rules: the host itself on each of its ports (a URL
path by its host, on Standard only on the ports the source gives for the URL, `widen_ports`; a wildcard on a
non-web port by its declared fallback tag), or, under `allow_by: service_tags`, a selected tag that covers it;
a service tag, under `fqdns`, by the hosts that replace it. The gaps this found are corrections E-21 to E-23
(docs/catalogue-corrections.md); the regression tests at the end pin each one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.catalogue import CatalogueStore
from reconciler.compile import compile_target, regional_tag
from reconciler.config import load_config
from reconciler.model import CLOUDS, ApplicationRule, Catalogue, DesiredTarget, Endpoint, NetworkRule, PortSpec
from tests.test_compile import target_doc

REPO = Path(__file__).resolve().parents[1]
VERSIONS = ("azureml-2021.11", "azureml-2026.03")
REGION = {"AzureCloud": "westus2", "AzureUSGovernment": "usgovvirginia", "AzureChinaCloud": "chinaeast2"}
NAMES = {"storage_account": "mlwssa", "key_vault": "mlws-kv-1", "container_registry": "mlwsacr01",
         "workspace_id": "3f2c8a4e-5b1d-4c7e-9a60-2d8e1f0b7c35"}
Allowed = set[tuple[str, str, int, int]]  # (destination lower-case, protocol, first port, last port)


def _store() -> CatalogueStore:
    return CatalogueStore(REPO / "config" / "catalogue")


def _cases() -> list[Any]:
    store = _store()
    out = []
    for version in VERSIONS:
        cat = store.get(version)
        for cloud in CLOUDS:
            for feature in sorted(cat.feature_names - {"baseline"}):
                for allow_by in ("service_tags", "fqdns"):
                    out.append(pytest.param(version, cloud, feature, allow_by,
                                            id=f"{version}-{cloud}-{feature}-{allow_by}"))
    return out


def compile_alone(tmp_path: Path, store: CatalogueStore, version: str, cloud: str, feature: str, allow_by: str,
                  names: dict[str, str] | None = None) -> DesiredTarget:
    doc = target_doc(cloud=cloud, region=REGION[cloud], features=[feature], storage=None,
                     route_table={"resource_group": "rg", "name": "rt"})
    doc["catalogue"] = version
    doc["allow_by"] = allow_by
    doc["workspaces"][0].update(NAMES if names is None else names)
    path = tmp_path / "amlfw.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    (target,) = load_config(path, store.get).targets
    return compile_target(target, store.get(version))


def _range(ports: str) -> tuple[int, int]:
    if ports == "*":
        return 1, 65535
    lo, _, hi = ports.partition("-")
    return int(lo), int(hi or lo)


def allowed_by(d: DesiredTarget) -> Allowed:
    out: Allowed = set()
    for c in d.group.rule_collections:
        for r in c.rules:
            if isinstance(r, NetworkRule):
                for dest in r.destination_addresses | r.destination_fqdns:
                    for proto in r.ip_protocols:
                        for ports in r.destination_ports:
                            out.add((dest.lower(), proto, *_range(ports)))
            elif isinstance(r, ApplicationRule):
                for dest in r.target_fqdns | r.target_urls:
                    for p in r.protocols:
                        out.add((dest.lower(), "TCP", p.port, p.port))
    return out


def lets_through(allowed: Allowed, dest: str, spec: PortSpec) -> bool:
    proto = "TCP" if spec.protocol in ("Http", "Https") else spec.protocol
    lo, hi = _range(spec.ports)
    return any(d == dest.lower() and p in (proto, "Any") and a <= lo and hi <= b for d, p, a, b in allowed)


def resolve(value: str, cat: Catalogue, cloud: str, *, tag: bool) -> str:
    region = REGION[cloud]
    if tag and value.endswith(".{region}"):
        return regional_tag(value[: -len(".{region}")], region, cat.region_suffixes(cloud))
    for key, placeholder in (("storage_account", "storage"), ("key_vault", "keyvault"),
                             ("container_registry", "registry"), ("workspace_id", "workspace_id")):
        value = value.replace("{" + placeholder + "}", NAMES[key])
    return value.replace("{region}", region)


def needed(cat: Catalogue, cloud: str, feature: str) -> list[Endpoint]:
    wanted = cat.with_implied({feature}) | {"baseline"}
    return [e for e in cat.entries if cloud in e.clouds and e.features & wanted
            and e.direction == "outbound" and e.apply_as == "firewall"]


def gaps(cat: Catalogue, cloud: str, feature: str, allow_by: str, d: DesiredTarget) -> list[str]:
    allowed = allowed_by(d)
    entries = needed(cat, cloud, feature)
    missing = []
    for e in entries:
        # the test targets are Standard: a URL path is let through as its host on its widen_ports only
        for spec in (e.widen_ports or e.ports) if e.kind == "url_path" else e.ports:
            if e.kind == "service_tag":
                if lets_through(allowed, resolve(e.value, cat, cloud, tag=True), spec):
                    continue
                if allow_by == "fqdns" and any(
                        e.value in h.covered_by and lets_through(allowed, resolve(h.value, cat, cloud, tag=False), s)
                        for h in entries for s in h.ports if (s.protocol, s.ports) == (spec.protocol, spec.ports)
                        or _range(s.ports) == _range(spec.ports)):
                    continue
            else:
                host = resolve(e.value, cat, cloud, tag=False)
                if lets_through(allowed, host, spec) or lets_through(allowed, host.split("/", 1)[0], spec):
                    continue
                if e.fallback and lets_through(allowed, resolve(e.fallback.value, cat, cloud, tag=True), spec):
                    continue
                if allow_by == "service_tags" and any(
                        lets_through(allowed, resolve(t, cat, cloud, tag=True), spec) for t in e.covered_by):
                    continue
            missing.append(f"{e.id} {e.value} {spec}")
    return missing


@pytest.mark.parametrize(("version", "cloud", "feature", "allow_by"), _cases())
def test_each_feature_alone_gets_every_endpoint_it_lists(tmp_path: Path, catalogue_store: CatalogueStore,
                                                         version: str, cloud: str, feature: str,
                                                         allow_by: str) -> None:
    cat = catalogue_store.get(version)
    d = compile_alone(tmp_path, catalogue_store, version, cloud, feature, allow_by)
    assert gaps(cat, cloud, feature, allow_by, d) == []
    own = [e for e in cat.entries if cloud in e.clouds and e.features & cat.with_implied({feature})]
    # a feature with nothing in this cloud says so instead of silently rendering nothing
    assert ("feature-empty" in {w.code for w in d.warnings}) == (not own)


# ----------------------------------------------------------------------------- the gaps found (E-21 to E-23)


@pytest.mark.parametrize("version", VERSIONS)
@pytest.mark.parametrize("cloud", CLOUDS)
@pytest.mark.parametrize("allow_by", ["service_tags", "fqdns"])
def test_e21_arc_training_alone_can_pip_install(tmp_path: Path, catalogue_store: CatalogueStore, version: str,
                                                 cloud: str, allow_by: str) -> None:
    d = compile_alone(tmp_path, catalogue_store, version, cloud, "arc_training", allow_by)
    allowed = allowed_by(d)
    for host in ("pypi.org", "files.pythonhosted.org"):
        assert lets_through(allowed, host, PortSpec("Https", "443")), host


@pytest.mark.parametrize("allow_by", ["service_tags", "fqdns"])
def test_e22_compute_alone_reaches_the_workspace_registry(tmp_path: Path, catalogue_store: CatalogueStore,
                                                          allow_by: str) -> None:
    """2026.03: ACR is required by training job submission, not only by custom images."""
    d = compile_alone(tmp_path, catalogue_store, "azureml-2026.03", "AzureCloud", "compute", allow_by)
    allowed = allowed_by(d)
    for host in ("mlwsacr01.azurecr.io", "mlwsacr01.westus2.data.azurecr.io"):
        assert lets_through(allowed, host, PortSpec("Https", "443")), host


def test_e23_storage_firewall_alone_without_service_tags(tmp_path: Path, catalogue_store: CatalogueStore) -> None:
    d = compile_alone(tmp_path, catalogue_store, "azureml-2026.03", "AzureCloud", "storage_firewall", "fqdns")
    allowed = allowed_by(d)
    assert lets_through(allowed, "mlwssa.file.core.windows.net", PortSpec("TCP", "445"))
    assert not lets_through(allowed, "Storage.WestUS2", PortSpec("TCP", "445"))


def test_a_feature_empty_in_a_cloud_warns(tmp_path: Path, catalogue_store: CatalogueStore) -> None:
    d = compile_alone(tmp_path, catalogue_store, "azureml-2026.03", "AzureUSGovernment", "automl_nlp_vision",
                      "service_tags")
    (w,) = [w for w in d.warnings if w.code == "feature-empty"]
    assert "automl_nlp_vision" in w.message and "AzureUSGovernment" in w.message


@pytest.mark.parametrize(("version", "feature", "needed"), [("azureml-2021.11", "compute", "inbound_udr"),
                                                            ("azureml-2026.03", "public_ip_compute", "inbound_udr")])
def test_a_feature_says_what_else_it_needs(tmp_path: Path, catalogue_store: CatalogueStore, version: str,
                                           feature: str, needed: str) -> None:
    """Where a feature needs something another part of the configuration provides (inbound routes), it says so."""
    d = compile_alone(tmp_path, catalogue_store, version, "AzureCloud", feature, "service_tags")
    (w,) = [w for w in d.warnings if w.code == "feature-needs"]
    assert f"feature {feature} usually needs {needed}" in w.message and "route_table" in w.message
    assert d.routes == ()  # the routes come only with inbound_udr
