"""The endpoint catalogue ``azureml-2026.03``: built from the 2026-03-19 article, beside ``azureml-2021.11``.

Each documented change (docs/catalogue-2026-changes.md, research notes §c-§f) is a row of CHANGES, checked per
cloud against both versions; ids of unchanged endpoints are those of 2021.11 (the id-level change set is
pinned); provenance names a source for every entry; and the public example on this version compiles to rules
Azure accepts.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

from reconciler.arm import group_to_arm
from reconciler.catalogue import CatalogueStore
from reconciler.catalogue.diff import effective_port
from reconciler.catalogue.validate import validate_catalogue
from reconciler.compile import compile_target
from reconciler.config import load_config
from reconciler.model import CLOUDS, Catalogue, NetworkRule
from tests.test_render import AZURE_NAME, Swagger, service_rule_problems

OLD, NEW = "azureml-2021.11", "azureml-2026.03"
PUBLIC, GOV, CHINA = CLOUDS
ALL = CLOUDS

Need = tuple[str, str, str, str]  # value, effective port, direction, apply_as


@pytest.fixture(scope="module")
def old(catalogue_store: CatalogueStore) -> Catalogue:
    return catalogue_store.get(OLD)


@pytest.fixture(scope="module")
def new(catalogue_store: CatalogueStore) -> Catalogue:
    return catalogue_store.get(NEW)


def needs(cat: Catalogue, cloud: str, feature: str) -> set[Need]:
    """What a workspace in `cloud` with `feature` (plus baseline and implications) needs from `cat`."""
    wanted = cat.with_implied({"baseline", feature})
    return {(e.value, effective_port(e, p), e.direction, e.apply_as)
            for e in cat.entries if cloud in e.clouds and e.features & wanted for p in e.ports}


OUT, FW = "outbound", "firewall"
# (label, clouds, feature, value, port as the compiler sees it, needed in 2021.11, needed in 2026.03)
# direction/apply_as default to outbound firewall; the inbound rows give them in the label's suffix.
CHANGES: list[tuple[str, tuple[str, ...], str, str, str, bool, bool]] = [
    # service tags (A-2026 basic configuration)
    ("aml-udp-5831", ALL, "baseline", "AzureMachineLearning", "UDP:5831", False, True),
    ("aml-8787", ALL, "baseline", "AzureMachineLearning", "TCP:8787", False, True),
    ("aml-18881", ALL, "baseline", "AzureMachineLearning", "TCP:18881", False, True),
    ("aml-443", ALL, "baseline", "AzureMachineLearning", "TCP:443", True, True),
    ("batch-tag", ALL, "baseline", "BatchNodeManagement.{region}", "TCP:443", False, True),
    ("batch-tag-not-any", ALL, "compute", "BatchNodeManagement.{region}", "Any:443", False, False),
    ("afd-first-party", (PUBLIC,), "baseline", "AzureFrontDoor.FirstParty", "TCP:443", False, True),
    ("afd-first-party-sovereign", (GOV, CHINA), "microsoft_images", "AzureFrontDoor.FirstParty", "TCP:443",
     False, False),
    ("afd-frontend", (PUBLIC, GOV), "baseline", "AzureFrontDoor.Frontend", "TCP:443", True, True),
    ("afd-frontend-china", (CHINA,), "baseline", "AzureFrontDoor.Frontend", "TCP:443", False, False),
    ("mcr-tag-global", ALL, "baseline", "MicrosoftContainerRegistry", "TCP:443", False, True),
    ("mcr-tag-regional", ALL, "microsoft_images", "MicrosoftContainerRegistry.{region}", "TCP:443", True, False),
    ("azure-monitor", ALL, "monitoring", "AzureMonitor", "TCP:443", False, True),
    ("azure-monitor-not-baseline", ALL, "baseline", "AzureMonitor", "TCP:443", False, False),
    ("acr-tag", ALL, "custom_images", "AzureContainerRegistry.{region}", "TCP:443", True, False),
    ("key-vault", ALL, "hbi_workspace", "AzureKeyVault.{region}", "TCP:443", True, True),
    ("storage-445", ALL, "storage_firewall", "Storage.{region}", "TCP:445", False, True),
    ("storage-445-not-baseline", ALL, "compute", "Storage.{region}", "TCP:445", False, False),
    ("storage-443", ALL, "baseline", "Storage.{region}", "TCP:443", True, True),
    # compute hosts
    ("tundra-ms", (PUBLIC,), "compute", "{region}.tundra.azureml.ms", "UDP:5831", False, True),
    ("tundra-ms-sovereign", (GOV, CHINA), "compute", "{region}.tundra.azureml.ms", "UDP:5831", False, False),
    ("tundra-us", (GOV,), "compute", "{region}.tundra.azureml.us", "UDP:5831", False, True),
    ("tundra-cn", (CHINA,), "compute", "{region}.tundra.azureml.cn", "UDP:5831", False, True),
    ("tundra-wildcard", (PUBLIC,), "compute", "*.tundra.{region}.api.azureml.ms", "UDP:5831", False, True),
    ("batch-host", (PUBLIC,), "compute", "*.{region}.batch.azure.com", "Https:443", False, True),
    ("batch-service-host", (PUBLIC,), "compute", "*.{region}.service.batch.azure.com", "Https:443", False, True),
    ("batch-hosts-sovereign", (GOV, CHINA), "compute", "*.{region}.batch.azure.com", "Https:443", False, False),
    ("graph-windows-http", (PUBLIC, GOV), "compute", "graph.windows.net", "Http:80", True, False),
    ("graph-windows-https", (PUBLIC, GOV), "compute", "graph.windows.net", "Https:443", True, True),
    ("instances-8787-fallback", ALL, "private_endpoint", "*.instances.azureml.ms", "TCP:8787", True, True),
    # Azure Machine Learning hosts
    ("azureml-net", (PUBLIC,), "baseline", "*.azureml.net", "Https:443", False, True),
    ("modelmanagement-net", (PUBLIC,), "baseline", "*.modelmanagement.azureml.net", "Https:443", False, True),
    ("modelmanagement-us", (GOV,), "baseline", "*.modelmanagement.azureml.us", "Https:443", False, True),
    ("azureml-cn", (CHINA,), "baseline", "*.azureml.cn", "Https:443", False, True),
    ("modelmanagement-cn", (CHINA,), "baseline", "*.modelmanagement.ml.azure.cn", "Https:443", False, True),
    ("azureml-net-sovereign", (GOV, CHINA), "baseline", "*.azureml.net", "Https:443", False, False),
    ("automl-resources", (PUBLIC,), "automl_nlp_vision", "automlresources-prod.azureedge.net", "Https:443",
     False, True),
    ("automl-aka", (PUBLIC,), "automl_nlp_vision", "aka.ms", "Https:443", False, True),
    ("automl-sovereign", (GOV, CHINA), "automl_nlp_vision", "aka.ms", "Https:443", False, False),
    # Docker images
    ("mcr-host-baseline", ALL, "baseline", "mcr.microsoft.com", "Https:443", False, True),
    ("mcr-data-baseline", ALL, "baseline", "*.data.mcr.microsoft.com", "Https:443", False, True),
    ("viennaglobal", ALL, "microsoft_images", "viennaglobal.azurecr.io", "Https:443", True, False),
    ("acr-host-custom-images", (PUBLIC,), "custom_images", "{registry}.azurecr.io", "Https:443", True, True),
    ("acr-data-custom-images", (PUBLIC,), "custom_images", "{registry}.{region}.data.azurecr.io", "Https:443",
     False, True),
    # monitoring
    ("app-insights", (PUBLIC,), "monitoring", "*.in.applicationinsights.azure.com", "Https:443", True, True),
    ("dc-http", (PUBLIC,), "monitoring", "dc.services.visualstudio.com", "Http:80", True, False),
    ("monitoring-sovereign", (GOV, CHINA), "monitoring", "*.in.applicationinsights.azure.com", "Https:443",
     False, False),
    # Python (REC)
    ("pytorch-apex", ALL, "python_packages", "pytorch.org", "Https:443", True, True),
    ("pytorch-wildcard", ALL, "python_packages", "*.pytorch.org", "Https:443", True, True),
    ("pythonhosted", ALL, "python_packages", "files.pythonhosted.org", "Https:443", True, True),
    ("pypi-http", ALL, "python_packages", "pypi.org", "Http:80", True, False),
    # R and RStudio
    ("ghcr", ALL, "rstudio", "ghcr.io", "Https:443", False, True),
    ("pkg-containers", ALL, "rstudio", "pkg-containers.githubusercontent.com", "Https:443", False, True),
    ("cran-with-rstudio", ALL, "rstudio", "cloud.r-project.org", "Https:443", False, True),
    ("cran", ALL, "r_packages", "cloud.r-project.org", "Https:443", True, True),
    # VS Code
    *[(f"vscode-{v}", ALL, "vscode", v, "Https:443", False, True) for v in (
        "*.vscode.dev", "*.vscode-unpkg.net", "*.vscode-cdn.net", "*.vscodeexperiments.azureedge.net",
        "default.exp-tas.com", "code.visualstudio.com", "marketplace.visualstudio.com",
        "vscode.blob.core.windows.net", "*.gallerycdn.vsassets.io", "vscode.download.prss.microsoft.com")],
    ("vscode-update", ALL, "vscode", "update.code.visualstudio.com", "Https:443", True, True),
    ("websocket-only-interactive-jobs", ALL, "vscode",
     "raw.githubusercontent.com/microsoft/vscode-tools-for-ai/master/azureml_remote_websocket_server/*",
     "Https:443", True, False),
    ("websocket-interactive-jobs-old-url", ALL, "interactive_jobs",
     "raw.githubusercontent.com/microsoft/vscode-tools-for-ai/master/azureml_remote_websocket_server/*",
     "Https:443", False, False),
    # aligned with A-2026's value (issue 13): github.com "tree" path, scheme dropped, HTTPS only
    ("websocket-interactive-jobs", ALL, "interactive_jobs",
     "github.com/microsoft/vscode-tools-for-ai/tree/master/azureml_remote_websocket_server/*",
     "Https:443", False, True),
    # Kubernetes compute (Arc / AKS extension)
    *[(f"arc-removed-{v}", ALL, "arc_extension", v, "Https:443", True, False) for v in (
        "quay.io", "*.quay.io", "gcr.io", "storage.googleapis.com", "registry-1.docker.io",
        "production.cloudflare.docker.com", "auth.docker.io")],
    ("arc-acr-registry", (PUBLIC,), "arc_training", "{registry}.azurecr.io", "Https:443", True, True),
    ("arc-acr-data", (PUBLIC,), "arc_training", "{registry}.{region}.data.azurecr.io", "Https:443", False, True),
    ("arc-blob-narrowed-old", (PUBLIC,), "arc_inference", "*.blob.core.windows.net", "Https:443", True, False),
    ("arc-blob-narrowed-new", (PUBLIC,), "arc_inference", "{storage}.blob.core.windows.net", "Https:443",
     False, True),
    ("arc-workspace-api", (PUBLIC,), "arc_training", "{workspace_id}.workspace.{region}.api.azureml.ms",
     "Https:443", True, True),
    ("arc-pypi-training", ALL, "arc_training", "pypi.org", "Https:443", True, True),
    ("aks-ext-dp", (PUBLIC,), "aks_extension", "{region}.dp.kubernetesconfiguration.azure.com", "Https:443",
     False, True),
    ("aks-ext-dp-us", (GOV,), "aks_extension", "{region}.dp.kubernetesconfiguration.azure.us", "Https:443",
     False, True),
    ("aks-ext-marketplace", (PUBLIC,), "aks_extension", "arcmktplaceprod.azurecr.io", "Https:443", False, True),
    ("aks-ext-marketplace-sovereign", (GOV, CHINA), "aks_extension", "arcmktplaceprod.azurecr.io", "Https:443",
     False, False),
    ("aks-mcr-msedge", (PUBLIC,), "aks", "mcr-0001.mcr-msedge.net", "Https:443", False, True),
    ("aks-hcp", (PUBLIC,), "aks", "*.hcp.{region}.azmk8s.io", "Https:443", True, True),
]
# inbound: (label, clouds, feature, value, port, apply_as, in 2021, in 2026)
INBOUND: list[tuple[str, tuple[str, ...], str, str, str, str, bool, bool]] = [
    ("udr-aml", ALL, "inbound_udr", "AzureMachineLearning", "Any:*", "route", True, True),
    ("udr-batch", ALL, "inbound_udr", "BatchNodeManagement.{region}", "Any:*", "route", True, False),
    ("nsg-44224-public-ip", ALL, "public_ip_compute", "AzureMachineLearning", "TCP:44224", "nsg", False, True),
    ("nsg-44224-udr", ALL, "inbound_udr", "AzureMachineLearning", "TCP:44224", "nsg", False, True),
    ("nsg-44224-not-compute", ALL, "compute", "AzureMachineLearning", "TCP:44224", "nsg", True, False),
    ("nsg-batch", ALL, "compute", "BatchNodeManagement", "TCP:29876-29877", "nsg", True, False),
    ("vscode-ports", ALL, "vscode", "*.instances.azureml.ms", "TCP:8704-8710", "nsg", False, True),
]


def _cases() -> list[object]:
    cases: list[object] = []
    for label, clouds, feature, value, port, in_old, in_new in CHANGES:
        cases += [pytest.param(c, feature, (value, port, OUT, FW), in_old, in_new, id=f"{label}-{c}") for c in clouds]
    for label, clouds, feature, value, port, apply_as, in_old, in_new in INBOUND:
        cases += [pytest.param(c, feature, (value, port, "inbound", apply_as), in_old, in_new, id=f"{label}-{c}")
                  for c in clouds]
    return cases


@pytest.mark.parametrize(("cloud", "feature", "need", "in_old", "in_new"), _cases())
def test_documented_change(old: Catalogue, new: Catalogue, cloud: str, feature: str, need: Need, in_old: bool,
                           in_new: bool) -> None:
    assert (need in needs(old, cloud, feature), need in needs(new, cloud, feature)) == (in_old, in_new)


def test_left_out_on_purpose(new: Catalogue) -> None:
    values = {e.value for e in new.entries}
    assert "VirtualNetwork" not in values  # not usable in Azure Firewall (nor in UDRs)
    assert not {v for v in values if v.lower().startswith("keyvault")}  # E-01: AzureKeyVault.{region}
    assert not {v for v in values if v.lower().startswith("frontdoor.")}  # E-08: AzureFrontDoor.FirstParty
    assert not [v for v in values if "://" in v]  # A-2026's websocket URL has a scheme: not taken (E-07)
    assert not [e for e in new.entries if any(p.protocol == "Any" and p.ports != "*" for p in e.ports)
                and e.kind != "service_tag"]  # ANY on a host does not compile: Https used (E-14)


# ------------------------------------------------------------------------------------------------ the data


def test_loads_and_validates(new: Catalogue, catalogue_store: CatalogueStore) -> None:
    assert new.version == Path(new.path).name == NEW
    assert validate_catalogue(new, catalogue_store.service_tag_names()) == []
    assert catalogue_store.get() is new  # the newest version: the default for configurations without catalogue:


def test_counts(new: Catalogue) -> None:
    """The counts docs/catalogue.md and docs/catalogue-2026-changes.md give."""
    assert len(new.entries) == 160
    assert {c: sum(c in e.clouds for e in new.entries) for c in CLOUDS} == {
        PUBLIC: 108, GOV: 78, CHINA: 78}


def test_features(old: Catalogue, new: Catalogue) -> None:
    assert old.feature_names <= new.feature_names  # every 2021 configuration stays valid on 2026.03
    assert new.feature_names - old.feature_names == {
        "public_ip_compute", "storage_firewall", "rstudio", "interactive_jobs", "automl_nlp_vision", "aks_extension"}
    used = {f for e in new.entries for f in e.features}
    assert new.feature_names - used == {"microsoft_images"}  # kept declared, now empty (MCR is baseline)
    assert new.with_implied({"custom_images"}) == {"custom_images"}
    assert new.with_implied({"aks_extension"}) == {"aks_extension", "aks", "arc_extension"}
    assert new.with_implied({"inbound_udr"}) == {"inbound_udr", "public_ip_compute"}
    assert new.with_implied({"interactive_jobs"}) == {"interactive_jobs", "vscode"}
    assert new.with_implied({"rstudio"}) == {"rstudio", "r_packages"}


def test_provenance_names_a_source_for_every_entry(new: Catalogue) -> None:
    corrections = dict(new.corrections)
    for e in new.entries:
        p = e.provenance
        assert p.in_seed_text is False, e.id
        assert p.source and re.search(r"@[0-9a-f]{8}", p.source), e.id  # document and commit
        assert "§" in p.source, e.id  # the research notes' section
        if p.seed_text is not None:  # kept only where a correction still applies
            assert e.corrections, e.id
        for c in e.corrections:
            assert c.code in corrections
    used = {c.code for e in new.entries for c in e.corrections}
    assert used == set(corrections)  # no declared correction is unused


# Every id-level difference from 2021.11; everything else keeps its id (and is the same endpoint).
REMOVED = {
    "vscode.raw-githubusercontent-com-websocket-server",  # now vscode.github-com-websocket-server (A-2026's URL)
    "tag.azure-container-registry", "images.viennaglobal-azurecr-io", "inbound.udr.batch-node-management-region",
    "inbound.nsg.batch-node-management", "arc.training-and-inference.star-blob-core-windows-net",
    *(f"arc.extension-deployment.{x}" for x in (
        "star-data-mcr-microsoft-com", "quay-io", "star-quay-io", "gcr-io", "storage-googleapis-com",
        "registry-1-docker-io", "production-cloudflare-docker-com", "auth-docker-io")),
}
ADDED = {
    "vscode.github-com-websocket-server",
    "tag.batch-node-management", "tag.storage.storage-firewall", "tag.azure-monitor",
    "hosts.aml.star-azureml-net", "hosts.aml.star-modelmanagement-azureml-net",
    "hosts.aml.automlresources-prod-azureedge-net", "hosts.aml.aka-ms",
    "hosts.aml.star-modelmanagement-azureml-us", "hosts.aml.star-azureml-cn",
    "hosts.aml.star-modelmanagement-ml-azure-cn",
    "hosts.compute.region-tundra-azureml-ms", "hosts.compute.star-tundra-region-api-azureml-ms",
    "hosts.compute.star-region-batch-azure-com", "hosts.compute.star-region-service-batch-azure-com",
    "hosts.compute.region-tundra-azureml-us", "hosts.compute.region-tundra-azureml-cn",
    "rstudio.ghcr-io", "rstudio.pkg-containers-githubusercontent-com",
    *(f"vscode.{x}" for x in (
        "star-vscode-dev", "star-vscode-unpkg-net", "star-vscode-cdn-net", "star-vscodeexperiments-azureedge-net",
        "default-exp-tas-com", "code-visualstudio-com", "marketplace-visualstudio-com", "vscode-blob-core-windows-net",
        "star-gallerycdn-vsassets-io", "vscode-download-prss-microsoft-com", "ports.star-instances-azureml-ms")),
    "aks.mcr-0001-mcr-msedge-net",
    *(f"aks.ext.{x}" for x in (
        "region-dp-kubernetesconfiguration-azure-com", "region-dp-kubernetesconfiguration-azure-us",
        "arcmktplaceprod-azurecr-io", "arcmktplaceprod-centralindia-data-azurecr-io",
        "arcmktplaceprod-japaneast-data-azurecr-io", "arcmktplaceprod-westus2-data-azurecr-io",
        "arcmktplaceprod-westeurope-data-azurecr-io", "arcmktplaceprod-eastus-data-azurecr-io",
        "star-ingestion-msftcloudes-com", "star-microsoftmetrics-com", "marketplaceapi-microsoft-com")),
    "arc.training-and-inference.storage-blob-core-windows-net",
    "arc.training-and-inference.registry-region-data-azurecr-io", "images.registry-region-data-azurecr-io",
}


def test_ids_of_unchanged_endpoints_are_stable(old: Catalogue, new: Catalogue) -> None:
    old_ids, new_ids = {e.id for e in old.entries}, {e.id for e in new.entries}
    assert old_ids - new_ids == REMOVED
    assert new_ids - old_ids == ADDED
    for e in new.entries:
        before = old.entry(e.id)
        if before is None:
            continue
        same = (e.kind, e.direction, e.apply_as) == (before.kind, before.direction, before.apply_as)
        assert same and (e.value == before.value or e.id == "tag.microsoft-container-registry"), e.id
    # no endpoint was renamed: a new id never carries a removed entry's value, direction and feature set
    removed = {(e.value, e.direction, e.features) for e in old.entries if e.id in REMOVED}
    assert not [e.id for e in new.entries if e.id in ADDED and (e.value, e.direction, e.features) in removed]


def test_ids_follow_the_scheme(new: Catalogue) -> None:
    prefixes = ("tag.", "hosts.general.", "hosts.aml.", "hosts.compute.", "images.", "monitoring.", "python.", "r.",
                "rstudio.", "vscode.", "aks.", "arc.", "inbound.")
    for e in new.entries:
        assert e.id.startswith(prefixes), e.id
        if e.kind != "service_tag" and e.apply_as == "firewall":
            slugs = [v.replace("*", "star").replace("{", "").replace("}", "").replace(".", "-").lower()
                     for v in (e.value, e.if_unknown) if v]  # a per-resource entry may keep its wildcard's id
            assert any(slug.split("/")[0] in e.id for slug in slugs), e.id


# ------------------------------------------------------------------------------------------------ compile


@pytest.fixture(scope="module")
def swagger(spec_dir: Path) -> Swagger:
    return Swagger(spec_dir)


def _config_on_2026(tmp_path: Path, example: Path) -> Path:
    doc = yaml.safe_load(example.read_text(encoding="utf-8"))
    doc["catalogue"] = NEW
    path = tmp_path / example.name
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


@pytest.mark.parametrize("example", ["public-2026", "usgov", "china"])
def test_every_feature_compiles_to_rules_azure_accepts(tmp_path: Path, catalogue_store: CatalogueStore,
                                                       examples_dir: Path, swagger: Swagger, example: str) -> None:
    path = examples_dir / f"{example}.yaml"
    if example != "public-2026":  # the sovereign examples stay on 2021.11; try them on 2026.03 too
        path = _config_on_2026(tmp_path, path)
    config = load_config(path, catalogue_store.get)
    (target,) = config.targets
    assert target.catalogue_version == NEW
    (ws,) = target.workspaces
    assert ws.features == catalogue_store.get(NEW).feature_names - {"baseline"}  # [all]
    desired = compile_target(target, catalogue_store.get(NEW))
    body = json.loads(json.dumps(group_to_arm(desired.group)))
    assert swagger.validate_group_body(body) == []
    assert service_rule_problems(body, catalogue_store.service_tag_names().get(target.cloud)) == []
    assert all(AZURE_NAME.match(r.name) for r in desired.routes)
    assert [r.address_prefix for r in desired.routes] == ["AzureMachineLearning"]  # no Batch route any more
    codes = {w.code for w in desired.warnings}
    assert "not-expressible" not in codes  # every entry compiles to something, or is informational
    assert desired.requirements.dns_proxy  # SMB 445, NTP and tundra are FQDN network rules


def test_public_2026_example_rules(catalogue_store: CatalogueStore, examples_dir: Path) -> None:
    config = load_config(examples_dir / "public-2026.yaml", catalogue_store.get)
    (target,) = config.targets
    desired = compile_target(target, catalogue_store.get(NEW))
    net = {r.name: r for c in desired.group.rule_collections for r in c.rules if isinstance(r, NetworkRule)}
    assert net["tag-AzureMachineLearning-udp"].destination_ports == {"5831"}
    assert net["tag-AzureMachineLearning-tcp"].destination_ports == {"443", "8787", "18881"}
    assert net["tag-BatchNodeManagement.WestUS2-tcp"].ip_protocols == {"TCP"}
    # allow_by defaults to service_tags: the tundra hosts (UDP 5831) and *.instances.azureml.ms on 8787/18881
    # are covered by the AzureMachineLearning tag, so neither a host rule nor a wildcard fallback appears
    assert "fqdn-westus2.tundra.azureml.ms-udp" not in net
    assert net["tag-Storage.WestUS2-tcp"].destination_ports == {"443", "445"}
    assert "tag-MicrosoftContainerRegistry-tcp" in net
    assert {(w.code, w.entry_id) for w in desired.warnings} == {
        ("nsg-only", "inbound.nsg.azure-machine-learning"),
        ("nsg-only", "vscode.ports.star-instances-azureml-ms"),
        ("url-widened", "vscode.github-com-websocket-server"),
        # Microsoft's networkFeatures omit FW for these; the docs use them in Azure Firewall anyway
        ("tag-not-firewall-usable", "aks.net.azurecloud-region"),
        ("tag-not-firewall-usable", "tag.batch-node-management"),
    }
