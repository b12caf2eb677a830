"""Compare two catalogue versions (`amlfw catalogue diff`). Pure: catalogues in, frozen values and text out.

Two views of the same change:

- **entries**, matched by id: added, removed, and changed field by field (`kind`, `value`, `direction`,
  `apply_as`, `ports`, `clouds`, `features`, `fallback`, `strategy`, `covered_by`, `if_unknown`,
  `widen_ports`). Purpose, provenance, corrections and notes are
  documentation and do not count as a change.
- **destinations**: the (cloud, value, port) items a selection of clouds and features needs in each version,
  and which of them it gains or loses. Ports are normalised the way the compiler reads them (`TCP:443` on a
  host is `Https:443`, `Https:443` on a service tag is `TCP:443`), so a spelling change is not reported as a
  change of what Azure Firewall allows. Values keep their placeholders (`Storage.{region}`).

Filters: `cloud` keeps the entries that apply to that cloud; `feature` (one name or several) keeps the
entries a workspace with those features needs, in each version with that version's implications and
the baseline always included (as `compile.select_entries` and `catalogue list --feature`). Without a
feature filter every entry counts, as for a workspace with `features: [all]`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from reconciler.model import CLOUDS, Catalogue, Endpoint, PortSpec

JSON_FORMAT_VERSION = 1

SCALAR_FIELDS = ("kind", "value", "direction", "apply_as", "fallback", "strategy", "if_unknown")
SET_FIELDS = ("ports", "clouds", "features", "covered_by", "widen_ports")
FIELDS = ("kind", "value", "direction", "apply_as", "ports", "clouds", "features", "fallback", "strategy",
          "covered_by", "if_unknown", "widen_ports")

_VALUE_WIDTH = 48  # pad destination values up to this width; longer ones push their port right
_PROTOCOL_ORDER = {"Http": 0, "Https": 1, "TCP": 2, "UDP": 3, "Any": 4, "ICMP": 5}


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field of an entry that differs. Scalar fields hold one item (none for an absent fallback)."""

    field: str
    old: tuple[str, ...]
    new: tuple[str, ...]

    @property
    def is_set(self) -> bool:
        return self.field in SET_FIELDS

    @property
    def added(self) -> tuple[str, ...]:
        return tuple(v for v in self.new if v not in self.old)

    @property
    def removed(self) -> tuple[str, ...]:
        return tuple(v for v in self.old if v not in self.new)


@dataclass(frozen=True, slots=True)
class EntryChange:
    """An id present in both versions whose firewall-relevant fields differ."""

    id: str
    old: Endpoint
    new: Endpoint
    fields: tuple[FieldChange, ...]

    def field(self, name: str) -> FieldChange | None:
        for f in self.fields:
            if f.field == name:
                return f
        return None


@dataclass(frozen=True, slots=True)
class Destination:
    """One thing to allow: a catalogue value and one port, in one cloud."""

    cloud: str
    direction: str
    apply_as: str
    value: str
    port: str

    def sort_key(self) -> tuple[int, int, str, str, tuple[int, int, str]]:
        """Cloud in CLOUDS order, outbound first, then apply_as, value and port."""
        cloud = CLOUDS.index(self.cloud) if self.cloud in CLOUDS else len(CLOUDS)
        return (cloud, self.direction != "outbound", self.apply_as, self.value.lower(), _port_key(self.port))


@dataclass(frozen=True, slots=True)
class CatalogueDiff:
    from_version: str
    to_version: str
    cloud: str | None
    features: tuple[str, ...]  # the feature filter; () means every feature
    added: tuple[Endpoint, ...]
    removed: tuple[Endpoint, ...]
    changed: tuple[EntryChange, ...]
    unchanged: tuple[str, ...]
    gained: tuple[Destination, ...]
    lost: tuple[Destination, ...]

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.gained or self.lost)


def diff_catalogues(a: Catalogue, b: Catalogue, cloud: str | None = None,
                    feature: str | Iterable[str] | None = None) -> CatalogueDiff:
    """What changes from catalogue `a` to catalogue `b`, optionally for one cloud and a set of features.

    A feature name that a version does not declare selects nothing extra in that version (the caller checks
    that each name exists in at least one of the two).
    """
    features: tuple[str, ...] = ()
    if isinstance(feature, str):
        features = (feature,)
    elif feature is not None:
        features = tuple(sorted(set(feature)))
    old = {e.id: e for e in _selected(a, cloud, features)}
    new = {e.id: e for e in _selected(b, cloud, features)}
    added = tuple(new[i] for i in sorted(new.keys() - old.keys()))
    removed = tuple(old[i] for i in sorted(old.keys() - new.keys()))
    changed: list[EntryChange] = []
    unchanged: list[str] = []
    for i in sorted(old.keys() & new.keys()):
        fields = _field_changes(old[i], new[i])
        if fields:
            changed.append(EntryChange(i, old[i], new[i], fields))
        else:
            unchanged.append(i)
    before = _destinations(old.values(), cloud)
    after = _destinations(new.values(), cloud)
    return CatalogueDiff(
        from_version=a.version,
        to_version=b.version,
        cloud=cloud,
        features=features,
        added=added,
        removed=removed,
        changed=tuple(changed),
        unchanged=tuple(unchanged),
        gained=tuple(sorted(after - before, key=Destination.sort_key)),
        lost=tuple(sorted(before - after, key=Destination.sort_key)),
    )


def effective_port(entry: Endpoint, spec: PortSpec) -> str:
    """A port as the compiler reads it: web ports of hosts are Http/Https, ports of service tags TCP/UDP/Any."""
    if entry.kind == "service_tag":
        proto = "TCP" if spec.protocol in ("Http", "Https") else spec.protocol
        return f"{proto}:{spec.ports}"
    if spec.is_web and spec.ports.isdigit():
        return f"{spec.app_protocol}:{spec.ports}"
    return str(spec)


def _selected(cat: Catalogue, cloud: str | None, features: tuple[str, ...]) -> list[Endpoint]:
    entries = [e for e in cat.entries if cloud is None or cloud in e.clouds]
    if features:
        wanted = cat.with_implied({"baseline", *features})
        entries = [e for e in entries if e.features & wanted]
    return entries


def _field_values(e: Endpoint, name: str) -> tuple[str, ...]:
    if name == "ports":
        return tuple(sorted({str(p) for p in e.ports}, key=_port_key))
    if name == "clouds":
        return tuple(sorted(e.clouds, key=lambda c: (CLOUDS.index(c) if c in CLOUDS else len(CLOUDS), c)))
    if name == "features":
        return tuple(sorted(e.features))
    if name == "fallback":
        return (e.fallback.value,) if e.fallback is not None else ()
    if name == "covered_by":
        return tuple(sorted(e.covered_by))
    if name == "widen_ports":
        return tuple(sorted({str(p) for p in e.widen_ports}, key=_port_key))
    if name == "if_unknown":
        return (e.if_unknown,) if e.if_unknown is not None else ()
    value: str = getattr(e, name)
    return (value,)


def _field_changes(old: Endpoint, new: Endpoint) -> tuple[FieldChange, ...]:
    out = []
    for name in FIELDS:
        before, after = _field_values(old, name), _field_values(new, name)
        if (set(before) != set(after)) if name in SET_FIELDS else (before != after):
            out.append(FieldChange(name, before, after))
    return tuple(out)


def _destinations(entries: Iterable[Endpoint], cloud: str | None) -> set[Destination]:
    out = set()
    for e in entries:
        for c in sorted(e.clouds):
            if cloud is not None and c != cloud:
                continue
            for spec in e.ports:
                out.add(Destination(c, e.direction, e.apply_as, e.value, effective_port(e, spec)))
    return out


def _port_key(port: str) -> tuple[int, int, str]:
    proto, _, rng = port.partition(":")
    head = rng.split("-")[0]
    return (_PROTOCOL_ORDER.get(proto, len(_PROTOCOL_ORDER)), int(head) if head.isdigit() else -1, port)


# ------------------------------------------------------------------------------------------------ rendering


def _filters(d: CatalogueDiff) -> str:
    cloud = d.cloud or "every cloud"
    feats = ", ".join(d.features) + " (and baseline)" if d.features else "every feature"
    return f"{cloud}; {feats}"


def _how(direction: str, apply_as: str) -> str:
    """Marks what is not an outbound firewall rule."""
    if apply_as == "route":
        return "  (inbound route)"
    if apply_as == "nsg":
        return f"  ({direction} NSG, informational)"
    return ""


def _entry_line(sign: str, e: Endpoint, width: int) -> str:
    ports = ",".join(str(p) for p in e.ports)
    fallback = f"  fallback {e.fallback.value}" if e.fallback is not None else ""
    return (f"{sign} {e.id:<{width}}  {e.value}  {ports}  [{','.join(sorted(e.features))}]  "
            f"({', '.join(_field_values(e, 'clouds'))}){fallback}{_how(e.direction, e.apply_as)}")


def _field_line(f: FieldChange) -> str:
    if f.is_set:
        parts = [f"-{v}" for v in f.removed] + [f"+{v}" for v in f.added]
        return f"      {f.field}: {' '.join(parts)}"
    old = f'"{f.old[0]}"' if f.old else "none"
    new = f'"{f.new[0]}"' if f.new else "none"
    return f"      {f.field}: {old} -> {new}"


def render_text(d: CatalogueDiff) -> str:
    """Terraform-like: `+` added, `-` removed, `~` changed (with its fields), then the destinations."""
    lines = [
        f"catalogue diff {d.from_version} -> {d.to_version}  ({_filters(d)})",
        f"entries: {len(d.added)} added, {len(d.removed)} removed, {len(d.changed)} changed, "
        f"{len(d.unchanged)} unchanged",
        f"destinations: {len(d.gained)} gained, {len(d.lost)} lost",
    ]
    if d.is_empty:
        lines.append("")
        lines.append("No differences.")
        return "\n".join(lines) + "\n"
    ids = [e.id for e in d.added] + [e.id for e in d.removed] + [c.id for c in d.changed]
    width = max((len(i) for i in ids), default=0)
    if ids:
        lines.append("")
        lines.append("Entries (by id):")
        lines += [_entry_line("+", e, width) for e in d.added]
        lines += [_entry_line("-", e, width) for e in d.removed]
        for c in d.changed:
            lines.append(f"~ {c.id:<{width}}  {c.new.value}")
            lines += [_field_line(f) for f in c.fields]
    if d.gained or d.lost:
        lines.append("")
        lines.append("Destinations (ports as Azure Firewall sees them):")
        for cloud in CLOUDS:
            items = [("+", x) for x in d.gained if x.cloud == cloud] + [("-", x) for x in d.lost if x.cloud == cloud]
            if not items:
                continue
            items.sort(key=lambda t: (t[1].sort_key(), t[0]))
            lines.append(f"  {cloud}:")
            vwidth = min(max(len(x.value) for _, x in items), _VALUE_WIDTH)
            lines += [f"  {sign} {x.value:<{vwidth}}  {x.port}{_how(x.direction, x.apply_as)}".rstrip()
                      for sign, x in items]
    return "\n".join(lines) + "\n"


def _entry_json(e: Endpoint) -> dict[str, Any]:
    return {
        "id": e.id, "kind": e.kind, "value": e.value, "direction": e.direction, "apply_as": e.apply_as,
        "ports": list(_field_values(e, "ports")), "clouds": list(_field_values(e, "clouds")),
        "features": sorted(e.features), "fallback": e.fallback.value if e.fallback is not None else None,
        "purpose": e.purpose,
    }


def _change_json(f: FieldChange) -> dict[str, Any]:
    if f.is_set:
        return {"old": list(f.old), "new": list(f.new), "added": list(f.added), "removed": list(f.removed)}
    return {"old": f.old[0] if f.old else None, "new": f.new[0] if f.new else None}


def _destination_json(x: Destination) -> dict[str, str]:
    return {"cloud": x.cloud, "direction": x.direction, "apply_as": x.apply_as, "value": x.value, "port": x.port}


def to_json(d: CatalogueDiff) -> dict[str, Any]:
    """The JSON document of `catalogue diff --format json` (`format_version` 1)."""
    return {
        "format_version": JSON_FORMAT_VERSION,
        "from": d.from_version,
        "to": d.to_version,
        "filters": {"cloud": d.cloud, "features": list(d.features)},
        "summary": {"added": len(d.added), "removed": len(d.removed), "changed": len(d.changed),
                    "unchanged": len(d.unchanged), "destinations_gained": len(d.gained),
                    "destinations_lost": len(d.lost)},
        "added": [_entry_json(e) for e in d.added],
        "removed": [_entry_json(e) for e in d.removed],
        "changed": [{"id": c.id, "value": c.new.value, "fields": {f.field: _change_json(f) for f in c.fields}}
                    for c in d.changed],
        "unchanged": list(d.unchanged),
        "destinations": {"gained": [_destination_json(x) for x in d.gained],
                         "lost": [_destination_json(x) for x in d.lost]},
    }
