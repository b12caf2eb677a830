"""Breadth marks, guardrails and extra_rules (issue 13, items 4 and 5): the real CLI as a subprocess where a user
would run it, the compiler directly for the details."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.catalogue import CatalogueStore
from reconciler.compile import compile_target
from reconciler.config import load_config
from reconciler.errors import ConfigError
from reconciler.model import ApplicationRule, DesiredTarget, NetworkRule
from tests.conftest import RunAmlfw
from tests.test_compile import target_doc

OLD = "azureml-2021.11"


def doc_with(extra: list[dict[str, Any]] | None = None, **ws: Any) -> dict[str, Any]:
    doc = target_doc(features=["compute"])
    doc["catalogue"] = OLD
    if extra is not None:
        doc["workspaces"][0]["extra_rules"] = extra
    doc["workspaces"][0].update(ws)
    return doc


def compile_doc(tmp_path: Path, store: CatalogueStore, doc: dict[str, Any]) -> DesiredTarget:
    path = tmp_path / "amlfw.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    (target,) = load_config(path, store.get).targets
    return compile_target(target, store.get(OLD))


BROAD = [
    ("star-address", {"address": "*", "ports": [443]}, "any destination (*)"),
    ("all-ipv4", {"address": "0.0.0.0/0", "ports": [443]}, "every IPv4 address (0.0.0.0/0)"),
    ("internet", {"service_tag": "Internet", "ports": [443]}, "the Internet service tag"),
    ("azurecloud", {"service_tag": "AzureCloud", "ports": [443]}, "the global AzureCloud tag"),
    ("all-ports", {"fqdn": "github.com", "ports": ["*"]}, "all ports (TCP:*)"),
    ("all-ports-range", {"fqdn": "github.com", "ports": ["1-65535"]}, "all ports (TCP:1-65535)"),
    ("bare-star-fqdn", {"fqdn": "*", "ports": [443]}, "any destination (*)"),
]


@pytest.mark.parametrize(("rule", "reason"), [pytest.param(r, why, id=name) for name, r, why in BROAD])
def test_the_cli_refuses_each_broad_form(tmp_path: Path, run_amlfw: RunAmlfw, rule: dict[str, Any],
                                         reason: str) -> None:
    config = tmp_path / "amlfw.yaml"
    config.write_text(yaml.safe_dump(doc_with([{"fqdn": "github.com", "ports": [443]}, rule])), encoding="utf-8")
    out = tmp_path / "out.json"
    r = run_amlfw("render", "--config", str(config), "--format", "arm", "--output", str(out))
    assert r.returncode == 1, r.stderr
    assert "Traceback" not in r.stderr
    (line,) = [x for x in r.stderr.splitlines() if x.startswith("error: ")]
    assert line.startswith(f"error: {config}:workspaces[0].extra_rules[1]: ")
    assert reason in line and "allow_broad: true" in line
    assert not out.exists(), "nothing written"


def test_allow_broad_accepts_with_a_warning(tmp_path: Path, run_amlfw: RunAmlfw) -> None:
    config = tmp_path / "amlfw.yaml"
    config.write_text(yaml.safe_dump(doc_with([{"service_tag": "AzureCloud", "ports": [443]}], allow_broad=True)),
                      encoding="utf-8")
    r = run_amlfw("render", "--config", str(config), "--format", "table")
    assert r.returncode == 0, r.stderr
    assert "broad-rule [user]" in r.stderr
    assert "tag-AzureCloud-tcp" in r.stdout
    assert "allows: " in r.stderr


def test_a_broad_catalogue_entry_is_refused_too(tmp_path: Path, run_amlfw: RunAmlfw,
                                                catalogue_store: CatalogueStore) -> None:
    root = tmp_path / "cat"
    shutil.copytree(catalogue_store.root, root)
    path = root / OLD / "service-tags.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace('ports: ["TCP:80", "TCP:443"]', 'ports: ["TCP:*"]', 1), encoding="utf-8")
    config = tmp_path / "amlfw.yaml"
    config.write_text(yaml.safe_dump(doc_with()), encoding="utf-8")
    r = run_amlfw("--catalogue-dir", str(root), "render", "--config", str(config), "--format", "arm")
    assert r.returncode == 1
    (line,) = [x for x in r.stderr.splitlines() if x.startswith("error: ")]
    assert line.startswith(f"error: {config}:workspaces[0].features: catalogue entry tag.azure-active-directory")
    assert "all ports (TCP:*)" in line
    assert r.stdout == ""


def test_render_prints_a_breadth_summary_and_marks_each_rule(tmp_path: Path, run_amlfw: RunAmlfw) -> None:
    config = tmp_path / "amlfw.yaml"
    config.write_text(yaml.safe_dump(doc_with([{"fqdn": "github.com", "ports": [443]}])), encoding="utf-8")
    r = run_amlfw("render", "--config", str(config), "--format", "table")
    assert r.returncode == 0, r.stderr
    (summary,) = [x for x in r.stderr.splitlines() if x.startswith("allows: ")]
    assert "regional tag" in summary and "(" in summary and "1 from extra_rules)" in summary
    lines = {line.split()[0]: line for line in r.stdout.splitlines() if line.startswith("    ") and line.split()}
    assert "regional tag" in lines["tag-Storage.WestUS2-tcp"]
    assert "global tag" in lines["tag-AzureMachineLearning-tcp"]
    assert "per-resource host" in lines["fqdn-mlwssa.file.core.windows.net-tcp"]
    assert "exact host" in lines["app-github.com"] and lines["app-github.com"].endswith("user")


# ------------------------------------------------------------------------------------------------ extra_rules


def test_extra_rules_compile_like_catalogue_entries(tmp_path: Path, catalogue_store: CatalogueStore) -> None:
    d = compile_doc(tmp_path, catalogue_store, doc_with([
        {"fqdn": "github.com", "ports": [443]},
        {"service_tag": "AzureDevOps", "ports": [443]},
        {"url": "raw.githubusercontent.com/myorg/setup/main/install.sh", "ports": [443]},
        {"fqdn": "git.example.com", "ports": [22]},
        {"fqdn": "*.pkg.example.com", "ports": [80, 443]},
    ]))
    rules = {r.name: r for c in d.group.rule_collections for r in c.rules}
    origins = {o.rule: o for o in d.origins}
    app = rules["app-github.com"]
    assert isinstance(app, ApplicationRule) and {str(p) for p in app.protocols} == {"Https:443"}
    tag = rules["tag-AzureDevOps-tcp"]
    assert isinstance(tag, NetworkRule) and tag.destination_addresses == {"AzureDevOps"}
    ssh = rules["fqdn-git.example.com-tcp"]
    assert isinstance(ssh, NetworkRule) and ssh.destination_ports == {"22"}
    assert d.requirements.dns_proxy
    assert "app-raw.githubusercontent.com" in rules  # Standard: widened, with a warning
    assert ("url-widened", "user") in {(w.code, w.entry_id) for w in d.warnings}
    for name in ("app-github.com", "tag-AzureDevOps-tcp", "fqdn-git.example.com-tcp", "app-star.pkg.example.com"):
        assert origins[name].entry_ids == ("user",), name
    assert origins["app-star.pkg.example.com"].breadth == "wildcard"
    assert origins["app-raw.githubusercontent.com"].breadth == "widened URL"
    assert any(r.entry_id == "user" and r.destination == "github.com" for r in d.allow_list)


@pytest.mark.parametrize(("rule", "key", "reason"), [
    ({"fqdn": "a.com", "service_tag": "AzureDevOps", "ports": [443]}, "extra_rules[0]", "exactly one of"),
    ({"fqdn": "a.com"}, "extra_rules[0].ports", "non-empty list"),
    ({"fqdn": "a.com", "ports": [70000]}, "extra_rules[0].ports[0]", "outside 1-65535"),
    ({"fqdn": "*.a.com", "ports": [22]}, "extra_rules[0].ports[0]", "only on ports 80 and 443"),
    ({"fqdn": "a .com", "ports": [443]}, "extra_rules[0].fqdn", "whitespace"),
    ({"address": "10.0.0.1/8", "ports": [443]}, "extra_rules[0].address", "malformed"),
    ({"fqdn": "a.com", "ports": [443], "protocol": "ICMP"}, "extra_rules[0].protocol", "unknown protocol"),
    ({"fqdn": "a.com", "ports": [443], "comment": "x"}, "extra_rules[0].comment", "unknown key"),
])
def test_a_bad_extra_rule_is_one_clear_error(tmp_path: Path, catalogue_store: CatalogueStore,
                                             rule: dict[str, Any], key: str, reason: str) -> None:
    with pytest.raises(ConfigError) as exc:
        compile_doc(tmp_path, catalogue_store, doc_with([rule]))
    assert f":workspaces[0].{key}: " in str(exc.value) and reason in str(exc.value)
