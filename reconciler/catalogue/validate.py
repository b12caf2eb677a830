"""`amlfw catalogue validate`: checks beyond the schema. Pure over a loaded catalogue and tag-name lists."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from reconciler.compile import regional_tag
from reconciler.errors import CatalogueError, excerpt
from reconciler.model import Catalogue
from reconciler.yamlio import UnreadableFile, read_text

# The two published service-tag files and the cloud each describes.
SERVICE_TAG_FILES = {"AzureCloud": "ServiceTags_Public.json", "AzureUSGovernment": "ServiceTags_Gov.json"}


@dataclass(frozen=True, slots=True)
class Problem:
    entry_id: str
    message: str

    def __str__(self) -> str:
        return f"{self.entry_id}: {self.message}"


def tag_names_from_json(directory: Path) -> dict[str, frozenset[str]]:
    """Tag names per cloud from Microsoft's weekly `ServiceTags_*.json` downloads found in `directory`."""
    out: dict[str, frozenset[str]] = {}
    for cloud, name in SERVICE_TAG_FILES.items():
        path = directory / name
        if path.is_file():
            try:
                data = json.loads(read_text(path, limit=128 * 1024 * 1024))
            except UnreadableFile as exc:
                raise CatalogueError(str(path), "", str(exc)) from None
            except ValueError as exc:
                raise CatalogueError(str(path), "", f"not JSON: {excerpt(str(exc))}") from None
            values = data.get("values") if isinstance(data, dict) else None
            if not isinstance(values, list) or not all(isinstance(v, dict) and isinstance(v.get("name"), str)
                                                       for v in values):
                raise CatalogueError(str(path), "values", "expected a list of {name: <tag>, ...} objects")
            out[cloud] = frozenset(v["name"] for v in values)
    return out


def validate_catalogue(catalogue: Catalogue, tag_names: Mapping[str, frozenset[str]]) -> list[Problem]:
    """Duplicates, service tag names and regional suffixes (for the clouds we have tag lists for)."""
    problems: list[Problem] = []
    seen: dict[tuple[str, str, str, str, str, str], str] = {}
    for e in catalogue.entries:
        for cloud in sorted(e.clouds):
            for feature in sorted(e.features):
                for spec in e.ports:
                    key = (e.value.lower(), e.direction, cloud, feature, str(spec), e.apply_as)
                    if key in seen and seen[key] != e.id:
                        problems.append(Problem(e.id, f"duplicates {seen[key]} ({e.value} {spec} in {cloud}, "
                                                      f"feature {feature})"))
                    seen.setdefault(key, e.id)

    lowered = {cloud: {n.lower(): n for n in names} for cloud, names in tag_names.items()}
    regional: dict[str, dict[str, set[str]]] = {}
    for cloud, names in tag_names.items():
        by_base: dict[str, set[str]] = defaultdict(set)
        for n in names:
            base, _, suffix = n.partition(".")
            if suffix:
                by_base[base.lower()].add(suffix)
        regional[cloud] = by_base
    for e in catalogue.entries:
        tags = []
        if e.kind == "service_tag":
            tags.append(e.value)
        if e.fallback is not None:
            tags.append(e.fallback.value)
        for tag in tags:
            for cloud in sorted(e.clouds & set(tag_names)):
                problems.extend(_check_tag(e.id, tag, cloud, lowered[cloud], regional[cloud],
                                           catalogue.region_suffixes(cloud)))
    return problems


def _check_tag(entry_id: str, tag: str, cloud: str, names: Mapping[str, str],
               regional: Mapping[str, set[str]], regions: Mapping[str, str]) -> list[Problem]:
    if tag.endswith(".{region}"):
        base = tag[: -len(".{region}")]
        suffixes = regional.get(base.lower())
        if not suffixes:
            return [Problem(entry_id, f"{base} has no regional tags ({base}.<Region>) in {cloud}")]
        known = {s.lower() for s in suffixes}
        resolved = [regional_tag(base, region, dict(regions)) for region in regions]
        wrong = [r for r in resolved if r.partition(".")[2].lower() in known and r.partition(".")[2] not in suffixes]
        if wrong:
            return [Problem(entry_id, f"regional tag casing differs from Azure's in {cloud}: "
                                      f"{', '.join(sorted(wrong)[:5])}")]
        return []
    canonical = names.get(tag.lower())
    if canonical is None:
        return [Problem(entry_id, f"unknown service tag {tag!r} in {cloud}")]
    if canonical != tag:
        return [Problem(entry_id, f"service tag {tag!r} is spelled {canonical!r} by Azure ({cloud})")]
    return []


def usability_notes(catalogue: Catalogue) -> list[Problem]:
    """Entries whose service tag Microsoft's data does not mark usable where the entry puts it (Azure Firewall
    rules, or routes for apply_as: route). Advisory: the data and the docs disagree at times (AKS's own
    Azure Firewall walkthrough uses AzureCloud.<region>), so these are warnings, not failures."""
    notes: list[Problem] = []
    for e in catalogue.entries:
        if e.kind != "service_tag" or e.apply_as == "nsg":
            continue
        route = e.apply_as == "route"
        where = "user-defined routes" if route else "Azure Firewall rules"
        for cloud in sorted(e.clouds):
            regions = catalogue.region_suffixes(cloud)
            if e.value.endswith(".{region}"):
                base = e.value[: -len(".{region}")]
                tags = sorted({regional_tag(base, r, regions) for r in regions})
            else:
                tags = [e.value]
            bad = [t for t in tags if catalogue.tag_unusable(cloud, t, route=route)]
            if bad:
                sample = ", ".join(bad[:3]) + (f" and {len(bad) - 3} more" if len(bad) > 3 else "")
                notes.append(Problem(e.id, f"{cloud}: Microsoft's service-tag data does not mark {sample} usable "
                                           f"in {where}"))
    return notes
