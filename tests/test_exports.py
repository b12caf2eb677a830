"""Exports for other enforcement points: `amlfw render --format squid|nftables|paloalto-edl|managed-network`.

- Golden files per export (`tests/golden/exports/`, regenerated with `python tests/golden/exports/regenerate.py`).
- Parsed back by the real parsers: `squid -k parse` and `nft -c -f` (Debian's squid and nftables, installed by
  tests/debian_tools.py when absent; a test skips only when the binary cannot be had). PAN-OS EDLs and the Azure ML
  managed-network YAML have no parser here: strict grammar tests instead (`sh -n` for the commands).
- Tag resolution matches the vendored ServiceTags_*.json exactly.
- Bad input: one line, exit 1, nothing written.
"""

from __future__ import annotations

import difflib
import importlib.util
import ipaddress
import json
import re
import shutil
import subprocess
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from reconciler.cli import main
from reconciler.render.servicetags import parse_service_tags
from tests.conftest import RunAmlfw
from tests.debian_tools import ToolUnavailableError, ensure_tool
from tests.emulator.reference import ReferenceData

REPO = Path(__file__).resolve().parents[1]
GOLDEN = REPO / "tests" / "golden" / "exports"
EXAMPLES = REPO / "config" / "examples"


def _regenerate_module() -> ModuleType:
    spec = importlib.util.spec_from_file_location("exports_regenerate", GOLDEN / "regenerate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


REGEN = _regenerate_module()


def _tool(binary: str, package: str) -> str:
    try:
        return ensure_tool(binary, package)
    except ToolUnavailableError as exc:
        pytest.skip(str(exc))


@pytest.fixture
def epoch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOURCE_DATE_EPOCH", REGEN.EPOCH)


def _render(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(list(args)) == 0
    return capsys.readouterr().out


def _render_case(capsys: pytest.CaptureFixture[str], name: str) -> str:
    config, fmt, tags = REGEN.CASES[name]
    return _render(capsys, *REGEN.render_args(config, fmt, tags))


def _split(stream: str) -> dict[str, str]:
    """`# ==> NAME <==` sections of a multi-file export on stdout."""
    out: dict[str, str] = {}
    name = None
    for line in stream.splitlines(keepends=True):
        m = re.fullmatch(r"# ==> (\S+) <==\n", line)
        if m:
            name = m.group(1)
            out[name] = ""
        else:
            assert name is not None, line
            out[name] += line
    return out


# ------------------------------------------------------------------------------------------ golden files


@pytest.mark.parametrize("golden", sorted(REGEN.CASES))
def test_golden(golden: str, capsys: pytest.CaptureFixture[str], epoch: None) -> None:
    actual = _render_case(capsys, golden)
    path = GOLDEN / golden
    expected = path.read_text(encoding="utf-8") if path.is_file() else ""
    if actual != expected:
        diff = "".join(list(difflib.unified_diff(expected.splitlines(keepends=True), actual.splitlines(keepends=True),
                                                 f"tests/golden/exports/{golden}", "now", n=1))[:60])
        pytest.fail(f"{golden} differs; if intended run `python tests/golden/exports/regenerate.py`.\n{diff}",
                    pytrace=False)


def test_stamp_names_catalogue_config_digest_and_time(capsys: pytest.CaptureFixture[str], epoch: None) -> None:
    import hashlib

    digest = hashlib.sha256((EXAMPLES / "public.yaml").read_bytes()).hexdigest()
    stamp = f"catalogue azureml-2021.11; config sha256:{digest}; generated 2026-01-01T00:00:00Z"
    for name in ("public.squid.conf", "public.nft", "public.managed-network.txt"):
        assert stamp in _render_case(capsys, name), name
    files = _split(_render_case(capsys, "public.edl.txt"))
    assert stamp in files["MANIFEST.txt"]
    assert files["mlws-prod.ips.txt"].splitlines()[0].endswith(stamp)


def test_time_defaults_to_now_without_source_date_epoch(capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOURCE_DATE_EPOCH", raising=False)
    out = _render(capsys, "render", "--config", str(EXAMPLES / "public.yaml"), "--format", "squid")
    assert "generated 2026-01-01T00:00:00Z" not in out
    assert re.search(r"generated \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", out)


# ------------------------------------------------------------------------------------------ real parsers


def test_squid_parses_the_export(tmp_path: Path, capsys: pytest.CaptureFixture[str], epoch: None) -> None:
    squid = _tool("squid", "squid")
    for name in ("public.squid.conf", "fleet.squid.conf"):
        (tmp_path / "amlfw.conf").write_text(_render_case(capsys, name), encoding="utf-8")
        conf = tmp_path / "squid.conf"
        conf.write_text(f"http_port 127.0.0.1:3128\ninclude {tmp_path / 'amlfw.conf'}\nhttp_access deny all\n",
                        encoding="utf-8")
        result = subprocess.run([squid, "-k", "parse", "-f", str(conf)], capture_output=True, text=True,
                                timeout=60, check=False)
        log = result.stdout + result.stderr
        assert result.returncode == 0, log
        assert "Processing: include" in log  # it did read our file
        assert not re.search(r"WARNING|ERROR|FATAL", log), log  # overlapping dstdomain entries warn


def _nft_check(nft: str, path: Path) -> subprocess.CompletedProcess[str]:
    cmd = [nft, "-c", "-f", str(path)]
    unshare = shutil.which("unshare")
    if unshare:  # a private network namespace: `nft -c` never touches the machine's ruleset
        probe = subprocess.run([unshare, "-n", "true"], capture_output=True, check=False, timeout=30)
        if probe.returncode == 0:
            cmd = [unshare, "-n", *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False)


def test_nft_parses_the_export(tmp_path: Path, capsys: pytest.CaptureFixture[str], epoch: None) -> None:
    nft = _tool("nft", "nftables")
    for name in ("public.nft", "usgov.nft"):
        path = tmp_path / name
        path.write_text(_render_case(capsys, name), encoding="utf-8")
        result = _nft_check(nft, path)
        if result.returncode != 0 and "Operation not permitted" in result.stderr:
            pytest.skip("nft -c needs CAP_NET_ADMIN here")
        assert result.returncode == 0, result.stderr
    # and it does reject a broken file (the check is real)
    bad = tmp_path / "bad.nft"
    bad.write_text(path.read_text(encoding="utf-8").replace("flags interval", "flags intervall", 1), encoding="utf-8")
    assert _nft_check(nft, bad).returncode != 0


def test_nftables_without_ip_groups_carries_ipv6(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 epoch: None) -> None:
    text = (EXAMPLES / "public.yaml").read_text(encoding="utf-8").replace(
        "source_addresses: [10.20.0.0/24]",
        "source_ip_groups: [/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-hub/providers/"
        "Microsoft.Network/ipGroups/ipg-ml]")
    config = tmp_path / "ipg.yaml"
    config.write_text(text, encoding="utf-8")
    out = _render(capsys, "render", "--config", str(config), "--format", "nftables", "--service-tags",
                  str(REGEN.TAGS / "ServiceTags_Public.json"))
    assert "type ipv6_addr" in out
    assert "ip6 daddr @mlws_prod_tcp_443_v6 tcp dport 443 accept" in out
    nft = shutil.which("nft") or shutil.which("nft", path="/usr/sbin:/sbin")
    if nft:
        path = tmp_path / "ipg.nft"
        path.write_text(out, encoding="utf-8")
        result = _nft_check(nft, path)
        assert result.returncode == 0 or "Operation not permitted" in result.stderr, result.stderr


# ------------------------------------------------------------------------------------------ grammar tests

_HOST = r"(\*\.)?([a-z0-9]([a-z0-9-]*[a-z0-9])?\.)+[a-z]{2,}"


def test_paloalto_edl_grammar(capsys: pytest.CaptureFixture[str], epoch: None) -> None:
    """PAN-OS EDL: an IP list line is `IP[/mask]` or `IP-IP`, optionally a space and a comment; a URL list line is a
    host (optionally `*.`-prefixed) ending in `/`, or a host and a path; one type per list; no blank lines."""
    files = _split(_render_case(capsys, "public.edl.txt"))
    assert set(files) == {"mlws-prod.urls.txt", "mlws-prod.ips.txt", "MANIFEST.txt"}
    ip_lines = files["mlws-prod.ips.txt"].splitlines()
    assert len(ip_lines) > 100
    for line in ip_lines:
        entry, _, _comment = line.partition(" ")
        ipaddress.ip_network(entry)  # strict: host bits must be zero
    url_lines = files["mlws-prod.urls.txt"].splitlines()
    for line in url_lines:
        assert re.fullmatch(_HOST + r"/([A-Za-z0-9._~\-/]*(\*)?)?", line), line
        assert "://" not in line and " " not in line
    assert "pypi.org/" in url_lines and "*.blob.core.windows.net/" in url_lines
    manifest = files["MANIFEST.txt"]
    import hashlib

    for name in ("mlws-prod.urls.txt", "mlws-prod.ips.txt"):
        assert f"{hashlib.sha256(files[name].encode()).hexdigest()}  {name}" in manifest


def test_paloalto_writes_one_file_per_list(tmp_path: Path, run_amlfw: RunAmlfw) -> None:
    out = tmp_path / "edl"
    result = run_amlfw("render", "--config", str(EXAMPLES / "fleet.yaml"), "--format", "paloalto-edl",
                       "--service-tags", str(REGEN.TAGS / "ServiceTags_Public.json"),
                       "--service-tags", str(REGEN.TAGS / "ServiceTags_Gov.json"), "--output", str(out),
                       env={"SOURCE_DATE_EPOCH": REGEN.EPOCH})
    assert result.returncode == 0, result.stderr
    names = sorted(p.name for p in out.iterdir())
    assert "MANIFEST.txt" in names
    assert len([n for n in names if n.endswith(".urls.txt")]) == len([n for n in names if n.endswith(".ips.txt")]) >= 3


_RULE_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9_-]{2,32}$")


def _check_managed_network(doc: dict[str, Any]) -> list[dict[str, Any]]:
    assert set(doc) == {"name", "managed_network"}
    mn = doc["managed_network"]
    assert mn["isolation_mode"] == "allow_only_approved_outbound"
    rules: list[dict[str, Any]] = mn["outbound_rules"]
    assert len({r["name"] for r in rules}) == len(rules)
    for r in rules:
        assert _RULE_NAME.match(r["name"]), r
        if r["type"] == "fqdn":
            assert set(r) == {"name", "type", "destination"}
            assert re.fullmatch(_HOST, r["destination"]), r
        elif r["type"] == "service_tag":
            d = r["destination"]
            assert set(d) == {"service_tag", "protocol", "port_ranges"}
            assert d["protocol"] in ("TCP", "UDP", "ICMP", "*")
            assert re.fullmatch(r"(\*|\d+(-\d+)?)(, \d+(-\d+)?)*", d["port_ranges"]), d
        else:
            assert r["type"] == "private_endpoint"
            d = r["destination"]
            assert set(d) == {"service_resource_id", "subresource_target", "spark_enabled"}
            assert re.fullmatch(r"/subscriptions/[0-9a-f-]{36}/resourceGroups/[^/]+/providers/Microsoft\.Storage/"
                                r"storageAccounts/[a-z0-9]{3,24}", d["service_resource_id"])
    return rules


def test_managed_network_yaml_and_commands(tmp_path: Path, capsys: pytest.CaptureFixture[str], epoch: None) -> None:
    files = _split(_render_case(capsys, "workspace-rg.managed-network.txt"))
    assert set(files) == {"mlws-dev.managed-network.yml", "mlws-dev.outbound-rules.sh"}
    rules = _check_managed_network(yaml.safe_load(files["mlws-dev.managed-network.yml"]))
    kinds = {r["type"] for r in rules}
    assert kinds == {"fqdn", "service_tag", "private_endpoint"}
    pe = [r["destination"] for r in rules if r["type"] == "private_endpoint"]
    assert {d["subresource_target"] for d in pe} >= {"blob"}
    assert all(d["service_resource_id"].endswith("/resourceGroups/rg-ml/providers/Microsoft.Storage/storageAccounts/"
                                                 "mlwsdevsa") for d in pe)
    # the workspace's own storage is a private endpoint, never an FQDN rule
    assert not [r for r in rules if r["type"] == "fqdn" and "mlwsdevsa" in r["destination"]]
    sh = files["mlws-dev.outbound-rules.sh"]
    script = tmp_path / "rules.sh"
    script.write_text(sh, encoding="utf-8")
    assert subprocess.run(["sh", "-n", str(script)], capture_output=True, check=False).returncode == 0
    cmds = [line for line in sh.splitlines() if line.startswith("az ml workspace outbound-rule set ")]
    assert len(cmds) == len(rules)
    for rule, cmd in zip(rules, cmds, strict=True):
        assert f"--rule {rule['name']} --type {rule['type']} " in cmd


def test_managed_network_public_example_is_valid(capsys: pytest.CaptureFixture[str], epoch: None) -> None:
    files = _split(_render_case(capsys, "public.managed-network.txt"))
    yml = files["mlws-prod.managed-network.yml"]
    rules = _check_managed_network(yaml.safe_load(yml))
    # FQDN rules take only ports 80/443: NTP on UDP 123 is named as not exported, *.instances.azureml.ms on
    # 8787/18881 becomes its declared fallback service tag
    assert "# ntp.ubuntu.com UDP:123" in yml
    aml = [r["destination"]["port_ranges"] for r in rules
           if r["type"] == "service_tag" and r["destination"]["service_tag"] == "AzureMachineLearning"
           and r["destination"]["protocol"] == "TCP"]
    assert aml == ["443, 8787, 18881"]
    assert "set the workspace's resource_group" in yml  # no resource group: PE rules named, not invented


def test_squid_wildcards_become_dot_domains(capsys: pytest.CaptureFixture[str], epoch: None) -> None:
    out = _render_case(capsys, "public.squid.conf")
    acl443 = next(line for line in out.splitlines() if line.startswith("acl amlfw_mlws_prod_443 dstdomain "))
    values = acl443.split()[3:]
    assert ".blob.core.windows.net" in values and "*.blob.core.windows.net" not in out
    assert ".pytorch.org" in values and "pytorch.org" not in values  # covered by .pytorch.org
    assert "http_access allow amlfw_mlws_prod_src amlfw_mlws_prod_443_connect amlfw_mlws_prod_443_port " \
           "amlfw_mlws_prod_443" in out
    assert "acl amlfw_mlws_prod_src src 10.20.0.0/24" in out
    assert "#   00000000-0000-0000-0000-000000000001/rg-hub/fwpol-hub/azureml-egress mlws-prod: ntp.ubuntu.com " \
           "UDP:123" in out


# ------------------------------------------------------------------------------------------ tag resolution


def test_tag_index_is_the_reference_json_exactly(reference: ReferenceData) -> None:
    for name in ("ServiceTags_Public.json", "ServiceTags_Gov.json"):
        doc = json.loads(reference.path("service-tags", name).read_text(encoding="utf-8"))
        index = parse_service_tags(doc)
        assert index.change_number == doc["changeNumber"]
        assert len(index.prefixes) == len(doc["values"])
        for v in doc["values"]:
            assert index.lookup(v["name"]) == tuple(v["properties"]["addressPrefixes"])
            assert index.lookup(v["name"].upper()) is not None


def _nft_sets(text: str) -> dict[str, set[str]]:
    sets: dict[str, set[str]] = {}
    for m in re.finditer(r"set (\S+) \{\n\t\ttype \S+\n\t\tflags interval\n\t\telements = \{ ([^}]*) \}", text):
        sets[m.group(1)] = set(m.group(2).split(", "))
    return sets


def test_nft_sets_cover_exactly_the_tags_prefixes(reference: ReferenceData, capsys: pytest.CaptureFixture[str],
                                                  epoch: None) -> None:
    doc = json.loads(reference.path("service-tags", "ServiceTags_Public.json").read_text(encoding="utf-8"))
    by_name = {v["name"]: v["properties"]["addressPrefixes"] for v in doc["values"]}
    out = _render_case(capsys, "public.nft")
    sets = _nft_sets(out)
    # TCP 443 of mlws-prod: exactly the union of the listed tags (v4), merged, nothing more, nothing less
    comment = re.search(r"\t# ([^\n]*): \d+ prefixes\n\tset mlws_prod_tcp_443_v4 ", out)
    assert comment is not None
    tags = comment.group(1).split(", ")
    assert "Storage.WestUS2" in tags and "AzureKeyVault.WestUS2" in tags
    expected = [ipaddress.ip_network(p) for t in tags for p in by_name[t] if ":" not in p]
    got = [ipaddress.ip_network(p) for p in sets["mlws_prod_tcp_443_v4"]]
    assert sorted(ipaddress.collapse_addresses(expected)) == sorted(got)
    # every listed address of every tag is inside the set, and every set prefix is inside some tag prefix
    for p in expected:
        assert any(p.subnet_of(g) for g in got if g.version == p.version)  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------ bad input


@pytest.mark.parametrize("fmt", ["nftables", "paloalto-edl"])
def test_ip_exports_require_service_tags(tmp_path: Path, run_amlfw: RunAmlfw, fmt: str) -> None:
    out = tmp_path / "out"
    result = run_amlfw("render", "--config", str(EXAMPLES / "public.yaml"), "--format", fmt, "--output", str(out))
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [f"error: --service-tags: --format {fmt} resolves service tags to IP prefixes; give "
                      f"Microsoft's ServiceTags_*.json for each cloud of the configuration"]
    assert "Traceback" not in result.stderr
    assert not out.exists()


def test_wrong_cloud_file_names_tag_entry_and_fix(tmp_path: Path, run_amlfw: RunAmlfw) -> None:
    result = run_amlfw("render", "--config", str(EXAMPLES / "public.yaml"), "--format", "nftables",
                       "--service-tags", str(REGEN.TAGS / "ServiceTags_Gov.json"))
    assert result.returncode == 1
    assert result.stdout == ""
    assert "error: --service-tags: no service-tag file for cloud AzureCloud" in result.stderr


def test_unknown_tag_names_tag_entry_and_fix(tmp_path: Path, run_amlfw: RunAmlfw, reference: ReferenceData) -> None:
    doc = json.loads(reference.path("service-tags", "ServiceTags_Public.json").read_text(encoding="utf-8"))
    doc["values"] = [v for v in doc["values"] if v["name"] != "Storage.WestUS2"]
    tags = tmp_path / "ServiceTags_Public.json"
    tags.write_text(json.dumps(doc), encoding="utf-8")
    result = run_amlfw("render", "--config", str(EXAMPLES / "public.yaml"), "--format", "paloalto-edl",
                       "--service-tags", str(tags), "--output", str(tmp_path / "edl"))
    assert result.returncode == 1
    assert ("error: --service-tags: service tag 'Storage.WestUS2' (entry tag.storage, workspace mlws-prod) is not in "
            "the AzureCloud file (changeNumber 376); refresh the file or fix the catalogue entry") in result.stderr
    assert not (tmp_path / "edl").exists()


@pytest.mark.parametrize(("content", "reason"), [
    ("{not json", "not JSON"),
    ('{"cloud": "Mars", "values": []}', "cloud: unknown cloud 'Mars'"),
    ('{"cloud": "Public", "values": [{"name": "X", "properties": {"addressPrefixes": ["1.2.3.4/40"]}}]}',
     "values[0] (X): bad address prefix '1.2.3.4/40'"),
])
def test_bad_service_tag_file_is_one_line(tmp_path: Path, run_amlfw: RunAmlfw, content: str, reason: str) -> None:
    tags = tmp_path / "tags.json"
    tags.write_text(content, encoding="utf-8")
    result = run_amlfw("render", "--config", str(EXAMPLES / "public.yaml"), "--format", "nftables",
                       "--service-tags", str(tags))
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {tags}") and reason in lines[0], lines
    assert "Traceback" not in result.stderr


def test_service_tags_refused_where_unused(run_amlfw: RunAmlfw) -> None:
    result = run_amlfw("render", "--config", str(EXAMPLES / "public.yaml"), "--format", "csv",
                       "--service-tags", str(REGEN.TAGS / "ServiceTags_Public.json"))
    assert result.returncode == 1
    assert "error: --service-tags: not used by --format csv" in result.stderr
