"""Live service-tag check for pre-flight. Pure: desired state + the tag names the Service Tags API serves -> issues.

The engine reads the names once per pass (`AzureReader.service_tag_names`, one GET per region) before any write;
a tag the API does not serve, or a regional suffix that is not available, stops the write with the tag, the
catalogue entry and the fix.
"""

from __future__ import annotations

import difflib
import ipaddress
from collections.abc import Iterable

from reconciler.model import DesiredTarget, NetworkRule


def _is_address(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return "*" in value  # `*` (any) is not a tag
    return True


def desired_tags(desired: DesiredTarget) -> dict[str, tuple[str, ...]]:
    """Service tags the desired rules and routes use -> the catalogue entry ids behind them."""
    origins = {(o.collection, o.rule): o.entry_ids for o in desired.origins}
    out: dict[str, set[str]] = {}
    for c in desired.group.rule_collections:
        for r in c.rules:
            if isinstance(r, NetworkRule):
                for a in r.destination_addresses:
                    if not _is_address(a):
                        out.setdefault(a, set()).update(origins.get((c.name, r.name), ()))
    for route in desired.routes:
        if not _is_address(route.address_prefix):
            ids = {row.entry_id for row in desired.allow_list
                   if row.enforced_as == "route" and row.destination.lower() == route.address_prefix.lower()}
            out.setdefault(route.address_prefix, set()).update(ids)
    return {t: tuple(sorted(ids)) for t, ids in sorted(out.items())}


def _fix(tag: str, served: dict[str, str]) -> str:
    base, dot, suffix = tag.partition(".")
    bases: dict[str, set[str]] = {}
    for name in served.values():
        b, _, s = name.partition(".")
        bases.setdefault(b.lower(), set()).add(s)
    if dot and base.lower() in bases:
        return (f"the regional suffix .{suffix} is not available for {base} here: use {base} (global) or a region "
                f"it is served in")
    close = difflib.get_close_matches(tag.lower(), list(served), n=1, cutoff=0.6)
    if not close and dot:
        close_base = difflib.get_close_matches(base.lower(), list(bases), n=1, cutoff=0.5)
        if close_base:
            cand = f"{close_base[0]}.{suffix}".lower()
            close = [cand] if cand in served else []
            if not close:
                b = next(served[k] for k in served if k.partition(".")[0] == close_base[0])
                return f"no such tag; did you mean {b.partition('.')[0]}?"
    if close:
        return f"no such tag; did you mean {served[close[0]]}?"
    return "no such tag: fix the catalogue entry (see `amlfw catalogue validate --service-tags`)"


def unknown_tags(desired: DesiredTarget, served: Iterable[str], region: str) -> list[tuple[str, str]]:
    """(tag, message) for each tag the desired state uses that `served` (the API's names for `region`) lacks."""
    by_lower = {n.lower(): n for n in served}
    messages = []
    for tag, entries in desired_tags(desired).items():
        if tag.lower() in by_lower:
            continue
        messages.append((tag, f"service tag {tag} (catalogue entry {', '.join(entries) or '?'}) is not served by "
                               f"the Service Tags API in {region}: {_fix(tag, by_lower)}"))
    return messages
