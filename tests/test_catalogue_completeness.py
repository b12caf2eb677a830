"""Completeness and consistency of the endpoint catalogue ``azureml-2021.11``.

The tables below are this test's own reading of the seed document (the ko-KR machine translation of
"Configure inbound and outbound network traffic", ms.date 11/30/2021), typed by hand table by table,
after the corrections recorded in docs/catalogue-corrections.md. Every seed row must be in the
catalogue with the right kind, clouds, ports and features, and the catalogue must hold nothing else
than these rows plus the documented additions (``in_seed_text: false``).

The YAML is read with ``yaml.safe_load`` directly: this test does not depend on the product loader.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.emulator.reference import SEED_FILE, ReferenceData

REPO = Path(__file__).resolve().parents[1]
CATALOGUE_ROOT = REPO / "config" / "catalogue"
CATALOGUE_DIR = CATALOGUE_ROOT / "azureml-2021.11"


SERVICE_TAG_FILES = {
    "AzureCloud": ("service-tags", "ServiceTags_Public.json"),
    "AzureUSGovernment": ("service-tags", "ServiceTags_Gov.json"),
}
# The region each cloud's regional tags are checked with (PascalCase suffix, lower-case ARM name).
SAMPLE_REGION = {"AzureCloud": ("WestUS2", "westus2"), "AzureUSGovernment": ("USGovVirginia", "usgovvirginia")}
# Tag families whose regional names use the lower-case region in the JSON (AzureCloud.westus2).
LOWERCASE_REGION_TAGS = {"AzureCloud"}

PUB = ("AzureCloud",)
GOV = ("AzureUSGovernment",)
CN = ("AzureChinaCloud",)
PUB_GOV = PUB + GOV
ALL = PUB + GOV + CN
CLOUDS = set(ALL)
TAB = {"AzureCloud": "azure-public", "AzureUSGovernment": "azure-government", "AzureChinaCloud": "azure-china-21vianet"}

REQUIRED_FEATURES = {
    "baseline", "hbi_workspace", "custom_images", "microsoft_images", "private_endpoint", "notebooks",
    "compute", "python_packages", "r_packages", "vscode", "monitoring", "aks", "arc_extension",
    "arc_training", "arc_inference", "inbound_udr",
}  # fmt: skip

# ---------------------------------------------------------------------------------------------
# The seed, table by table (after correction).
# ---------------------------------------------------------------------------------------------

NET = "azure-firewall/outbound-configuration/network-rules"
APP = "azure-firewall/outbound-configuration/application-rules"
AKS_FW = "azure-firewall/azure-kubernetes-services"
INBOUND = "azure-firewall/inbound-configuration"
REQUIRED_ACCESS = "required-public-internet-access"
DEPS = "other-firewalls/dependencies-api"
GENERAL = "other-firewalls/microsoft-hosts/general"
AML = "other-firewalls/microsoft-hosts/azure-ml"
COMPUTE = "other-firewalls/microsoft-hosts/compute"
IMAGES = "other-firewalls/microsoft-hosts/docker-images"
MONITORING = "other-firewalls/microsoft-hosts/monitoring"
PYTHON = "other-firewalls/python-hosts"
R_HOSTS = "other-firewalls/r-hosts"
AKS_OF = "other-firewalls/azure-kubernetes-services"
ARC = "other-firewalls/azure-arc-enabled-kubernetes"
VSCODE = "other-firewalls/visual-studio-code-hosts"

TAG, FQDN, WILD, URL = "service_tag", "fqdn", "wildcard_fqdn", "url_path"
T443 = ("TCP:443",)
T443_445 = ("TCP:443", "TCP:445")
HTTPS = ("Https:443",)
HTTP = ("Http:80",)
HTTP_HTTPS = ("Http:80", "Https:443")
WEBSOCKET_URL = "raw.githubusercontent.com/microsoft/vscode-tools-for-ai/master/azureml_remote_websocket_server/*"


@dataclass(frozen=True)
class Row:
    value: str
    kind: str
    ports: tuple[str, ...]  # the entry must carry at least these
    features: tuple[str, ...]  # exactly the entry's features
    clouds: tuple[str, ...] = ()  # the clouds this row implies (tabbed tables: the tab's cloud)
    direction: str = "outbound"
    apply_as: str = "firewall"


def r(value: str, kind: str, ports: tuple[str, ...], *features: str, clouds: tuple[str, ...] = ()) -> Row:
    return Row(value, kind, ports, tuple(features), clouds)


# Key: (section path, cloud tab or None for sections without tabs).
SEED_TABLES: dict[tuple[str, str | None], list[Row]] = {
    # Azure Firewall > outbound > step 1: network rules (service tags), no tabs.
    (NET, None): [
        r("AzureActiveDirectory", TAG, ("TCP:80", "TCP:443"), "baseline", clouds=ALL),
        r("AzureMachineLearning", TAG, T443, "baseline", clouds=ALL),
        r("AzureResourceManager", TAG, T443, "baseline", clouds=ALL),
        r("Storage.{region}", TAG, T443, "baseline", clouds=ALL),
        r("AzureFrontDoor.Frontend", TAG, T443, "baseline", clouds=PUB_GOV),  # not needed in China
        r("AzureContainerRegistry.{region}", TAG, T443, "custom_images", clouds=ALL),  # E-02
        r("MicrosoftContainerRegistry.{region}", TAG, T443, "microsoft_images", clouds=ALL),
        r("AzureKeyVault.{region}", TAG, T443, "hbi_workspace", clouds=ALL),  # E-01
    ],
    # Azure Firewall > outbound > step 2: application rules, "http, https", no tabs.
    (APP, None): [
        r("graph.windows.net", FQDN, HTTP_HTTPS, "compute", clouds=PUB),  # E-15: public host
        r("anaconda.com", FQDN, HTTP_HTTPS, "python_packages", clouds=ALL),
        r("*.anaconda.com", WILD, HTTP_HTTPS, "python_packages", clouds=ALL),
        r("*.anaconda.org", WILD, HTTP_HTTPS, "python_packages", clouds=ALL),
        r("pypi.org", FQDN, HTTP_HTTPS, "python_packages", clouds=ALL),
        r("cloud.r-project.org", FQDN, HTTP_HTTPS, "r_packages", clouds=ALL),
        r("pytorch.org", FQDN, HTTP_HTTPS, "python_packages", clouds=ALL),  # E-06
        r("*.pytorch.org", WILD, HTTP_HTTPS, "python_packages", clouds=ALL),  # E-06
        r("*.tensorflow.org", WILD, HTTP_HTTPS, "python_packages", clouds=ALL),
        r("update.code.visualstudio.com", FQDN, HTTP_HTTPS, "vscode", clouds=ALL),
        r("*.vo.msecnd.net", WILD, HTTP_HTTPS, "vscode", clouds=ALL),
        r(WEBSOCKET_URL, URL, HTTP_HTTPS, "vscode", clouds=ALL),
        r("dc.applicationinsights.azure.com", FQDN, HTTP_HTTPS, "monitoring", clouds=PUB),
        r("dc.applicationinsights.microsoft.com", FQDN, HTTP_HTTPS, "monitoring", clouds=PUB),
        r("dc.services.visualstudio.com", FQDN, HTTP_HTTPS, "monitoring", clouds=PUB),
    ],
    # Azure Kubernetes Services, twice (E-17): outbound to mcr.microsoft.com, no port (E-14).
    (AKS_FW, None): [r("mcr.microsoft.com", FQDN, HTTPS, "aks", clouds=ALL)],
    (AKS_OF, None): [r("mcr.microsoft.com", FQDN, HTTPS, "aks", clouds=ALL)],
    # Dependencies API: the sample response.
    (DEPS, None): [
        r("login.microsoftonline.com", FQDN, ("TCP:80", "TCP:443"), "baseline", clouds=PUB),
        r("management.azure.com", FQDN, T443, "baseline", clouds=PUB),
    ],
    # Microsoft hosts > General Azure hosts.
    (GENERAL, "AzureCloud"): [
        r("login.microsoftonline.com", FQDN, ("TCP:80", "TCP:443"), "baseline"),
        r("management.azure.com", FQDN, T443, "baseline"),  # Azure portal and ARM rows
    ],
    (GENERAL, "AzureUSGovernment"): [
        r("login.microsoftonline.us", FQDN, ("TCP:80", "TCP:443"), "baseline"),
        r("management.azure.us", FQDN, T443, "baseline"),
        r("management.usgovcloudapi.net", FQDN, T443, "baseline"),
    ],
    (GENERAL, "AzureChinaCloud"): [
        r("login.chinacloudapi.cn", FQDN, ("TCP:80", "TCP:443"), "baseline"),
        r("management.azure.cn", FQDN, T443, "baseline"),
        r("management.chinacloudapi.cn", FQDN, T443, "baseline"),
    ],
    # Microsoft hosts > Azure Machine Learning hosts.
    (AML, "AzureCloud"): [
        r("ml.azure.com", FQDN, T443, "baseline"),
        r("*.azureml.ms", WILD, T443, "baseline"),
        r("*.notebooks.azure.net", WILD, T443, "notebooks"),
        r("{storage}.file.core.windows.net", FQDN, T443_445, "notebooks"),
        r("{storage}.dfs.core.windows.net", FQDN, T443, "notebooks"),
        r("{storage}.blob.core.windows.net", FQDN, T443, "notebooks"),
        r("graph.microsoft.com", FQDN, T443, "notebooks"),
        r("*.aznbcontent.net", WILD, T443, "notebooks"),
    ],
    (AML, "AzureUSGovernment"): [
        r("ml.azure.us", FQDN, T443, "baseline"),
        r("*.ml.azure.us", WILD, T443, "baseline"),
        r("*.notebooks.usgovcloudapi.net", WILD, T443, "notebooks"),
        r("{storage}.file.core.usgovcloudapi.net", FQDN, T443_445, "notebooks"),
        r("{storage}.dfs.core.usgovcloudapi.net", FQDN, T443, "notebooks"),
        r("{storage}.blob.core.usgovcloudapi.net", FQDN, T443, "notebooks"),
        r("graph.microsoft.us", FQDN, T443, "notebooks"),
        r("*.aznbcontent.net", WILD, T443, "notebooks"),
    ],
    (AML, "AzureChinaCloud"): [
        r("studio.ml.azure.cn", FQDN, T443, "baseline"),
        r("*.ml.azure.cn", WILD, T443, "baseline"),
        r("*.notebooks.chinacloudapi.cn", WILD, T443, "notebooks"),
        r("{storage}.file.core.chinacloudapi.cn", FQDN, T443_445, "notebooks"),
        r("{storage}.dfs.core.chinacloudapi.cn", FQDN, T443, "notebooks"),
        r("{storage}.blob.core.chinacloudapi.cn", FQDN, T443, "notebooks"),
        r("graph.chinacloudapi.cn", FQDN, T443, "notebooks"),
        r("*.aznbcontent.net", WILD, T443, "notebooks"),
    ],
    # Microsoft hosts > compute instance and compute cluster hosts. Tips: Key Vault only with
    # hbi_workspace; 8787/18881 only with a private endpoint (E-12: AzureMachineLearning fallback).
    (COMPUTE, "AzureCloud"): [
        r("graph.windows.net", FQDN, HTTPS, "compute"),  # merged with the APP row (E-14)
        r("*.instances.azureml.net", WILD, T443, "compute"),
        r("*.instances.azureml.ms", WILD, T443, "compute"),
        r("*.instances.azureml.ms", WILD, ("TCP:8787", "TCP:18881"), "private_endpoint"),
        r("*.blob.core.windows.net", WILD, T443, "compute"),
        r("*.table.core.windows.net", WILD, T443, "compute"),
        r("*.queue.core.windows.net", WILD, T443, "compute"),
        r("{storage}.file.core.windows.net", FQDN, T443_445, "compute"),
        r("{storage}.blob.core.windows.net", FQDN, T443, "compute"),
        r("*.vault.azure.net", WILD, T443, "hbi_workspace"),
    ],
    (COMPUTE, "AzureUSGovernment"): [
        r("graph.windows.net", FQDN, HTTPS, "compute"),  # E-13
        r("*.instances.azureml.us", WILD, T443, "compute"),
        r("*.instances.azureml.ms", WILD, T443, "compute"),  # E-13
        r("*.instances.azureml.ms", WILD, ("TCP:8787", "TCP:18881"), "private_endpoint"),
        r("*.blob.core.usgovcloudapi.net", WILD, T443, "compute"),
        r("*.table.core.usgovcloudapi.net", WILD, T443, "compute"),
        r("*.queue.core.usgovcloudapi.net", WILD, T443, "compute"),
        r("{storage}.file.core.usgovcloudapi.net", FQDN, T443_445, "compute"),
        r("{storage}.blob.core.usgovcloudapi.net", FQDN, T443, "compute"),
        r("*.vault.usgovcloudapi.net", WILD, T443, "hbi_workspace"),
    ],
    (COMPUTE, "AzureChinaCloud"): [
        r("graph.chinacloudapi.cn", FQDN, T443, "compute"),
        r("*.instances.azureml.cn", WILD, T443, "compute"),
        r("*.instances.azureml.ms", WILD, T443, "compute"),  # E-13
        r("*.instances.azureml.ms", WILD, ("TCP:8787", "TCP:18881"), "private_endpoint"),
        r("*.blob.core.chinacloudapi.cn", WILD, T443, "compute"),  # E-03
        r("*.table.core.chinacloudapi.cn", WILD, T443, "compute"),
        r("*.queue.core.chinacloudapi.cn", WILD, T443, "compute"),
        r("{storage}.file.core.chinacloudapi.cn", FQDN, T443_445, "compute"),
        r("{storage}.blob.core.chinacloudapi.cn", FQDN, T443, "compute"),
        r("*.vault.azure.cn", WILD, T443, "hbi_workspace"),
    ],
    # Microsoft hosts > Docker images maintained by Azure ML, no tabs.
    (IMAGES, None): [
        r("mcr.microsoft.com", FQDN, T443, "microsoft_images", clouds=ALL),
        r("viennaglobal.azurecr.io", FQDN, T443, "microsoft_images", clouds=ALL),
    ],
    # Microsoft hosts > Monitoring, metrics and diagnostics; no ports (E-14), public hosts (E-15).
    (MONITORING, None): [
        r("dc.applicationinsights.azure.com", FQDN, HTTPS, "monitoring", clouds=PUB),
        r("dc.applicationinsights.microsoft.com", FQDN, HTTPS, "monitoring", clouds=PUB),
        r("dc.services.visualstudio.com", FQDN, HTTPS, "monitoring", clouds=PUB),
        r("*.in.applicationinsights.azure.com", WILD, HTTPS, "monitoring", clouds=PUB),  # E-04
    ],
    (PYTHON, None): [
        r("anaconda.com", FQDN, HTTPS, "python_packages", clouds=ALL),
        r("*.anaconda.com", WILD, HTTPS, "python_packages", clouds=ALL),
        r("*.anaconda.org", WILD, HTTPS, "python_packages", clouds=ALL),
        r("pypi.org", FQDN, HTTPS, "python_packages", clouds=ALL),
        r("pytorch.org", FQDN, HTTPS, "python_packages", clouds=ALL),
        r("*.pytorch.org", WILD, HTTPS, "python_packages", clouds=ALL),
        r("*.tensorflow.org", WILD, HTTPS, "python_packages", clouds=ALL),
    ],
    (R_HOSTS, None): [r("cloud.r-project.org", FQDN, HTTPS, "r_packages", clouds=ALL)],
    (f"{ARC}/extension-deployment", None): [
        r("*.data.mcr.microsoft.com", WILD, HTTPS, "arc_extension", clouds=ALL),
        r("quay.io", FQDN, HTTPS, "arc_extension", clouds=ALL),
        r("*.quay.io", WILD, HTTPS, "arc_extension", clouds=ALL),
        r("gcr.io", FQDN, HTTPS, "arc_extension", clouds=ALL),
        r("storage.googleapis.com", FQDN, HTTPS, "arc_extension", clouds=ALL),
        r("registry-1.docker.io", FQDN, HTTPS, "arc_extension", clouds=ALL),
        r("production.cloudflare.docker.com", FQDN, HTTPS, "arc_extension", clouds=ALL),
        r("auth.docker.io", FQDN, HTTPS, "arc_extension", clouds=ALL),
        r("*.kusto.windows.net", WILD, HTTPS, "arc_extension", clouds=PUB),
        r("*.table.core.windows.net", WILD, HTTPS, "arc_extension", clouds=PUB),
        r("*.queue.core.windows.net", WILD, HTTPS, "arc_extension", clouds=PUB),
    ],
    (f"{ARC}/training", None): [
        r("pypi.org", FQDN, HTTPS, "arc_training", clouds=ALL),
        r("archive.ubuntu.com", FQDN, HTTP, "arc_training", clouds=ALL),
        r("security.ubuntu.com", FQDN, HTTP, "arc_training", clouds=ALL),
        r("ppa.launchpad.net", FQDN, HTTP, "arc_training", clouds=ALL),
    ],
    (f"{ARC}/training-and-inference", None): [
        r("*.azurecr.io", WILD, HTTPS, "arc_training", "arc_inference", clouds=PUB),
        r("*.blob.core.windows.net", WILD, HTTPS, "arc_training", "arc_inference", clouds=PUB),
        r("*.workspace.{region}.api.azureml.ms", WILD, HTTPS, "arc_training", "arc_inference", clouds=PUB),
        r("{region}.experiments.azureml.net", FQDN, HTTPS, "arc_training", "arc_inference", clouds=PUB),
        r("{region}.api.azureml.ms", FQDN, HTTPS, "arc_training", "arc_inference", clouds=PUB),
    ],
    (VSCODE, None): [
        r("update.code.visualstudio.com", FQDN, HTTPS, "vscode", clouds=ALL),
        r("*.vo.msecnd.net", WILD, HTTPS, "vscode", clouds=ALL),
        r(WEBSOCKET_URL, URL, HTTPS, "vscode", clouds=ALL),
    ],
}

# Entries not in the seed text: added by a correction or expanded from a referenced document.
# Key: (section the entry is filed under, short name of the source).
ADDITIONS: dict[tuple[str, str], list[Row]] = {
    (NET, "E-08"): [r("AzureFrontDoor.FirstParty", TAG, T443, "microsoft_images", clouds=PUB)],
    (APP, "E-05"): [r("files.pythonhosted.org", FQDN, HTTPS, "python_packages", clouds=ALL)],
    (f"{ARC}/training", "E-21"): [r("files.pythonhosted.org", FQDN, HTTPS, "arc_training", clouds=ALL)],
    (IMAGES, "E-08"): [r("*.data.mcr.microsoft.com", WILD, T443, "microsoft_images", clouds=ALL)],
    (IMAGES, "E-19"): [
        r("*.azurecr.io", WILD, HTTPS, "custom_images", clouds=PUB),
        r("*.azurecr.us", WILD, HTTPS, "custom_images", clouds=GOV),
        r("*.azurecr.cn", WILD, HTTPS, "custom_images", clouds=CN),
    ],
    # AKS limit-egress-traffic (2021): required network rules and FQDN rules per cloud (notes §e).
    (AKS_FW, "aks-2021"): [
        r("AzureCloud.{region}", TAG, ("UDP:1194", "TCP:9000"), "aks", clouds=PUB_GOV),
        r("AzureCloud.{region}", TAG, ("UDP:1194", "TCP:9000", "TCP:22"), "aks", clouds=CN),
        r("ntp.ubuntu.com", FQDN, ("UDP:123",), "aks", clouds=ALL),
        r("mcr.microsoft.com", FQDN, HTTPS, "aks", clouds=ALL),
        r("*.data.mcr.microsoft.com", WILD, HTTPS, "aks", clouds=ALL),
        r("packages.microsoft.com", FQDN, HTTPS, "aks", clouds=ALL),
        r("*.hcp.{region}.azmk8s.io", WILD, HTTPS, "aks", clouds=PUB),
        r("management.azure.com", FQDN, HTTPS, "aks", clouds=PUB),
        r("login.microsoftonline.com", FQDN, HTTPS, "aks", clouds=PUB),
        r("acs-mirror.azureedge.net", FQDN, HTTPS, "aks", clouds=PUB_GOV),
        r("*.hcp.{region}.cx.aks.containerservice.azure.us", WILD, HTTPS, "aks", clouds=GOV),
        r("management.usgovcloudapi.net", FQDN, HTTPS, "aks", clouds=GOV),
        r("login.microsoftonline.us", FQDN, HTTPS, "aks", clouds=GOV),
        r("*.hcp.{region}.cx.prod.service.azk8s.cn", WILD, HTTPS, "aks", clouds=CN),
        r("*.tun.{region}.cx.prod.service.azk8s.cn", WILD, HTTPS, "aks", clouds=CN),
        r("management.chinacloudapi.cn", FQDN, HTTPS, "aks", clouds=CN),
        r("login.chinacloudapi.cn", FQDN, HTTPS, "aks", clouds=CN),
        r("*.azk8s.cn", WILD, HTTPS, "aks", clouds=CN),
    ],
    # The UDR include (2021, "service tag routes" tab): next hop Internet (notes §d).
    (INBOUND, "udr-2021"): [
        Row("AzureMachineLearning", TAG, ("Any:*",), ("inbound_udr",), ALL, "inbound", "route"),
        Row("BatchNodeManagement.{region}", TAG, ("Any:*",), ("inbound_udr",), ALL, "inbound", "route"),
    ],
    # The required-public-internet-access include (2021-11-05): inbound NSG rows.
    (REQUIRED_ACCESS, "include-2021-11"): [
        Row("BatchNodeManagement", TAG, ("TCP:29876-29877",), ("compute",), ALL, "inbound", "nsg"),
        Row("AzureMachineLearning", TAG, ("TCP:44224",), ("compute",), ALL, "inbound", "nsg"),
    ],
}

# The AKS mcr.microsoft.com row is in the seed AND in AKS-2021; it is a seed entry.
SEED_ROWS_ALSO_IN_ADDITIONS = {("mcr.microsoft.com", ("aks",))}

# Corrections that must be recorded on specific entries: code -> [(value, features, seed_text or None)].
REQUIRED_CORRECTIONS: dict[str, list[tuple[str, tuple[str, ...], str | None]]] = {
    "E-01": [("AzureKeyVault.{region}", ("hbi_workspace",), "Keyvault. 지역")],
    "E-02": [("AzureContainerRegistry.{region}", ("custom_images",), "ContainerRegistry.region")],
    "E-03": [("*.blob.core.chinacloudapi.cn", ("compute",), r"\*blob.core.chinacloudapi.cn")],
    "E-04": [
        ("*.in.applicationinsights.azure.com", ("monitoring",), ". in.applicationinsights.azure.com"),
        ("*.workspace.{region}.api.azureml.ms", ("arc_training", "arc_inference"), None),
        ("{region}.experiments.azureml.net", ("arc_training", "arc_inference"), None),
        ("{region}.api.azureml.ms", ("arc_training", "arc_inference"), None),
    ],
    "E-05": [("files.pythonhosted.org", ("python_packages",), None), ("pypi.org", ("python_packages",), None)],
    "E-21": [("files.pythonhosted.org", ("arc_training",), None)],
    "E-06": [
        ("pytorch.org", ("python_packages",), r"\*pytorch.org"),
        ("*.pytorch.org", ("python_packages",), r"\*pytorch.org"),
    ],
    "E-07": [(WEBSOCKET_URL, ("vscode",), None)],
    "E-08": [
        ("AzureFrontDoor.FirstParty", ("microsoft_images",), None),
        ("*.data.mcr.microsoft.com", ("microsoft_images",), None),
        ("MicrosoftContainerRegistry.{region}", ("microsoft_images",), None),
    ],
    "E-09": [("AzureActiveDirectory", ("baseline",), None)],
    "E-10": [
        ("AzureFrontDoor.Frontend", ("baseline",), "AzureFrontDoor.FrontEnd</br>* Azure 중국에서는 필요하지 않습니다."),
        ("AzureResourceManager", ("baseline",), None),
    ],
    "E-11": [("{storage}.file.core.windows.net", ("notebooks",), None)],
    "E-12": [("*.instances.azureml.ms", ("private_endpoint",), None)],
    "E-19": [("*.azurecr.io", ("custom_images",), None)],
}
MUST_BE_RECORDED = {"E-01", "E-02", "E-03", "E-04", "E-05", "E-06", "E-08", "E-12"}

KINDS = {TAG, FQDN, WILD, URL}
ENTRY_KEYS = {
    "id", "kind", "value", "direction", "ports", "clouds", "features", "apply_as", "fallback", "purpose",
    "provenance", "corrections", "notes", "strategy", "covered_by", "if_unknown", "widen_ports",
}  # fmt: skip
ENTRY_REQUIRED = {"id", "kind", "value", "direction", "ports", "clouds", "features", "purpose", "provenance",
                  "strategy"}
PROVENANCE_KEYS = {"section", "seed_text", "also_in", "in_seed_text", "source"}
CATALOGUE_KEYS = {"version", "title", "source", "well_known_ports", "features", "corrections", "files"}
ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
PORT_RE = re.compile(r"^(TCP|UDP|Any|Http|Https):(\*|\d+|\d+-\d+)$")
PLACEHOLDER_RE = re.compile(r"\{[^}]*\}")
LABEL = r"(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?|\{region\}|\{storage\}|\{keyvault\}|\{registry\}|\{workspace_id\})"
HOST_RE = re.compile(rf"^{LABEL}(?:\.{LABEL})+$")
TAG_RE = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:\.(?:[A-Za-z][A-Za-z0-9]*|\{region\}))?$")


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def load_yaml(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


@cache
def catalogue() -> dict[str, Any]:
    data: dict[str, Any] = load_yaml(CATALOGUE_DIR / "catalogue.yaml")
    return data


@cache
def entries_by_file() -> dict[str, list[dict[str, Any]]]:
    return {name: load_yaml(CATALOGUE_DIR / name)["entries"] for name in catalogue()["files"]}


def entries() -> list[dict[str, Any]]:
    return [entry for file_entries in entries_by_file().values() for entry in file_entries]


def sections_of(entry: dict[str, Any]) -> set[str]:
    provenance = entry["provenance"]
    return {provenance["section"], *provenance.get("also_in", [])}


def apply_as(entry: dict[str, Any]) -> str:
    return str(entry.get("apply_as", "firewall"))


def source_value(entry: dict[str, Any]) -> str:
    """What the source wrote: a per-resource entry ({keyvault}, {registry}, {workspace_id}) keeps the documented
    wildcard in `if_unknown`."""
    return str(entry.get("if_unknown") or entry["value"])


def source_kind(entry: dict[str, Any]) -> str:
    return WILD if entry.get("if_unknown") else str(entry["kind"])


def matching(row: Row, clouds: tuple[str, ...]) -> list[dict[str, Any]]:
    return [
        entry
        for entry in entries()
        if source_value(entry) == row.value
        and set(entry["features"]) == set(row.features)
        and entry["direction"] == row.direction
        and apply_as(entry) == row.apply_as
        and set(clouds) <= set(entry["clouds"])
    ]


@cache
def service_tag_names(cloud: str) -> frozenset[str]:
    path = ReferenceData.at().path(*SERVICE_TAG_FILES[cloud])
    with path.open(encoding="utf-8") as handle:
        return frozenset(value["name"] for value in json.load(handle)["values"])


def all_rows() -> list[tuple[str, str | None, Row, bool]]:
    """(section, cloud tab, row, in_seed_text) for every seed row and every addition."""
    rows = [(section, tab, row, True) for (section, tab), table in SEED_TABLES.items() for row in table]
    rows += [(section, None, row, False) for (section, _), table in ADDITIONS.items() for row in table]
    return rows


def is_non_web(port: str) -> bool:
    """A TCP/UDP/Any port other than 80/443: Azure Firewall cannot match a wildcard FQDN there."""
    proto, number = port.split(":")
    return proto in {"TCP", "UDP", "Any"} and number not in {"80", "443"}


def row_clouds(tab: str | None, row: Row) -> tuple[str, ...]:
    clouds = row.clouds or ((tab,) if tab else ())
    assert clouds, f"test table error: {row.value} has neither a tab nor clouds"
    return clouds


def row_id(item: tuple[str, str | None, Row, bool]) -> str:
    section, tab, row, _ = item
    return f"{section}[{tab or '-'}]:{row.value}:{'+'.join(row.features)}"


# ---------------------------------------------------------------------------------------------
# Structure of catalogue.yaml
# ---------------------------------------------------------------------------------------------


def test_catalogue_header() -> None:
    data = catalogue()
    assert set(data) == CATALOGUE_KEYS
    assert data["version"] == "azureml-2021.11" == CATALOGUE_DIR.name
    assert data["source"] == {
        "document": SEED_FILE,
        "upstream": "articles/machine-learning/how-to-access-azureml-behind-firewall.md",
        "ms_date": "2021-11-30",
        "locale": "ko-KR (machine translation)",
        "commit": "1e9139680ca51f55ac965c4dd6dd82bf2fd43675",
    }
    # The seed's well-known ports table, as documentation.
    assert [item["port"] for item in data["well_known_ports"]] == [80, 443, 445, 8787]
    assert all(set(item) == {"port", "description"} and item["description"] for item in data["well_known_ports"])
    assert len(data["files"]) == len(set(data["files"]))
    for name in data["files"]:
        assert (CATALOGUE_DIR / name).is_file(), name
    on_disk = {path.name for path in CATALOGUE_DIR.glob("*.yaml")} - {"catalogue.yaml"}
    assert on_disk == set(data["files"]), "every entry file is listed in files, and only those"


def test_features_declared_with_descriptions() -> None:
    features = catalogue()["features"]
    assert set(features) >= REQUIRED_FEATURES
    for name, spec in features.items():
        assert set(spec) <= {"description", "implies", "needs"}, name
        assert isinstance(spec["description"], str)
        assert spec["description"].strip(), name
        for implied in spec.get("implies", []):
            assert implied in features, f"{name} implies undeclared {implied}"
    assert "arc_training" in features["arc_inference"]["implies"]
    # no cycles
    for start in features:
        seen: set[str] = set()
        todo = list(features[start].get("implies", []))
        while todo:
            current = todo.pop()
            assert current != start, f"implies cycle through {start}"
            if current not in seen:
                seen.add(current)
                todo.extend(features[current].get("implies", []))
    used = {feature for entry in entries() for feature in entry["features"]}
    assert used == set(features), "every declared feature is used and every used feature declared"


def test_correction_codes_declared() -> None:
    declared = catalogue()["corrections"]
    assert all(re.fullmatch(r"E-\d\d", code) for code in declared)
    assert all(isinstance(text, str) and text.strip() for text in declared.values())
    used = Counter(item["code"] for entry in entries() for item in entry.get("corrections", []))
    undeclared = set(used) - set(declared)
    assert not undeclared, f"correction codes used but not declared: {sorted(undeclared)}"
    missing = MUST_BE_RECORDED - set(used)
    assert not missing, f"seed errors not recorded on any entry: {sorted(missing)}"


# ---------------------------------------------------------------------------------------------
# Entries: schema
# ---------------------------------------------------------------------------------------------


def test_ids_unique_and_well_formed() -> None:
    ids = Counter(entry["id"] for entry in entries())
    duplicates = sorted(entry_id for entry_id, count in ids.items() if count > 1)
    assert not duplicates, f"duplicate ids: {duplicates}"
    bad = sorted(entry_id for entry_id in ids if not ID_RE.match(entry_id))
    assert not bad, f"malformed ids: {bad}"


@pytest.mark.parametrize("entry", entries(), ids=lambda entry: entry["id"])
def test_entry_schema(entry: dict[str, Any]) -> None:
    assert set(entry) <= ENTRY_KEYS, f"unknown keys {set(entry) - ENTRY_KEYS}"
    assert set(entry) >= ENTRY_REQUIRED, f"missing keys {ENTRY_REQUIRED - set(entry)}"
    assert entry["kind"] in KINDS
    assert entry["direction"] in {"outbound", "inbound"}
    assert apply_as(entry) in {"firewall", "route", "nsg"}
    if entry["direction"] == "outbound":
        assert apply_as(entry) == "firewall"
    else:
        assert apply_as(entry) in {"route", "nsg"}, "the firewall carries outbound rules only (E-09)"
        assert entry["kind"] == TAG
    assert entry["clouds"], "at least one cloud"
    assert set(entry["clouds"]) <= CLOUDS
    assert len(entry["clouds"]) == len(set(entry["clouds"]))
    assert entry["features"]
    assert len(entry["features"]) == len(set(entry["features"]))
    assert isinstance(entry["purpose"], str)
    assert entry["purpose"].strip()
    assert entry["ports"]
    for port in entry["ports"]:
        match = PORT_RE.match(port)
        assert match, f"bad port spec {port!r}"
        numbers = [int(n) for n in re.findall(r"\d+", match.group(2))]
        assert all(1 <= n <= 65535 for n in numbers), port
        assert numbers == sorted(set(numbers)), f"range must be a<b: {port}"
    assert len(entry["ports"]) == len(set(entry["ports"]))

    provenance = entry["provenance"]
    assert set(provenance) <= PROVENANCE_KEYS
    assert isinstance(provenance["section"], str)
    assert isinstance(provenance["in_seed_text"], bool)
    assert provenance["section"] not in provenance.get("also_in", [])
    if provenance["in_seed_text"] is False:
        assert str(provenance.get("source", "")).strip(), "entries not in the seed name their source"
    for item in entry.get("corrections", []):
        assert set(item) == {"code", "note"}
        assert str(item["note"]).strip()
    assert isinstance(entry.get("notes", ""), str)


@pytest.mark.parametrize("entry", entries(), ids=lambda entry: entry["id"])
def test_entry_value_matches_kind(entry: dict[str, Any]) -> None:
    value: str = entry["value"]
    assert " " not in value, "no spaces (E-04)"
    assert "<" not in value, "placeholders are {region} / {storage}"
    assert ">" not in value
    placeholders = set(PLACEHOLDER_RE.findall(value))
    assert placeholders <= {"{region}", "{storage}", "{keyvault}", "{registry}", "{workspace_id}"}, placeholders
    kind = entry["kind"]
    if kind == TAG:
        assert TAG_RE.match(value), value
        assert "{storage}" not in value
    elif kind == FQDN:
        assert "*" not in value
        assert HOST_RE.match(value), value
    elif kind == WILD:
        assert value.startswith("*.")
        assert value.count("*") == 1
        assert HOST_RE.match(value[2:]), value
    else:
        assert "://" not in value
        host, _, path = value.partition("/")
        assert path
        assert HOST_RE.match(host), value
    fallback = entry.get("fallback")
    non_web = [port for port in entry["ports"] if is_non_web(port)]
    if fallback is not None:
        assert set(fallback) == {"kind", "value"}
        assert fallback["kind"] == TAG
        assert TAG_RE.match(fallback["value"])
        assert kind == WILD, "fallback only for wildcard FQDNs"
        assert non_web, "fallback only for non-HTTP(S) ports"
    if kind == WILD and non_web:
        assert fallback is not None, "a wildcard on non-HTTP(S) ports needs a fallback (E-12)"


def test_one_entry_per_value_and_feature() -> None:
    """E-17: repeated rows are merged; entries with the same value and features never share a cloud."""
    groups: dict[tuple[str, frozenset[str], str, str], list[dict[str, Any]]] = defaultdict(list)
    for entry in entries():
        groups[(entry["value"], frozenset(entry["features"]), entry["direction"], apply_as(entry))].append(entry)
    for key, group in groups.items():
        seen: set[str] = set()
        for entry in group:
            overlap = seen & set(entry["clouds"])
            assert not overlap, f"{key[0]} {sorted(key[1])}: split entries overlap in {overlap}"
            seen |= set(entry["clouds"])


def test_azure_front_door_scoping() -> None:
    for entry in entries():
        if entry["value"].startswith("AzureFrontDoor."):
            assert "AzureChinaCloud" not in entry["clouds"], "Azure Front Door is not used in Azure China"
        assert entry["value"] != "AzureFrontDoor.FrontEnd", "canonical casing is AzureFrontDoor.Frontend"


# ---------------------------------------------------------------------------------------------
# Completeness against the seed
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("item", all_rows(), ids=row_id)
def test_row_is_in_catalogue(item: tuple[str, str | None, Row, bool]) -> None:
    section, tab, row, in_seed = item
    clouds = row_clouds(tab, row)
    found = matching(row, clouds)
    assert len(found) == 1, f"expected one entry for {row.value} {row.features} in {clouds}, found {len(found)}"
    entry = found[0]
    assert source_kind(entry) == row.kind
    assert set(row.ports) <= set(entry["ports"]), f"{entry['id']}: ports {entry['ports']} lack {row.ports}"
    path = f"{section}/{TAB[tab]}" if tab else section
    assert path in sections_of(entry), f"{entry['id']}: provenance lacks {path}"
    if (row.value, row.features) not in SEED_ROWS_ALSO_IN_ADDITIONS:
        assert entry["provenance"]["in_seed_text"] is in_seed, entry["id"]


def test_nothing_beyond_the_seed_and_the_documented_additions() -> None:
    """The catalogue's (value, features, cloud) set equals the test's tables, cloud by cloud."""

    def key(value: str, features: tuple[str, ...] | list[str], direction: str, how: str, cloud: str) -> tuple:
        return (value, frozenset(features), direction, how, cloud)

    expected = {
        key(row.value, row.features, row.direction, row.apply_as, cloud)
        for _, tab, row, _ in all_rows()
        for cloud in row_clouds(tab, row)
    }
    actual = {
        key(source_value(entry), entry["features"], entry["direction"], apply_as(entry), cloud)
        for entry in entries()
        for cloud in entry["clouds"]
    }
    assert sorted(actual - expected, key=str) == [], "entries (per cloud) the seed does not account for"
    assert sorted(expected - actual, key=str) == [], "seed rows (per cloud) missing from the catalogue"


def test_e17_duplicates_record_every_section() -> None:
    for value, first, later in [
        ("pypi.org", APP, PYTHON),
        ("*.tensorflow.org", APP, PYTHON),
        ("cloud.r-project.org", APP, R_HOSTS),
        ("update.code.visualstudio.com", APP, VSCODE),
        ("dc.services.visualstudio.com", APP, MONITORING),
        ("mcr.microsoft.com", AKS_FW, AKS_OF),
    ]:
        (entry,) = [e for e in entries() if e["value"] == value and e["provenance"]["section"] == first]
        assert later in entry["provenance"].get("also_in", []), entry["id"]


@pytest.mark.parametrize("code", sorted(REQUIRED_CORRECTIONS))
def test_corrections_recorded_on_the_affected_entries(code: str) -> None:
    for value, features, seed_text in REQUIRED_CORRECTIONS[code]:
        found = [e for e in entries() if source_value(e) == value and set(e["features"]) == set(features)]
        assert found, f"{code}: no entry {value} {features}"
        for entry in found:
            codes = {item["code"] for item in entry.get("corrections", [])}
            assert code in codes, f"{entry['id']} should record {code}"
            if seed_text is not None:
                assert entry["provenance"].get("seed_text") == seed_text, entry["id"]


def test_private_endpoint_ports_fall_back_to_the_service_tag() -> None:
    (entry,) = [e for e in entries() if "private_endpoint" in e["features"] and e["value"] == "*.instances.azureml.ms"]
    assert entry["fallback"] == {"kind": TAG, "value": "AzureMachineLearning"}
    assert set(entry["ports"]) == {"TCP:8787", "TCP:18881"}
    (web,) = [e for e in entries() if e["features"] == ["compute"] and e["value"] == "*.instances.azureml.ms"]
    assert web["ports"] == ["TCP:443"]
    assert "fallback" not in web


def test_seed_text_is_verbatim() -> None:
    text = ReferenceData.at().seed_text()
    for entry in entries():
        seed_text = entry["provenance"].get("seed_text")
        if seed_text is not None:
            assert seed_text in text, f"{entry['id']}: seed_text not found verbatim in the seed"


# ---------------------------------------------------------------------------------------------
# Service tags against Microsoft's lists
# ---------------------------------------------------------------------------------------------


def tag_references() -> list[tuple[str, str, tuple[str, ...]]]:
    """(entry id, tag value, clouds) for every service tag an entry uses, fallbacks included."""
    refs = []
    for entry in entries():
        if entry["kind"] == TAG:
            refs.append((entry["id"], entry["value"], tuple(entry["clouds"])))
        if "fallback" in entry:
            refs.append((entry["id"], entry["fallback"]["value"], tuple(entry["clouds"])))
    return refs


def resolved_names(value: str, cloud: str) -> list[str]:
    pascal, lower = SAMPLE_REGION[cloud]
    names = [value.replace("{region}", pascal)]
    if value.split(".", 1)[0] in LOWERCASE_REGION_TAGS:
        names.append(value.replace("{region}", lower))
    return names


@pytest.mark.parametrize("cloud", ["AzureCloud", "AzureUSGovernment"])
def test_service_tags_exist_in_the_service_tag_json(cloud: str) -> None:
    names = service_tag_names(cloud)
    missing = [
        f"{entry_id}: {value}"
        for entry_id, value, clouds in tag_references()
        if cloud in clouds and not any(name in names for name in resolved_names(value, cloud))
    ]
    assert not missing, f"tags not in the {cloud} service-tag JSON: {missing}"


@pytest.mark.parametrize("cloud", ["AzureCloud", "AzureUSGovernment"])
def test_service_tags_exist_in_the_generated_name_list(cloud: str) -> None:
    """Offline variant: the committed service-tag-names.yaml (no China list exists)."""
    names = set(load_yaml(CATALOGUE_ROOT / "service-tag-names.yaml")[cloud])
    missing = [
        f"{entry_id}: {value}"
        for entry_id, value, clouds in tag_references()
        if cloud in clouds and not any(name in names for name in resolved_names(value, cloud))
    ]
    assert not missing, missing


def test_known_wrong_tag_names_are_absent() -> None:
    values = {entry["value"] for entry in entries()}
    for wrong in ("Keyvault.{region}", "KeyVault.{region}", "ContainerRegistry.{region}", "Frontdoor.FirstParty"):
        assert wrong not in values


# ---------------------------------------------------------------------------------------------
# Generated reference data
# ---------------------------------------------------------------------------------------------


def test_regions_yaml() -> None:
    regions = load_yaml(CATALOGUE_ROOT / "regions.yaml")
    assert set(regions) == CLOUDS
    assert regions["AzureCloud"]["westus2"] == "WestUS2"
    assert regions["AzureCloud"]["francecentral"] == "FranceCentral"
    assert regions["AzureUSGovernment"]["usgovvirginia"] == "USGovVirginia"
    assert regions["AzureChinaCloud"] == {
        "chinaeast": "ChinaEast", "chinaeast2": "ChinaEast2", "chinaeast3": "ChinaEast3",
        "chinanorth": "ChinaNorth", "chinanorth2": "ChinaNorth2", "chinanorth3": "ChinaNorth3",
    }  # fmt: skip
    for cloud, mapping in regions.items():
        for region, suffix in mapping.items():
            assert region == region.lower(), (cloud, region)
            # PascalCase, except regions whose only regional tag is AzureCloud.<region> (brazilne)
            assert suffix[0].isupper() or suffix == region, (cloud, suffix)
    for cloud in ("AzureCloud", "AzureUSGovernment"):
        path = ReferenceData.at().path(*SERVICE_TAG_FILES[cloud])
        with path.open(encoding="utf-8") as handle:
            document = json.load(handle)
        json_regions = {v["properties"]["region"] for v in document["values"] if v["properties"].get("region")}
        assert json_regions <= set(regions[cloud]), json_regions - set(regions[cloud])
        names = {v["name"] for v in document["values"]}
        for suffix in set(regions[cloud].values()):
            assert (
                f"Storage.{suffix}" in names
                or f"AzureCloud.{suffix.lower()}" in names
                or any(name.endswith(f".{suffix}") for name in names)
            ), suffix


def test_service_tag_names_yaml() -> None:
    data = load_yaml(CATALOGUE_ROOT / "service-tag-names.yaml")
    assert set(data) == {"AzureCloud", "AzureUSGovernment"}
    for cloud, names in data.items():
        assert names == sorted(names)
        assert len(names) == len(set(names))
        assert set(names) == service_tag_names(cloud), f"{cloud}: regenerate with reference/generate_catalogue_data.py"
    assert "AzureKeyVault.WestUS2" in data["AzureCloud"]
    assert "Keyvault.WestUS2" not in data["AzureCloud"]
