"""Regenerate the offline reference data of the endpoint catalogue from Microsoft's service-tag JSON.

Usage::

    python reference/generate_catalogue_data.py [REFERENCE] [--out config/catalogue]

REFERENCE is the folder that holds ``ServiceTags_Public.json`` and ``ServiceTags_Gov.json`` (either that folder
itself or a parent with a ``service-tags/`` sub-folder); by default the vendored copy, ``reference/`` beside this
script. Refresh that copy first with ``make refresh-reference SOURCE=...``.

Writes three files into ``config/catalogue/`` (or ``--out``):

``regions.yaml``
    Per cloud, lower-case region name -> the PascalCase suffix that regional service tags use
    (``westus2: WestUS2``). Keys are every ``properties.region`` value of the JSON, plus the
    lower-cased suffix where the JSON's region token is an abbreviation (the JSON says
    ``centralfrance`` for ``FranceCentral``; a workspace's ARM location is ``francecentral``).
    The suffix for a region is the one most tags use (``AzureCloud.<region>`` is spelt in lower
    case and staging variants such as ``Storage.EastUS2Stage`` exist; the majority is canonical).
    A region with no regional tag but ``AzureCloud.<region>`` keeps its lower-case name.
    There is no China JSON: ``AzureChinaCloud`` is the hand list ``CHINA_REGIONS`` below.

``service-tag-names.yaml``
    Per cloud (``AzureCloud``, ``AzureUSGovernment``), the sorted list of every tag name, so the
    product can validate tag names offline without shipping the 4 MB JSON.

``service-tag-features.yaml``
    Per cloud, the tags whose ``networkFeatures`` list omits ``FW`` (``no_firewall``: Microsoft does not
    mark them usable in Azure Firewall rules) or ``UDR`` (``no_routes``: not usable as a route prefix).
    Tags without a ``networkFeatures`` list are left out: the JSON makes no claim about them.

The output is deterministic (no timestamps); the JSON's ``changeNumber`` is recorded in a header
comment so a diff shows which download the data came from.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import yaml

SOURCES: dict[str, str] = {
    "AzureCloud": "ServiceTags_Public.json",
    "AzureUSGovernment": "ServiceTags_Gov.json",
}

# No ServiceTags_China.json was available. Region names of Azure operated by 21Vianet, with the
# suffix casing Azure uses for regional tags in the other clouds (e.g. Storage.ChinaEast2).
CHINA_REGIONS: dict[str, str] = {
    "chinaeast": "ChinaEast",
    "chinaeast2": "ChinaEast2",
    "chinaeast3": "ChinaEast3",
    "chinanorth": "ChinaNorth",
    "chinanorth2": "ChinaNorth2",
    "chinanorth3": "ChinaNorth3",
}


def find_service_tags_dir(reference: Path) -> Path:
    """Return the folder holding the JSON files, given it or its parent."""
    for candidate in (reference, reference / "service-tags"):
        if all((candidate / name).is_file() for name in SOURCES.values()):
            return candidate
    wanted = ", ".join(SOURCES.values())
    raise SystemExit(f"{reference}: no {wanted} here or in {reference / 'service-tags'}")


def load(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
    return data


def region_suffixes(document: dict[str, Any]) -> dict[str, str]:
    """Map each ``properties.region`` value to the suffix most regional tag names use for it."""
    votes: dict[str, Counter[str]] = defaultdict(Counter)
    for value in document["values"]:
        region = value["properties"].get("region") or ""
        name: str = value["name"]
        if not region or "." not in name:
            continue
        suffix = name.split(".", 1)[1]
        # AzureCloud.<region> uses the lower-case region itself: it only counts when a region has no
        # other regional tag (brazilne, northeurope2 have nothing but AzureCloud.<region>).
        votes[region][suffix] += 0 if suffix == region else 1
    mapping: dict[str, str] = {}
    for region, counter in votes.items():
        # Highest count wins; ties broken by name so the output is deterministic.
        best = sorted(counter.items(), key=lambda item: (-item[1], item[0]))[0][0]
        mapping[region] = best
    # Aliases: the ARM location name is the lower-cased suffix (francecentral), which differs
    # from a few abbreviated JSON region tokens (centralfrance, brazilse, norwaye, ...).
    for suffix in list(mapping.values()):
        if suffix != suffix.lower():
            mapping.setdefault(suffix.lower(), suffix)
    return dict(sorted(mapping.items()))


def tag_names(document: dict[str, Any]) -> list[str]:
    return sorted({value["name"] for value in document["values"]})


def lacking(document: dict[str, Any], feature: str) -> list[str]:
    """Tags whose networkFeatures list exists and does not contain `feature`."""
    return sorted({v["name"] for v in document["values"]
                   if isinstance(v["properties"].get("networkFeatures"), list)
                   and feature not in v["properties"]["networkFeatures"]})


def header(lines: list[str]) -> str:
    return "".join(f"# {line}\n" if line else "#\n" for line in lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    here = Path(__file__).resolve().parent
    parser.add_argument("reference", type=Path, nargs="?", default=here,
                        help="folder with the service-tag JSON files, or its parent (default: the vendored reference/)")
    parser.add_argument("--out", type=Path, default=here.parent / "config" / "catalogue", help="output folder")
    args = parser.parse_args(argv)

    tags_dir = find_service_tags_dir(args.reference)
    regions: dict[str, dict[str, str]] = {}
    names: dict[str, list[str]] = {}
    features: dict[str, dict[str, list[str]]] = {}
    provenance: list[str] = []
    for cloud, filename in SOURCES.items():
        document = load(tags_dir / filename)
        regions[cloud] = region_suffixes(document)
        names[cloud] = tag_names(document)
        features[cloud] = {"no_firewall": lacking(document, "FW"), "no_routes": lacking(document, "UDR")}
        provenance.append(
            f"{cloud}: {filename} (cloud {document.get('cloud')}, "
            f"changeNumber {document.get('changeNumber')}, {len(document['values'])} tags)"
        )
    regions["AzureChinaCloud"] = dict(sorted(CHINA_REGIONS.items()))

    common = [
        "GENERATED by reference/generate_catalogue_data.py - do not edit by hand.",
        "Source: Microsoft's weekly service-tag downloads:",
        *[f"  {line}" for line in provenance],
    ]
    regions_text = header(
        [
            *common,
            "AzureChinaCloud: hand list (no China JSON available).",
            "",
            "lower-case region name -> suffix of regional service tags (Storage.WestUS2).",
            "Keys: every properties.region of the JSON plus the lower-cased suffix (ARM location name).",
            "Note: AzureCloud.<region> tags are spelt with the lower-case region (AzureCloud.westus2).",
        ]
    ) + yaml.safe_dump(regions, sort_keys=False, default_flow_style=False, width=120)
    names_text = header([*common, "", "Every service-tag name per cloud, sorted. No China list exists."])
    names_text += yaml.safe_dump(names, sort_keys=False, default_flow_style=False, width=120)

    features_text = header([*common, "", "Tags whose networkFeatures omit FW (no_firewall) or UDR (no_routes).",
                            "Tags with no networkFeatures list are not listed (no claim either way)."])
    features_text += yaml.safe_dump(features, sort_keys=False, default_flow_style=False, width=120)

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "service-tag-features.yaml").write_text(features_text, encoding="utf-8")
    (args.out / "regions.yaml").write_text(regions_text, encoding="utf-8")
    (args.out / "service-tag-names.yaml").write_text(names_text, encoding="utf-8")
    for cloud in regions:
        count = len(names.get(cloud, []))
        print(f"{cloud}: {len(regions[cloud])} regions, {count} tag names", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
