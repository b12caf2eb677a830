"""Read a catalogue version from YAML into frozen `Catalogue` values, validating the schema as we go.

Layout (see docs/catalogue.md):

    config/catalogue/
      regions.yaml                  cloud -> {lowercase region: service-tag suffix}
      service-tag-names.yaml        cloud -> [tag names] (offline validation)
      azureml-2021.11/
        catalogue.yaml              version, source, features, corrections, files
        <entry files>.yaml          entries: [...]
"""

from __future__ import annotations

import importlib.resources
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from reconciler.errors import CatalogueError, quote
from reconciler.model import (
    CLOUDS,
    ENDPOINT_KINDS,
    ENTRY_STRATEGIES,
    PORT_PROTOCOLS,
    Catalogue,
    Correction,
    Endpoint,
    Fallback,
    FeatureInfo,
    PortSpec,
    Provenance,
)
from reconciler.yamlio import UnreadableFile, load_yaml, read_text

ENTRY_ID_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
VERSION_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
PORTS_RE = re.compile(r"^(\*|\d{1,5}(-\d{1,5})?)$")
ENTRY_ID_MAX = 64  # ids go into rule descriptions (140 characters in all)
SERVICE_TAG_MAX = 128  # Azure documents no limit; its longest tag names are under 60 characters
URL_PATH_MAX = 2048  # no documented limit either; browsers and proxies cap URLs about here
TEXT_MAX = 10_000  # free text (purpose, seed text, notes): never megabytes
PLACEHOLDER_RE = re.compile(r"\{([a-z_]+)\}")
PLACEHOLDERS = {"region", "storage", "keyvault", "registry", "workspace_id"}
# placeholders naming one resource of the workspace: an entry using one declares `if_unknown` (its wildcard)
RESOURCE_PLACEHOLDERS = ("keyvault", "registry", "workspace_id")

_TOP_KEYS = {"version", "title", "source", "well_known_ports", "features", "corrections", "files"}
_ENTRY_KEYS = {
    "id", "kind", "value", "direction", "ports", "clouds", "features", "apply_as", "fallback", "purpose",
    "provenance", "corrections", "notes", "strategy", "covered_by", "if_unknown", "widen_ports",
}
_PROVENANCE_KEYS = {"section", "seed_text", "also_in", "in_seed_text", "source"}

CATALOGUE_ENV = "AMLFW_CATALOGUE_DIR"
_OVERRIDES = f"--catalogue-dir DIR or ${CATALOGUE_ENV}"


def packaged_catalogue_dir() -> Path:
    """The catalogue the installed package carries (`reconciler/catalogue_data/`, mapped from
    `config/catalogue/` when the wheel is built)."""
    return Path(str(importlib.resources.files("reconciler").joinpath("catalogue_data")))


def source_catalogue_dir() -> Path:
    """`config/catalogue/` of the source tree this package runs from (a clone, an editable install)."""
    return Path(__file__).resolve().parents[2] / "config" / "catalogue"


def default_catalogue_dir() -> Path:
    """`$AMLFW_CATALOGUE_DIR`, else the catalogue inside the installed package, else `config/catalogue/` of the
    source tree. The first that exists wins; when none does, the packaged path is returned (and reported)."""
    env = os.environ.get(CATALOGUE_ENV)
    if env:
        return Path(env)
    packaged = packaged_catalogue_dir()
    if packaged.is_dir():
        return packaged
    source = source_catalogue_dir()
    return source if source.is_dir() else packaged


def _read(path: Path) -> Any:
    try:
        text = read_text(path)
    except UnreadableFile as exc:
        raise CatalogueError(str(path), "", str(exc)) from None
    try:
        return load_yaml(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise CatalogueError(str(path), "", f"YAML syntax error{where}: {getattr(exc, 'problem', exc)}") from None


class CatalogueStore:
    """All versions under one directory; loads each version once."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or default_catalogue_dir()
        self._cache: dict[str, Catalogue] = {}

    def versions(self) -> list[str]:
        if not self.root.is_dir():
            raise CatalogueError(str(self.root), "", f"catalogue directory not found (set {_OVERRIDES})")
        return sorted(p.name for p in self.root.iterdir() if (p / "catalogue.yaml").is_file())

    def get(self, version: str | None = None) -> Catalogue:
        versions = self.versions()
        if not versions:
            raise CatalogueError(str(self.root), "", f"no catalogue version found (set {_OVERRIDES})")
        if version is None:
            version = versions[-1]
        if version not in versions:
            raise LookupError(f"unknown catalogue version {quote(version)} (available: {', '.join(versions)})")
        if version not in self._cache:
            self._cache[version] = load_catalogue(self.root / version)
        return self._cache[version]

    def service_tag_names(self) -> dict[str, frozenset[str]]:
        path = self.root / "service-tag-names.yaml"
        raw = _read(path) if path.is_file() else {}
        if not isinstance(raw, dict):
            raise CatalogueError(str(path), "", "expected a mapping of cloud -> [tag names]")
        return {str(k): frozenset(_tag_list(path, str(k), vals)) for k, vals in raw.items()}


def load_catalogue(directory: Path) -> Catalogue:
    """Load one catalogue version directory. Raises CatalogueError naming file, key and reason."""
    index = directory / "catalogue.yaml"
    raw = _read(index)
    f = str(index)
    if not isinstance(raw, dict):
        raise CatalogueError(f, "", "expected a mapping at the top level")
    _keys(f, "", raw, _TOP_KEYS, required={"version", "title", "features", "files"})
    version = _s(f, "version", raw["version"])
    if not VERSION_RE.match(version) or version != directory.name:
        raise CatalogueError(f, "version", f"{quote(version)} must match its directory name {quote(directory.name)}")
    source = raw.get("source") or {}
    if not isinstance(source, dict):
        raise CatalogueError(f, "source", "expected a mapping")
    features = _features(f, raw["features"])
    corrections_raw = raw.get("corrections") or {}
    if not isinstance(corrections_raw, dict):
        raise CatalogueError(f, "corrections", "expected a mapping of code -> summary")
    corrections = tuple(sorted((str(k), _s(f, f"corrections.{k}", v)) for k, v in corrections_raw.items()))
    ports_raw = raw.get("well_known_ports") or []
    if not isinstance(ports_raw, list):
        raise CatalogueError(f, "well_known_ports", "expected a list")
    well_known = []
    for i, item in enumerate(ports_raw):
        if not isinstance(item, dict) or not isinstance(item.get("port"), int):
            raise CatalogueError(f, f"well_known_ports[{i}]", "expected {port: <int>, description: <text>}")
        well_known.append((int(item["port"]), _s(f, f"well_known_ports[{i}].description", item.get("description"))))

    files = raw["files"]
    if not isinstance(files, list) or not files:
        raise CatalogueError(f, "files", "expected a non-empty list of entry files")
    feature_names = {x.name for x in features}
    correction_codes = {c for c, _ in corrections}
    entries: list[Endpoint] = []
    seen: dict[str, str] = {}
    for i, name in enumerate(files):
        if not isinstance(name, str) or "/" in name or not name.endswith(".yaml"):
            raise CatalogueError(f, f"files[{i}]", f"expected a .yaml file name in {directory}, got {quote(name)}")
        path = directory / name
        data = _read(path)
        pf = str(path)
        if not isinstance(data, dict) or set(data) != {"entries"} or not isinstance(data["entries"], list):
            raise CatalogueError(pf, "", "expected a mapping with one key, 'entries', holding a list")
        for j, e in enumerate(data["entries"]):
            entry = _entry(pf, f"entries[{j}]", e, feature_names, correction_codes)
            if entry.id in seen:
                raise CatalogueError(pf, f"entries[{j}].id", f"duplicate id {quote(entry.id)} "
                                                               f"(also in {seen[entry.id]})")
            seen[entry.id] = pf
            entries.append(entry)

    regions = _regions(directory.parent / "regions.yaml")
    tag_limits = _tag_limits(directory.parent / "service-tag-features.yaml")
    return Catalogue(
        version=version,
        title=_s(f, "title", raw["title"]),
        source=tuple(sorted((str(k), str(v)) for k, v in source.items())),
        features=features,
        corrections=corrections,
        well_known_ports=tuple(well_known),
        entries=tuple(entries),
        regions=regions,
        path=str(directory),
        tag_limits=tag_limits,
    )


def _regions(path: Path) -> tuple[tuple[str, tuple[tuple[str, str], ...]], ...]:
    raw = _read(path)
    if not isinstance(raw, dict):
        raise CatalogueError(str(path), "", "expected a mapping of cloud -> {region: suffix}")
    out = []
    for cloud in CLOUDS:
        table = raw.get(cloud) or {}
        if not isinstance(table, dict):
            raise CatalogueError(str(path), cloud, "expected a mapping of region -> service tag suffix")
        out.append((cloud, tuple(sorted((str(k).lower(), str(v)) for k, v in table.items()))))
    return tuple(out)


def _tag_limits(path: Path) -> tuple[tuple[str, frozenset[str], frozenset[str]], ...]:
    """Which tags Microsoft's data marks unusable in Azure Firewall / UDRs (optional file)."""
    if not path.is_file():
        return ()
    raw = _read(path)
    if not isinstance(raw, dict):
        raise CatalogueError(str(path), "", "expected a mapping of cloud -> {no_firewall, no_routes}")
    out = []
    for cloud, body in raw.items():
        if cloud not in CLOUDS or not isinstance(body, dict):
            raise CatalogueError(str(path), str(cloud), "expected a known cloud with {no_firewall, no_routes}")
        _keys(str(path), str(cloud), body, {"no_firewall", "no_routes"}, required=set())
        no_fw = frozenset(t.lower() for t in _tag_list(path, f"{cloud}.no_firewall", body.get("no_firewall")))
        no_udr = frozenset(t.lower() for t in _tag_list(path, f"{cloud}.no_routes", body.get("no_routes")))
        out.append((str(cloud), no_fw, no_udr))
    return tuple(out)


def _tag_list(path: Path, key: str, value: object) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise CatalogueError(str(path), key, f"expected a list of service tag names, got {type(value).__name__}")
    return [_s(str(path), f"{key}[{i}]", v) for i, v in enumerate(value)]


def _keys(f: str, key: str, raw: Mapping[str, Any], allowed: set[str], required: set[str]) -> None:
    for k in raw:
        if k not in allowed:
            where = f"{key}.{k}" if key else str(k)
            raise CatalogueError(f, where, f"unknown key (allowed: {', '.join(sorted(allowed))})")
    for k in sorted(required):
        if k not in raw:
            raise CatalogueError(f, f"{key}.{k}" if key else k, "is required")


def _s(f: str, key: str, value: object) -> str:
    if not isinstance(value, str | int | float) or isinstance(value, bool) or not str(value).strip():
        raise CatalogueError(f, key, "expected a non-empty string")
    if isinstance(value, str) and len(value) > TEXT_MAX:
        raise CatalogueError(f, key, f"{quote(value)} is longer than {TEXT_MAX:,} characters")
    return str(value).strip()


def _features(f: str, raw: object) -> tuple[FeatureInfo, ...]:
    if not isinstance(raw, dict) or not raw:
        raise CatalogueError(f, "features", "expected a mapping of feature -> {description, implies}")
    out = []
    for name, body in raw.items():
        key = f"features.{name}"
        if not isinstance(name, str) or not re.match(r"^[a-z][a-z0-9_]*$", name):
            raise CatalogueError(f, key, "feature names are lower_snake_case")
        if not isinstance(body, dict):
            raise CatalogueError(f, key, "expected {description: ..., implies: [...]}")
        _keys(f, key, body, {"description", "implies", "needs"}, required={"description"})
        implies = body.get("implies") or []
        if not isinstance(implies, list) or any(i not in raw for i in implies):
            raise CatalogueError(f, f"{key}.implies", "expected a list of declared feature names")
        needs = []
        for i, n in enumerate(body.get("needs") or []):
            if not isinstance(n, dict) or set(n) != {"feature", "why"} or n["feature"] not in raw:
                raise CatalogueError(f, f"{key}.needs[{i}]", "expected {feature: <declared feature>, why: <text>}")
            needs.append((str(n["feature"]), _s(f, f"{key}.needs[{i}].why", n["why"])))
        out.append(FeatureInfo(name, _s(f, f"{key}.description", body["description"]), tuple(implies),
                               tuple(needs)))
    if "baseline" not in raw:
        raise CatalogueError(f, "features.baseline", "the 'baseline' feature (always required) must be declared")
    return tuple(out)


def _str_list(f: str, key: str, value: object) -> list[str]:
    if not isinstance(value, list) or not value:
        raise CatalogueError(f, key, "expected a non-empty list")
    return [_s(f, f"{key}[{i}]", v) for i, v in enumerate(value)]


def check_value(kind: str, value: str) -> str | None:
    """Why `value` is not a valid `kind` value (None when it is valid)."""
    if any(c.isspace() for c in value):
        return "contains whitespace"
    for ph in PLACEHOLDER_RE.findall(value):
        if ph not in PLACEHOLDERS:
            return f"unknown placeholder {{{ph}}} (known: {', '.join(sorted(PLACEHOLDERS))})"
    bare = PLACEHOLDER_RE.sub("x", value)
    if kind == "service_tag" and len(bare) > SERVICE_TAG_MAX:
        return f"longer than {SERVICE_TAG_MAX} characters"
    if kind == "url_path" and len(bare) > URL_PATH_MAX:
        return f"longer than {URL_PATH_MAX} characters"
    if kind == "service_tag":
        if not re.match(r"^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z][A-Za-z0-9]*)?$", bare):
            return "a service tag is Name or Name.Region (letters and digits)"
        return None
    if kind == "url_path":
        if "://" in value:
            return "a URL path has no scheme"
        host, _, path = bare.partition("/")
        if not path:
            return "a URL path needs a path after the host"
        if "*" in host:
            return "a URL path cannot have a wildcard host"
        return _fqdn_problem(host)
    if kind == "wildcard_fqdn":
        if not bare.startswith("*") or bare.count("*") != 1:
            return "a wildcard FQDN has exactly one '*', leading"
        rest = bare[1:]
        if not rest.startswith("."):
            return "a leading wildcard must be followed by a dot ('*.example.com')"
        return _fqdn_problem(rest[1:])
    if kind == "fqdn":
        if "*" in bare:
            return "an FQDN has no '*' (use kind wildcard_fqdn)"
        return _fqdn_problem(bare)
    return f"unknown kind {quote(kind)}"


_LABEL_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$", re.IGNORECASE)


def _fqdn_problem(host: str) -> str | None:
    if len(host) > 253:
        return "longer than 253 characters"
    labels = host.split(".")
    if len(labels) < 2:
        return "an FQDN needs at least two labels"
    for label in labels:
        if not _LABEL_RE.match(label):
            return f"invalid DNS label {quote(label)}"
    return None


def _entry(f: str, key: str, raw: object, features: set[str], corrections: set[str]) -> Endpoint:
    if not isinstance(raw, dict):
        raise CatalogueError(f, key, "expected a mapping")
    _keys(f, key, raw, _ENTRY_KEYS,
          required={"id", "kind", "value", "direction", "ports", "clouds", "features", "purpose", "provenance",
                    "strategy"})
    eid = _s(f, f"{key}.id", raw["id"])
    if not ENTRY_ID_RE.match(eid) or len(eid) > ENTRY_ID_MAX:
        raise CatalogueError(f, f"{key}.id", f"invalid id {quote(eid)}: up to {ENTRY_ID_MAX} lower-case letters, "
                                             "digits, '.', '_', '-'")
    key = f"{key}({eid})"
    kind = _s(f, f"{key}.kind", raw["kind"])
    if kind not in ENDPOINT_KINDS:
        raise CatalogueError(f, f"{key}.kind", f"unknown kind {quote(kind)} "
                                                      f"(expected one of {', '.join(ENDPOINT_KINDS)})")
    value = _s(f, f"{key}.value", raw["value"])
    problem = check_value(kind, value)
    if problem:
        raise CatalogueError(f, f"{key}.value", f"{quote(value)}: {problem}")
    direction = _s(f, f"{key}.direction", raw["direction"])
    if direction not in ("outbound", "inbound"):
        raise CatalogueError(f, f"{key}.direction", "expected outbound or inbound")
    ports = []
    for i, p in enumerate(_str_list(f, f"{key}.ports", raw["ports"])):
        proto, sep, rng = p.partition(":")
        if not sep or proto.lower() not in PORT_PROTOCOLS or not PORTS_RE.match(rng):
            raise CatalogueError(f, f"{key}.ports[{i}]", f"{quote(p)}: expected PROTO:PORTS, e.g. TCP:443 or UDP:1194")
        bounds = [int(part) for part in rng.split("-") if part != "*"]
        if len(bounds) == 2 and bounds[0] > bounds[1]:
            raise CatalogueError(f, f"{key}.ports[{i}]", f"{quote(p)}: the range starts after it ends")
        for part in rng.split("-"):
            if part != "*" and not 0 < int(part) <= 65535:
                raise CatalogueError(f, f"{key}.ports[{i}]", f"port {part} outside 1-65535")
            if part != "*" and proto.lower() in ("http", "https") and int(part) > 64000:
                raise CatalogueError(f, f"{key}.ports[{i}]",
                                     f"port {part}: Azure Firewall application rules take ports up to 64000")
        ports.append(PortSpec(proto, rng))
    clouds = _str_list(f, f"{key}.clouds", raw["clouds"])
    for i, c in enumerate(clouds):
        if c not in CLOUDS:
            raise CatalogueError(f, f"{key}.clouds[{i}]", f"unknown cloud {quote(c)}")
    feats = _str_list(f, f"{key}.features", raw["features"])
    for i, feat in enumerate(feats):
        if feat not in features:
            raise CatalogueError(f, f"{key}.features[{i}]", f"undeclared feature {quote(feat)}")
    apply_as = _s(f, f"{key}.apply_as", raw.get("apply_as", "firewall"))
    if apply_as not in ("firewall", "route", "nsg"):
        raise CatalogueError(f, f"{key}.apply_as", "expected firewall, route or nsg")
    if apply_as == "route" and (kind != "service_tag" or direction != "inbound"):
        raise CatalogueError(f, f"{key}.apply_as", "routes are inbound service tags")
    if apply_as == "firewall" and direction == "inbound":
        raise CatalogueError(f, f"{key}.direction",
                             "Azure Firewall takes service tags as destinations only: inbound entries apply as "
                             "route or nsg")
    fallback = None
    if raw.get("fallback") is not None:
        fb = raw["fallback"]
        if not isinstance(fb, dict):
            raise CatalogueError(f, f"{key}.fallback", "expected {kind: service_tag, value: <tag>}")
        _keys(f, f"{key}.fallback", fb, {"kind", "value"}, required={"kind", "value"})
        fb_kind = _s(f, f"{key}.fallback.kind", fb["kind"])
        fb_value = _s(f, f"{key}.fallback.value", fb["value"])
        if fb_kind != "service_tag" or check_value(fb_kind, fb_value):
            raise CatalogueError(f, f"{key}.fallback", "a fallback is a service tag")
        fallback = Fallback("service_tag", fb_value)
    prov_raw = raw["provenance"]
    if not isinstance(prov_raw, dict):
        raise CatalogueError(f, f"{key}.provenance", "expected a mapping")
    _keys(f, f"{key}.provenance", prov_raw, _PROVENANCE_KEYS, required={"section"})
    in_seed = prov_raw.get("in_seed_text", True)
    if not isinstance(in_seed, bool):
        raise CatalogueError(f, f"{key}.provenance.in_seed_text", "expected true or false")
    if not in_seed and not prov_raw.get("source"):
        raise CatalogueError(f, f"{key}.provenance.source", "required when in_seed_text is false")
    also_in = prov_raw.get("also_in") or []
    if not isinstance(also_in, list):
        raise CatalogueError(f, f"{key}.provenance.also_in", "expected a list of sections")
    provenance = Provenance(
        section=_s(f, f"{key}.provenance.section", prov_raw["section"]),
        seed_text=str(prov_raw["seed_text"]) if prov_raw.get("seed_text") is not None else None,
        also_in=tuple(str(s) for s in also_in),
        in_seed_text=in_seed,
        source=str(prov_raw["source"]) if prov_raw.get("source") else None,
    )
    corr = []
    for i, c in enumerate(raw.get("corrections") or []):
        ck = f"{key}.corrections[{i}]"
        if not isinstance(c, dict):
            raise CatalogueError(f, ck, "expected {code: E-NN, note: ...}")
        _keys(f, ck, c, {"code", "note"}, required={"code", "note"})
        code = _s(f, f"{ck}.code", c["code"])
        if code not in corrections:
            raise CatalogueError(f, f"{ck}.code", f"correction {quote(code)} is not declared in catalogue.yaml")
        corr.append(Correction(code, _s(f, f"{ck}.note", c["note"])))
    strategy = _s(f, f"{key}.strategy", raw["strategy"])
    if strategy not in ENTRY_STRATEGIES:
        raise CatalogueError(f, f"{key}.strategy", f"expected one of {', '.join(ENTRY_STRATEGIES)}")
    covered_by: list[str] = []
    if raw.get("covered_by") is not None:
        covered_by = _str_list(f, f"{key}.covered_by", raw["covered_by"])
        if strategy != "fqdns" or kind == "service_tag":
            raise CatalogueError(f, f"{key}.covered_by", "only hosts of strategy fqdns are covered by a service tag")
        for i, tag in enumerate(covered_by):
            if check_value("service_tag", tag):
                raise CatalogueError(f, f"{key}.covered_by[{i}]", f"{tag!r} is not a service tag")
    if strategy == "service_tags" and kind != "service_tag":
        raise CatalogueError(f, f"{key}.strategy", "strategy service_tags is for service tags only")
    resource = [p for p in RESOURCE_PLACEHOLDERS if "{" + p + "}" in value]
    if_unknown = None
    if raw.get("if_unknown") is not None:
        if_unknown = _s(f, f"{key}.if_unknown", raw["if_unknown"])
        problem = check_value("wildcard_fqdn", if_unknown)
        if problem or any("{" + p + "}" in if_unknown for p in RESOURCE_PLACEHOLDERS):
            raise CatalogueError(f, f"{key}.if_unknown", f"{if_unknown!r}: expected the documented wildcard FQDN"
                                 f"{': ' + problem if problem else ''}")
    if resource and if_unknown is None:
        raise CatalogueError(f, f"{key}.if_unknown", f"required with {{{resource[0]}}}: the wildcard to allow when "
                             "the workspace does not name the resource")
    if if_unknown is not None and not resource:
        raise CatalogueError(f, f"{key}.if_unknown", "only for values with {keyvault}, {registry} or {workspace_id}")
    widen: list[PortSpec] = []
    if raw.get("widen_ports") is not None:
        if kind != "url_path":
            raise CatalogueError(f, f"{key}.widen_ports", "only for url_path entries")
        for i, p in enumerate(_str_list(f, f"{key}.widen_ports", raw["widen_ports"])):
            proto, _, rng = p.partition(":")
            spec = PortSpec(proto, rng)
            if spec not in ports:
                raise CatalogueError(f, f"{key}.widen_ports[{i}]", f"{p!r} is not one of the entry's ports")
            widen.append(spec)
    notes = raw.get("notes")
    return Endpoint(
        id=eid,
        kind=kind,  # type: ignore[arg-type]
        value=value,
        direction=direction,  # type: ignore[arg-type]
        ports=tuple(ports),
        clouds=frozenset(clouds),
        features=frozenset(feats),
        purpose=_s(f, f"{key}.purpose", raw["purpose"]),
        provenance=provenance,
        apply_as=apply_as,  # type: ignore[arg-type]
        fallback=fallback,
        corrections=tuple(corr),
        notes=str(notes).strip() if notes else None,
        strategy=strategy,  # type: ignore[arg-type]
        covered_by=tuple(covered_by),
        if_unknown=if_unknown,
        widen_ports=tuple(widen),
    )
