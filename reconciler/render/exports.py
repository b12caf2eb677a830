"""Exports for enforcement points other than Azure Firewall: squid, nftables, PAN-OS EDL, Azure ML managed network.

Pure: compiled desired state (its allow-list rows) + service tag prefixes + a stamp -> files (name, text). Every
export is stamped with the catalogue version(s), the SHA-256 of the configuration file and the generation time
(the CLI takes it from SOURCE_DATE_EPOCH when set, so the output is reproducible).

Only outbound rows are exported: the inbound rows (UDRs, NSG items) are not a job for an egress proxy or list.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from reconciler.config import Target, Workspace
from reconciler.model import AllowListRow, DesiredTarget
from reconciler.render.servicetags import TagIndex, split_families

Pairs = Sequence[tuple[Target, DesiredTarget]]
Files = list[tuple[str, str]]
FORMATS = ("squid", "nftables", "paloalto-edl", "managed-network")
NEEDS_TAGS = frozenset({"nftables", "paloalto-edl"})
_HOST_KINDS = ("fqdn", "wildcard_fqdn", "url_path")
_FALLBACK = re.compile(r"\(fallback ([A-Za-z0-9.\-]+)\)")


class ExportError(ValueError):
    """An export cannot be made as asked (message: key and reason)."""


@dataclass(frozen=True, slots=True)
class Stamp:
    catalogue_versions: tuple[str, ...]
    config_sha256: str
    generated: str  # ISO 8601, UTC

    def text(self) -> str:
        return (f"catalogue {', '.join(self.catalogue_versions)}; config sha256:{self.config_sha256}; "
                f"generated {self.generated}")


def stamp_for(pairs: Pairs, config_bytes: bytes, generated: str) -> Stamp:
    return Stamp(tuple(sorted({d.catalogue_version for _, d in pairs})), hashlib.sha256(config_bytes).hexdigest(),
                 generated)


def _outbound(d: DesiredTarget, ws: str) -> list[AllowListRow]:
    return [r for r in d.allow_list if r.workspace == ws and r.direction == "outbound"]


def _is_web(row: AllowListRow) -> bool:
    return row.protocol in ("Http", "Https") or (row.protocol == "TCP" and row.port in ("80", "443"))


def _host(row: AllowListRow) -> str:
    """The host part of an FQDN, wildcard or URL-path destination, lower-case."""
    return row.destination.partition("/")[0].lower()


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")


def _workspaces(t: Target) -> Iterable[Workspace]:
    return t.workspaces


def _ident(pairs: Pairs, t: Target, ws: Workspace) -> str:
    """A short identifier for a workspace: its name, prefixed by the policy and group when there are several targets."""
    if len(pairs) == 1:
        return _slug(ws.name)
    return _slug(f"{t.policy.name}_{t.group_name}_{ws.name}")


# --------------------------------------------------------------------------------------------------
# Tag resolution


def _tags_by_cloud(tags: Sequence[TagIndex]) -> dict[str, TagIndex]:
    return {t.cloud: t for t in tags}


def _resolve(tag: str, cloud: str, index: Mapping[str, TagIndex], row: AllowListRow) -> tuple[str, ...]:
    found = index.get(cloud)
    if found is None:
        raise ExportError(f"--service-tags: no service-tag file for cloud {cloud} (target {row.target}); "
                          f"give Microsoft's ServiceTags_*.json for it")
    prefixes = found.lookup(tag)
    if prefixes is None:
        raise ExportError(f"--service-tags: service tag {tag!r} (entry {row.entry_id}, workspace {row.workspace}) "
                          f"is not in the {cloud} file (changeNumber {found.change_number}); refresh the file or "
                          f"fix the catalogue entry")
    return prefixes


def _ip_destinations(row: AllowListRow) -> str | None:
    """The service tag an outbound row is enforced with by IP: the tag itself, or a wildcard's declared fallback."""
    if row.kind == "service_tag":
        return row.destination
    m = _FALLBACK.search(row.enforced_as)
    return m.group(1) if m else None


# --------------------------------------------------------------------------------------------------
# squid


def _squid_domains(hosts: Iterable[str]) -> list[str]:
    """dstdomain values: `*.x` -> `.x` (matches x and its subdomains); entries a `.domain` covers are dropped,
    since squid warns about (and ignores) them."""
    values = {("." + h[2:]) if h.startswith("*.") else h for h in hosts}
    wild = {v for v in values if v.startswith(".")}

    def covered(v: str) -> bool:
        bare = v.lstrip(".")
        parts = bare.split(".")
        for i in range(len(parts)):
            cand = "." + ".".join(parts[i:])
            if cand != v and cand in wild:
                return True
        return False

    return sorted((v for v in values if not covered(v)), key=lambda v: (v.lstrip("."), v))


def render_squid(pairs: Pairs, stamp: Stamp) -> str:
    out = [
        "# amlfw squid export: allow what Azure ML needs, per workspace.",
        f"# {stamp.text()}",
        "# Include it in squid.conf before your final 'http_access deny all', e.g.",
        "#   include /etc/squid/conf.d/amlfw.conf",
        "# Plain HTTP on port 80 and CONNECT (TLS) on 443; other ports and IP-only destinations are listed at the",
        "# end as comments: an HTTP proxy cannot carry them (see `amlfw render --format nftables`).",
    ]
    left_out: list[str] = []
    for t, d in pairs:
        for ws in _workspaces(t):
            rows = _outbound(d, ws.name)
            base = f"amlfw_{_ident(pairs, t, ws)}"
            by_port: dict[str, set[str]] = defaultdict(set)
            for r in rows:
                if r.kind in _HOST_KINDS and _is_web(r):
                    by_port["80" if r.protocol == "Http" or r.port == "80" else "443"].add(_host(r))
                else:
                    left_out.append(f"#   {t.name} {ws.name}: {r.destination} {r.protocol}:{r.port} ({r.entry_id})")
            out.append("")
            out.append(f"# target {t.name}, workspace {ws.name} ({t.cloud}, catalogue {d.catalogue_version})")
            src = f"{base}_src" if ws.source_addresses else ""
            if ws.source_addresses:
                out.append(f"acl {src} src {' '.join(ws.source_addresses)}")
            elif ws.source_ip_groups:
                out.append("# sources are IP groups (not resolvable offline): the rules below match every client")
            for port in sorted(by_port, key=int):
                name = f"{base}_{port}"
                out.append(f"acl {name} dstdomain {' '.join(_squid_domains(by_port[port]))}")
                out.append(f"acl {name}_port port {port}")
                method = "CONNECT " if port == "443" else ""
                if method:
                    out.append(f"acl {name}_connect method CONNECT")
                    out.append(f"http_access allow {src + ' ' if src else ''}{name}_connect {name}_port {name}")
                else:
                    out.append(f"http_access allow {src + ' ' if src else ''}{name}_port {name}")
    if left_out:
        out.append("")
        out.append("# not carried by an HTTP proxy (non-web port or an IP destination):")
        out.extend(sorted(set(left_out)))
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------------
# nftables

_NFT_PROTO = {"TCP": "tcp", "UDP": "udp"}


def render_nftables(pairs: Pairs, stamp: Stamp, tags: Sequence[TagIndex]) -> str:
    index = _tags_by_cloud(tags)
    sets: list[str] = []
    rules: list[str] = []
    fqdns: list[str] = []
    for t, d in pairs:
        for ws in _workspaces(t):
            groups: dict[tuple[str, str], set[str]] = defaultdict(set)
            names: dict[tuple[str, str], set[str]] = defaultdict(set)
            for r in _outbound(d, ws.name):
                tag = _ip_destinations(r)
                if tag is not None:
                    groups[(r.protocol, r.port)].update(_resolve(tag, t.cloud, index, r))
                    names[(r.protocol, r.port)].add(tag)
                if r.kind in _HOST_KINDS:
                    fqdns.append(f"# fqdn {t.name} {ws.name} {_host(r)} {r.protocol.lower()} {r.port}")
            base = _ident(pairs, t, ws)
            src4 = [a for a in ws.source_addresses if ":" not in a]
            src6 = [a for a in ws.source_addresses if ":" in a]
            for (proto, port) in sorted(groups, key=lambda k: (k[0], k[1])):
                v4, v6 = split_families(groups[(proto, port)])
                set_base = f"{base}_{proto.lower()}_{_slug(port) or 'any'}"
                match = ""
                if proto in _NFT_PROTO:
                    p4 = _NFT_PROTO[proto]
                    match = f" {p4} dport {port}" if port != "*" else f" meta l4proto {p4}"
                elif proto == "ICMP":
                    match = " meta l4proto { icmp, ipv6-icmp }"
                for fam, nets, addr, src in (("v4", v4, "ip", src4), ("v6", v6, "ip6", src6)):
                    if not nets:
                        continue
                    if ws.source_addresses and not src:
                        # no source of this family: the rule could never match
                        sets.append(f"\t# {base} {proto}:{port}: {len(nets)} IPv{fam[1]} prefixes left out "
                                    f"(the workspace's sources are IPv4 only)")
                        continue
                    name = f"{set_base}_{fam}"
                    sets.append(f"\t# {', '.join(sorted(names[(proto, port)]))}: {len(nets)} prefixes")
                    sets.append(f"\tset {name} {{")
                    sets.append(f"\t\ttype ipv{fam[1]}_addr")
                    sets.append("\t\tflags interval")
                    sets.append(f"\t\telements = {{ {', '.join(str(n) for n in nets)} }}")
                    sets.append("\t}")
                    saddr = f"{addr} saddr {{ {', '.join(src)} }} " if src else ""
                    rules.append(f"\t\t{saddr}{addr} daddr @{name}{match} accept")
    out = [
        "# amlfw nftables export: what Azure ML needs by IP (service tags resolved), per workspace.",
        f"# {stamp.text()}",
        f"# service tags: {', '.join(f'{c} changeNumber {i.change_number}' for c, i in sorted(index.items()))}",
        "# Load with `nft -f FILE`; jump to the chain from your forward chain: `jump amlfw_egress` (table inet amlfw).",
        "# The FQDNs are listed at the end, for a DNS-based tool: `# fqdn TARGET WORKSPACE NAME PROTOCOL PORT`.",
        "table inet amlfw {",
        *sets,
        "\tchain amlfw_egress {",
        *rules,
        "\t}",
        "}",
        *sorted(set(fqdns)),
    ]
    return "\n".join(out) + "\n"


# --------------------------------------------------------------------------------------------------
# PAN-OS external dynamic lists


def render_paloalto(pairs: Pairs, stamp: Stamp, tags: Sequence[TagIndex]) -> Files:
    """Per workspace, a URL list and an IP list (PAN-OS EDL syntax: one entry a line; an IP list line may carry a
    comment after a space), and a manifest with the stamp and each list's SHA-256 (URL lists carry no comments)."""
    index = _tags_by_cloud(tags)
    files: Files = []
    for t, d in pairs:
        for ws in _workspaces(t):
            urls: set[str] = set()
            prefixes: set[str] = set()
            for r in _outbound(d, ws.name):
                tag = _ip_destinations(r)
                if tag is not None:
                    prefixes.update(_resolve(tag, t.cloud, index, r))
                if r.kind in _HOST_KINDS and _is_web(r):
                    # a trailing slash stops `example.com` also matching `example.com.evil.net`
                    urls.add(r.destination if r.kind == "url_path" else _host(r) + "/")
            v4, v6 = split_families(prefixes)
            ips = [str(n) for n in (*v4, *v6)]
            if ips:
                ips[0] += f" # amlfw {t.name} {ws.name}: {stamp.text()}"
            base = _ident(pairs, t, ws).replace("_", "-")
            files.append((f"{base}.urls.txt", "".join(u + "\n" for u in sorted(urls))))
            files.append((f"{base}.ips.txt", "".join(i + "\n" for i in ips)))
    manifest = ["# amlfw paloalto-edl export", f"# {stamp.text()}", "# sha256  file"]
    manifest += [f"{hashlib.sha256(text.encode()).hexdigest()}  {name}" for name, text in files]
    files.append(("MANIFEST.txt", "\n".join(manifest) + "\n"))
    return files


# --------------------------------------------------------------------------------------------------
# Azure ML managed network

_STORAGE_SUB = re.compile(r"^[a-z0-9]+\.(blob|file|dfs|queue|table)\.core\.")


def _rule_name(kind: str, key: str) -> str:
    # ^[a-zA-Z0-9][a-zA-Z0-9_-]{2,32}$: stable across catalogue changes (a hash of the destination)
    return f"amlfw-{kind}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


def _yaml_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def render_managed_network(pairs: Pairs, stamp: Stamp) -> Files:
    """Per workspace: a YAML file for `az ml workspace update --file` and the same rules as
    `az ml workspace outbound-rule set` commands. FQDN rules take only ports 80 and 443 (Azure ML's limit); other
    ports of an FQDN become a comment, a wildcard's declared fallback tag becomes a service-tag rule, and the
    workspace's own storage account becomes private-endpoint rules (when the workspace's resource group is known)."""
    files: Files = []
    for t, d in pairs:
        for ws in _workspaces(t):
            fqdn: set[str] = set()
            tag_ports: dict[tuple[str, str], set[str]] = defaultdict(set)
            storage_subs: set[str] = set()
            notes: list[str] = []
            own = (ws.storage_account or "").lower()
            for r in _outbound(d, ws.name):
                host = _host(r)
                m = _STORAGE_SUB.match(host)
                if own and m and host.startswith(own + "."):
                    storage_subs.add(m.group(1))
                    continue
                if r.kind in _HOST_KINDS:
                    if _is_web(r):
                        fqdn.add(host)
                        if r.kind == "url_path":
                            notes.append(f"# {r.destination}: widened to the host {host} ({r.entry_id})")
                        continue
                    tag = _ip_destinations(r)
                    if tag is None:
                        notes.append(f"# {host} {r.protocol}:{r.port} ({r.entry_id}): FQDN rules take only ports "
                                     f"80 and 443; not exported")
                        continue
                    tag_ports[(tag, r.protocol)].add(r.port)
                    continue
                tag_ports[(r.destination, r.protocol)].add(r.port)
            sub = ws.subscription_id or t.subscription_id
            notes = sorted(set(notes))
            rules: list[tuple[str, str, list[str], list[str]]] = []  # name, type, yaml lines, cli args
            for h in sorted(fqdn):
                name = _rule_name("fqdn", h)
                rules.append((name, "fqdn", [f"    destination: {_yaml_str(h)}"], ["--destination", h]))
            for (tag, proto) in sorted(tag_ports):
                ports = ", ".join(sorted(tag_ports[(tag, proto)], key=lambda p: (len(p), p)))
                proto_v = "*" if proto == "Any" else proto
                name = _rule_name("tag", f"{tag}/{proto}")
                rules.append((name, "service_tag", [
                    "    destination:", f"      service_tag: {_yaml_str(tag)}", f"      protocol: {_yaml_str(proto_v)}",
                    f"      port_ranges: {_yaml_str(ports)}"],
                    ["--service-tag", tag, "--protocol", proto_v, "--port-ranges", ports]))
            for s in sorted(storage_subs):
                if ws.resource_group is None:
                    notes.append(f"# {own}.{s}: needs a private-endpoint rule (subresource {s}); set the "
                                 f"workspace's resource_group to export it")
                    continue
                rid = (f"/subscriptions/{sub}/resourceGroups/{ws.resource_group}/providers/Microsoft.Storage"
                       f"/storageAccounts/{own}")
                name = _rule_name("pe", f"{own}/{s}")
                rules.append((name, "private_endpoint", [
                    "    destination:", f"      service_resource_id: {_yaml_str(rid)}",
                    f"      subresource_target: {_yaml_str(s)}", "      spark_enabled: false"],
                    ["--service-resource-id", rid, "--subresource-target", s, "--spark-enabled", "false"]))
            base = _ident(pairs, t, ws).replace("_", "-")
            rg = ws.resource_group or "<resource-group>"
            head = [f"# amlfw managed-network export: target {t.name}, workspace {ws.name} ({t.cloud}, "
                    f"catalogue {d.catalogue_version})", f"# {stamp.text()}"]
            if ws.resource_group:
                head.append("# private endpoints assume the storage account is in the workspace's resource group")
            yml = [*head, f"# az ml workspace update --resource-group {rg} --file {base}.managed-network.yml",
                   *notes, f"name: {ws.name}", "managed_network:", "  isolation_mode: allow_only_approved_outbound",
                   "  outbound_rules:"]
            sh = ["#!/bin/sh", *head, "set -e", f"RG={_sh(rg)}", f"WS={_sh(ws.name)}", *notes]
            for name, kind, lines, args in rules:
                yml += [f"  - name: {name}", f"    type: {kind}", *lines]
                sh.append(f"az ml workspace outbound-rule set --resource-group \"$RG\" --workspace-name \"$WS\" "
                          f"--rule {name} --type {kind} {' '.join(_sh(a) for a in args)}")
            files.append((f"{base}.managed-network.yml", "\n".join(yml) + "\n"))
            files.append((f"{base}.outbound-rules.sh", "\n".join(sh) + "\n"))
    return files


def _sh(s: str) -> str:
    return s if re.fullmatch(r"[A-Za-z0-9_./:=@,-]+", s) else "'" + s.replace("'", "'\\''") + "'"


# --------------------------------------------------------------------------------------------------


def render_export(fmt: str, pairs: Pairs, stamp: Stamp, tags: Sequence[TagIndex]) -> Files:
    """One export as files [(name, text)]; squid and nftables are one file each."""
    if fmt in NEEDS_TAGS and not tags:
        raise ExportError(f"--service-tags: --format {fmt} resolves service tags to IP prefixes; give Microsoft's "
                          f"ServiceTags_*.json for each cloud of the configuration")
    renderers: dict[str, Callable[[], Files]] = {
        "squid": lambda: [("amlfw.squid.conf", render_squid(pairs, stamp))],
        "nftables": lambda: [("amlfw.nft", render_nftables(pairs, stamp, tags))],
        "paloalto-edl": lambda: render_paloalto(pairs, stamp, tags),
        "managed-network": lambda: render_managed_network(pairs, stamp),
    }
    return renderers[fmt]()


def concatenate(files: Files) -> str:
    """Several files on one stream, each under a `# ==> NAME <==` line (one file: its text alone)."""
    if len(files) == 1:
        return files[0][1]
    return "".join(f"# ==> {name} <==\n{text}" for name, text in files)
