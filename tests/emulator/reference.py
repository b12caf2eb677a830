"""The one loader of the public reference data that the emulator, the tests and the catalogue's generator use.

The data is vendored in ``reference/`` at the repository root (origin and licence of every file:
``reference/README.md``; checksums: ``reference/MANIFEST.sha256``). ``$AMLFW_REFERENCE_DIR`` is the one
override (a refreshed copy, say); nothing else is looked up. Files are read on first use and cached, so that
start-up stays fast: the public service-tag file alone is 4 MB.
"""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path
from typing import Any, ClassVar

REPO_ROOT = Path(__file__).resolve().parents[2]
REFERENCE_ENV = "AMLFW_REFERENCE_DIR"
SPEC_VERSION_DIR = "azure-rest-api-specs/2026-03-01"


VENDORED_DIR = REPO_ROOT / "reference"
SEED_FILE = "seed/000_91ea23d36c338e6a.txt"
# What must be there for the emulator to answer as Azure does (checked before it listens).
REQUIRED_FILES = (
    f"{SPEC_VERSION_DIR}/firewallPolicy.json",
    f"{SPEC_VERSION_DIR}/common.json",
    f"{SPEC_VERSION_DIR}/virtualNetwork.routeTable-serviceTags.excerpt.md",
    "service-tags/ServiceTags_Public.json",
    "azureml/outboundNetworkDependenciesEndpoints.get.json",
)


class ReferenceDataMissingError(FileNotFoundError):
    """The reference folder, or a file the caller needs, is not there. ``str()`` is one line."""


def default_reference_dir() -> Path:
    """``$AMLFW_REFERENCE_DIR`` if set, else the vendored ``<repo>/reference``."""
    override = os.environ.get(REFERENCE_ENV)
    if override:
        return Path(override).expanduser().resolve()
    return VENDORED_DIR.resolve()


def load_json(path: Path) -> Any:
    with path.open(encoding="utf-8") as handle:
        return json.load(handle)


class ReferenceData:
    """Swagger documents, official examples, service tags and the Azure ML example, loaded lazily.

    ``ReferenceData.at(root)`` shares one instance per folder in the process, so that many emulators (one
    per test) parse the 4 MB service-tag file once.
    """

    _shared: ClassVar[dict[Path, ReferenceData]] = {}
    _shared_lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def at(cls, root: Path | None = None) -> ReferenceData:
        resolved = (root or default_reference_dir()).resolve()
        with cls._shared_lock:
            if resolved not in cls._shared:
                cls._shared[resolved] = cls(resolved)
            return cls._shared[resolved]

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or default_reference_dir()
        self._lock = threading.Lock()
        self._service_tags: dict[str, Any] | None = None
        self._service_tag_names: frozenset[str] = frozenset()
        self._gov_tag_names: frozenset[str] | None = None

    def path(self, *parts: str) -> Path:
        """The path of a reference file; raises ``ReferenceDataMissingError`` if it is not there."""
        path = self.root.joinpath(*parts)
        if not path.exists():
            where = "folder" if not self.root.is_dir() else "file"
            missing = self.root if where == "folder" else path
            raise ReferenceDataMissingError(
                f"reference data {where} not found: {missing} (the vendored copy is <repo>/reference; "
                f"{REFERENCE_ENV} overrides it)"
            )
        return path

    def check(self) -> None:
        """Raise ``ReferenceDataMissingError`` (one line) unless every file the emulator needs is there."""
        for name in REQUIRED_FILES:
            self.path(*name.split("/"))

    def seed_text(self) -> str:
        """The source document of the baseline catalogue (ko-KR, ms.date 2021-11-30)."""
        return self.path(*SEED_FILE.split("/")).read_text(encoding="utf-8")

    def example(self, version: str, name: str) -> dict[str, Any]:
        """An official example, e.g. ``example("2026-03-01", "FirewallPolicyPut")``."""
        data: dict[str, Any] = load_json(self.path("azure-rest-api-specs", version, "examples", f"{name}.json"))
        return data

    def swagger(self, name: str) -> dict[str, Any]:
        """``firewallPolicy.json`` or ``common.json`` of the main spec version."""
        data: dict[str, Any] = load_json(self.path(SPEC_VERSION_DIR, name))
        return data

    def route_table_definitions(self) -> dict[str, Any]:
        """The ``virtualNetwork.json`` definitions quoted verbatim in the excerpt file.

        The excerpt holds fragments of the ``definitions`` object in fenced ``json`` blocks;
        each fragment becomes valid JSON once wrapped in braces.
        """
        text = self.path(SPEC_VERSION_DIR, "virtualNetwork.routeTable-serviceTags.excerpt.md").read_text("utf-8")
        definitions: dict[str, Any] = {}
        for block in re.findall(r"```json\n(.*?)```", text, flags=re.DOTALL):
            definitions.update(json.loads("{" + block.strip().rstrip(",") + "}"))
        return definitions

    def azureml_dependencies(self) -> dict[str, Any]:
        example = load_json(self.path("azureml", "outboundNetworkDependenciesEndpoints.get.json"))
        body: dict[str, Any] = example["responses"]["200"]["body"]
        return body

    def service_tags_document(self) -> dict[str, Any]:
        """The public service-tag file, read once on first use."""
        with self._lock:
            if self._service_tags is None:
                self._service_tags = load_json(self.path("service-tags", "ServiceTags_Public.json"))
                self._service_tag_names = frozenset(v["name"].casefold() for v in self._service_tags["values"])
            return self._service_tags

    def is_service_tag(self, name: str) -> bool:
        """Case-insensitive membership in the public service-tag list (``Storage``, ``Storage.WestUS2``...)."""
        self.service_tags_document()
        return name.casefold() in self._service_tag_names

    def is_service_tag_in(self, cloud: str, name: str) -> bool:
        """Membership in the cloud's own list: Public, US Government (``ServiceTags_Gov.json``). No China list
        is published in a downloadable form, so for ``AzureChinaCloud`` a well-formed tag name is accepted."""
        if cloud == "AzureUSGovernment":
            with self._lock:
                if self._gov_tag_names is None:
                    document = load_json(self.path("service-tags", "ServiceTags_Gov.json"))
                    self._gov_tag_names = frozenset(v["name"].casefold() for v in document["values"])
            return name.casefold() in self._gov_tag_names
        if cloud == "AzureChinaCloud":
            return re.fullmatch(r"[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)?", name) is not None
        return self.is_service_tag(name)
