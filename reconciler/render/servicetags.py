"""Service tag prefixes from Microsoft's weekly `ServiceTags_*.json` download. Pure: parsed JSON in, prefixes out.

The CLI reads the file the user names (`--service-tags FILE`) and hands the parsed document here. A tag resolves to
exactly the `addressPrefixes` Microsoft lists for it (no widening, no merging); names match exactly as Azure spells
them, with a case-insensitive fallback (Azure's own tag lookups are case-insensitive).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# the `cloud` field of each download -> amlfw's cloud name
FILE_CLOUDS = {"Public": "AzureCloud", "AzureGovernment": "AzureUSGovernment", "China": "AzureChinaCloud",
               "AzureChinaCloud": "AzureChinaCloud"}

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ServiceTagFileError(ValueError):
    """The document is not a service-tag download (the message names the key and the reason)."""


@dataclass(frozen=True, slots=True)
class TagIndex:
    """The tags of one cloud's download: exact name -> prefixes (as Microsoft lists them)."""

    cloud: str
    change_number: int
    prefixes: Mapping[str, tuple[str, ...]]

    def lookup(self, tag: str) -> tuple[str, ...] | None:
        found = self.prefixes.get(tag)
        if found is not None:
            return found
        lowered = tag.lower()
        for name, values in self.prefixes.items():
            if name.lower() == lowered:
                return values
        return None


def parse_service_tags(doc: Any) -> TagIndex:
    """A `ServiceTags_*.json` document -> TagIndex. Raises ServiceTagFileError naming the bad key."""
    if not isinstance(doc, dict):
        raise ServiceTagFileError("(top level): not a JSON object")
    cloud_name = doc.get("cloud")
    if cloud_name not in FILE_CLOUDS:
        raise ServiceTagFileError(f"cloud: unknown cloud {cloud_name!r} (expected one of "
                                  f"{', '.join(sorted(FILE_CLOUDS))})")
    values = doc.get("values")
    if not isinstance(values, list):
        raise ServiceTagFileError("values: missing or not a list")
    out: dict[str, tuple[str, ...]] = {}
    for i, v in enumerate(values):
        name = v.get("name") if isinstance(v, dict) else None
        props = v.get("properties") if isinstance(v, dict) else None
        prefixes = props.get("addressPrefixes") if isinstance(props, dict) else None
        if not isinstance(name, str) or not isinstance(prefixes, list):
            raise ServiceTagFileError(f"values[{i}]: needs name and properties.addressPrefixes")
        for p in prefixes:
            try:
                ipaddress.ip_network(p, strict=False)
            except (TypeError, ValueError):
                raise ServiceTagFileError(f"values[{i}] ({name}): bad address prefix {p!r}") from None
        out[name] = tuple(str(p) for p in prefixes)
    change = doc.get("changeNumber")
    return TagIndex(cloud=FILE_CLOUDS[cloud_name], change_number=change if isinstance(change, int) else 0,
                    prefixes=out)


def split_families(prefixes: Iterable[str]) -> tuple[list[ipaddress.IPv4Network], list[ipaddress.IPv6Network]]:
    """Prefixes -> (IPv4 networks, IPv6 networks), each collapsed (overlaps and neighbours merged) and sorted."""
    v4: list[ipaddress.IPv4Network] = []
    v6: list[ipaddress.IPv6Network] = []
    for p in prefixes:
        net = ipaddress.ip_network(p, strict=False)
        if isinstance(net, ipaddress.IPv4Network):
            v4.append(net)
        else:
            v6.append(net)
    return (sorted(ipaddress.collapse_addresses(v4)), sorted(ipaddress.collapse_addresses(v6)))
