"""`allow_by:` strategies (issue 13): service_tags (default), fqdns, both; decided from the catalogue's data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from reconciler.catalogue import CatalogueStore
from reconciler.compile import compile_target, strategy_entries
from reconciler.config import load_config
from reconciler.errors import CatalogueError, ConfigError
from reconciler.model import ApplicationRule, DesiredTarget, NetworkRule
from tests.test_compile import target_doc

OLD, NEW = "azureml-2021.11", "azureml-2026.03"


def compile_with(tmp_path: Path, store: CatalogueStore, version: str, **kw: Any) -> DesiredTarget:
    allow_by = kw.pop("allow_by", None)
    ws_extra = kw.pop("ws", {})
    doc = target_doc(**kw)
    doc["catalogue"] = version
    if allow_by:
        doc["allow_by"] = allow_by
    doc["workspaces"][0].update(ws_extra)
    path = tmp_path / "amlfw.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    (target,) = load_config(path, store.get).targets
    return compile_target(target, store.get(version))


def destinations(d: DesiredTarget) -> dict[str, set[str]]:
    """destination -> ports/protocols, over every rule."""
    out: dict[str, set[str]] = {}
    for c in d.group.rule_collections:
        for r in c.rules:
            if isinstance(r, NetworkRule):
                for dest in r.destination_addresses | r.destination_fqdns:
                    out.setdefault(dest, set()).update(f"{p}:{port}" for p in r.ip_protocols
                                                       for port in r.destination_ports)
            elif isinstance(r, ApplicationRule):
                for dest in r.target_fqdns | r.target_urls:
                    out.setdefault(dest, set()).update(str(p) for p in r.protocols)
    return out


def codes(d: DesiredTarget) -> set[str]:
    return {w.code for w in d.warnings}


@pytest.mark.parametrize("version", [OLD, NEW])
def test_service_tags_is_the_default_and_drops_hosts_a_selected_tag_covers(
        tmp_path: Path, catalogue_store: CatalogueStore, version: str) -> None:
    d = compile_with(tmp_path, catalogue_store, version, features=["compute", "notebooks", "hbi_workspace"])
    dest = destinations(d)
    assert "Storage.WestUS2" in dest and "AzureKeyVault.WestUS2" in dest
    for host in ("*.blob.core.windows.net", "*.table.core.windows.net", "*.queue.core.windows.net",
                 "*.vault.azure.net", "mlwssa.blob.core.windows.net", "*.azureml.ms", "login.microsoftonline.com"):
        assert host not in dest, host
    # a port no selected tag covers stays: SMB 445 to the workspace's file share (Storage.<region> is 443 only)
    assert dest["mlwssa.file.core.windows.net"] == {"TCP:445"}
    # a host no tag covers stays
    assert "*.notebooks.azure.net" in dest
    assert "strategy-both" not in codes(d)


def test_a_tag_on_the_host_port_covers_it(tmp_path: Path, catalogue_store: CatalogueStore) -> None:
    """2026.03 storage_firewall adds Storage.<region> on 445: the file share's FQDN rule is then covered."""
    d = compile_with(tmp_path, catalogue_store, NEW, features=["compute", "storage_firewall"])
    assert "mlwssa.file.core.windows.net" not in destinations(d)
    assert destinations(d)["Storage.WestUS2"] == {"TCP:443", "TCP:445"}


@pytest.mark.parametrize("version", [OLD, NEW])
def test_fqdns_has_no_tag_where_the_catalogue_has_hosts(tmp_path: Path, catalogue_store: CatalogueStore,
                                                        version: str) -> None:
    d = compile_with(tmp_path, catalogue_store, version, allow_by="fqdns",
                     features=["compute", "notebooks", "hbi_workspace"])
    dest = destinations(d)
    for tag in ("Storage.WestUS2", "AzureKeyVault.WestUS2", "AzureActiveDirectory", "AzureResourceManager"):
        assert tag not in dest, tag
    for host in ("*.blob.core.windows.net", "mlwssa.blob.core.windows.net", "login.microsoftonline.com",
                 "management.azure.com"):
        assert host in dest, host
    assert dest["mlwssa.file.core.windows.net"] >= {"TCP:445"}
    assert "dns-proxy-required" in codes(d)
    assert d.requirements.dns_proxy


@pytest.mark.parametrize("version", [OLD, NEW])
def test_both_is_the_union_and_warns(tmp_path: Path, catalogue_store: CatalogueStore, version: str) -> None:
    both = compile_with(tmp_path, catalogue_store, version, allow_by="both", features=["compute"])
    tags = compile_with(tmp_path, catalogue_store, version, features=["compute"])
    fqdns = compile_with(tmp_path, catalogue_store, version, allow_by="fqdns", features=["compute"])
    assert set(destinations(both)) == set(destinations(tags)) | set(destinations(fqdns))
    assert set(destinations(both)) > set(destinations(tags))
    assert set(destinations(both)) > set(destinations(fqdns))
    assert "strategy-both" in codes(both)


def test_a_workspace_overrides_the_target(tmp_path: Path, catalogue_store: CatalogueStore) -> None:
    d = compile_with(tmp_path, catalogue_store, OLD, allow_by="fqdns", features=["compute"],
                     ws={"allow_by": "service_tags"})
    assert "Storage.WestUS2" in destinations(d)
    assert "*.blob.core.windows.net" not in destinations(d)


def test_an_unknown_strategy_is_a_config_error(tmp_path: Path, catalogue_store: CatalogueStore) -> None:
    with pytest.raises(ConfigError, match=r"workspaces\[0\]\.allow_by: unknown strategy 'tags'"):
        compile_with(tmp_path, catalogue_store, OLD, features=["compute"], ws={"allow_by": "tags"})
    with pytest.raises(ConfigError, match=r"allow_by: unknown strategy 'any'"):
        compile_with(tmp_path, catalogue_store, OLD, features=["compute"], allow_by="any")


def test_the_strategy_comes_from_the_data(catalogue_store: CatalogueStore) -> None:
    """Each entry names its strategy; covered_by names tags, and the selection reads only that."""
    for version in (OLD, NEW):
        cat = catalogue_store.get(version)
        tags = {e.value for e in cat.entries if e.kind == "service_tag"}
        for e in cat.entries:
            assert e.strategy in ("service_tags", "fqdns", "common")
            assert set(e.covered_by) <= tags, (e.id, e.covered_by)
            if e.strategy == "service_tags":
                assert e.kind == "service_tag"
        # a tag in service_tags strategy has hosts that replace it in fqdns (else it would be `common`)
        covering = {t for e in cat.entries for t in e.covered_by}
        for e in cat.entries:
            if e.strategy == "service_tags":
                assert e.value in covering, f"{version} {e.id}: no host is covered by {e.value}"
        for cloud in ("AzureCloud", "AzureUSGovernment", "AzureChinaCloud"):
            feats = cat.feature_names
            assert {e.id for e in strategy_entries(cat, cloud, feats, "both")} == {
                e.id for e in cat.entries if cloud in e.clouds}


def test_covered_by_is_only_for_hosts(tmp_path: Path, catalogue_store: CatalogueStore) -> None:
    import shutil

    root = tmp_path / "cat"
    shutil.copytree(catalogue_store.root, root)
    path = root / OLD / "service-tags.yaml"
    text = path.read_text(encoding="utf-8")
    path.write_text(text.replace("    strategy: service_tags\n", "    strategy: service_tags\n"
                                 "    covered_by: [AzureCloud]\n", 1), encoding="utf-8")
    with pytest.raises(CatalogueError, match="covered_by: only hosts of strategy fqdns"):
        CatalogueStore(root).get(OLD)


# ------------------------------------------------------------------------------------- per-resource hosts

PER_RESOURCE = {"key_vault": "mlws-kv-1", "container_registry": "mlwsacr01",
                "workspace_id": "3f2c8a4e-5b1d-4c7e-9a60-2d8e1f0b7c35"}


@pytest.mark.parametrize("allow_by", ["fqdns", "both"])
def test_per_resource_hosts_replace_the_wildcards(tmp_path: Path, catalogue_store: CatalogueStore,
                                                  allow_by: str) -> None:
    d = compile_with(tmp_path, catalogue_store, NEW, allow_by=allow_by, ws=PER_RESOURCE,
                     features=["hbi_workspace", "custom_images", "arc_inference"])
    dest = destinations(d)
    for host in ("mlws-kv-1.vault.azure.net", "mlwsacr01.azurecr.io", "mlwsacr01.westus2.data.azurecr.io",
                 "3f2c8a4e-5b1d-4c7e-9a60-2d8e1f0b7c35.workspace.westus2.api.azureml.ms"):
        assert host in dest, host
    for wildcard in ("*.vault.azure.net", "*.azurecr.io", "*.workspace.westus2.api.azureml.ms"):
        assert wildcard not in dest, wildcard
    assert "wildcard-fallback" not in codes(d)


def test_a_missing_resource_falls_back_to_the_documented_wildcard(tmp_path: Path,
                                                                  catalogue_store: CatalogueStore) -> None:
    d = compile_with(tmp_path, catalogue_store, NEW, allow_by="fqdns",
                     features=["hbi_workspace", "custom_images", "arc_inference"])
    dest = destinations(d)
    for wildcard in ("*.vault.azure.net", "*.azurecr.io", "*.workspace.westus2.api.azureml.ms"):
        assert wildcard in dest, wildcard
    fallbacks = {w.entry_id: w.message for w in d.warnings if w.code == "wildcard-fallback"}
    assert {"hosts.compute.star-vault-azure-net", "images.star-azurecr-io",
            "arc.training-and-inference.star-workspace-region-api-azureml-ms"} <= set(fallbacks)
    assert "no key_vault" in fallbacks["hosts.compute.star-vault-azure-net"]


def test_a_tag_covered_resource_needs_no_name(tmp_path: Path, catalogue_store: CatalogueStore) -> None:
    """service_tags: AzureKeyVault.<region> covers the vault, so no host and no fallback warning."""
    d = compile_with(tmp_path, catalogue_store, NEW, features=["hbi_workspace"])
    assert "AzureKeyVault.WestUS2" in destinations(d)
    assert not [h for h in destinations(d) if "vault" in h.lower() and h != "AzureKeyVault.WestUS2"]
    assert "wildcard-fallback" not in codes(d)


@pytest.mark.parametrize(("key", "value"), [("key_vault", "-bad"), ("container_registry", "acr-with-dash"),
                                            ("workspace_id", "not-a-guid")])
def test_a_malformed_resource_name_is_a_config_error(tmp_path: Path, catalogue_store: CatalogueStore, key: str,
                                                     value: str) -> None:
    with pytest.raises(ConfigError, match=rf"workspaces\[0\]\.{key}: invalid"):
        compile_with(tmp_path, catalogue_store, NEW, features=["compute"], ws={key: value})


def test_a_per_resource_entry_must_declare_its_wildcard(tmp_path: Path, catalogue_store: CatalogueStore) -> None:
    import shutil

    root = tmp_path / "cat"
    shutil.copytree(catalogue_store.root, root)
    path = root / NEW / "hosts-compute.yaml"
    text = path.read_text(encoding="utf-8")
    assert '    if_unknown: "*.vault.azure.net"' in text
    path.write_text(text.replace('    if_unknown: "*.vault.azure.net"', "", 1), encoding="utf-8")
    with pytest.raises(CatalogueError, match=r"if_unknown: required with \{keyvault\}"):
        CatalogueStore(root).get(NEW)


def test_a_covered_host_is_listed_with_its_tag(tmp_path: Path, catalogue_store: CatalogueStore) -> None:
    """The allow-list export (and `amlfw deps`) still names the host, and says which tag lets it through."""
    from reconciler.deps import Dependency, check_dependencies

    d = compile_with(tmp_path, catalogue_store, OLD, features=["compute"])
    rows = [r for r in d.allow_list if r.destination == "*.blob.core.windows.net"]
    assert rows and all(r.enforced_as == "service tag Storage.WestUS2 (covers this host)" for r in rows)
    (check,) = check_dependencies(d, "mlws", [Dependency("Azure Storage", "mlwssa.blob.core.windows.net", 443)])
    assert check.covered
