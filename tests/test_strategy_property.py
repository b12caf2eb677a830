"""Property (issue 13): `fqdns` and `service_tags` never contain what their strategy excludes, and `both`
covers every endpoint of the selection. Checked against the compiled rules, for any features, cloud and
catalogue version."""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from reconciler.catalogue import CatalogueStore
from reconciler.compile import compile_target, select_entries
from reconciler.config import load_config
from reconciler.model import CLOUDS, DesiredTarget
from tests.test_compile import target_doc
from tests.test_feature_alone import NAMES, REGION, VERSIONS, allowed_by, lets_through, resolve

STORE = CatalogueStore(Path(__file__).resolve().parents[1] / "config" / "catalogue")


def compile_for(version: str, cloud: str, features: list[str], allow_by: str) -> DesiredTarget:
    doc = target_doc(cloud=cloud, region=REGION[cloud], features=features, storage=None)
    doc["catalogue"] = version
    doc["allow_by"] = allow_by
    doc["workspaces"][0].update(NAMES)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "amlfw.yaml"
        path.write_text(yaml.safe_dump(doc), encoding="utf-8")
        (target,) = load_config(path, STORE.get).targets
    return compile_target(target, STORE.get(version))


@st.composite
def selections(draw: st.DrawFn) -> tuple[str, str, list[str]]:
    version = draw(st.sampled_from(VERSIONS))
    cloud = draw(st.sampled_from(CLOUDS))
    names = sorted(STORE.get(version).feature_names - {"baseline"})
    features = draw(st.lists(st.sampled_from(names), min_size=1, max_size=6, unique=True))
    return version, cloud, features


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(selections())
def test_each_strategy_keeps_to_its_side(sel: tuple[str, str, list[str]]) -> None:
    version, cloud, features = sel
    cat = STORE.get(version)
    by_id = {e.id: e for e in cat.entries if cloud in e.clouds}
    tags = compile_for(version, cloud, features, "service_tags")
    fqdns = compile_for(version, cloud, features, "fqdns")
    both = compile_for(version, cloud, features, "both")

    # service_tags: no host rule that a compiled tag rule already allows on all of its ports
    allowed = allowed_by(tags)
    for o in tags.origins:
        hosts = [by_id[i] for i in o.entry_ids if i in by_id and by_id[i].strategy == "fqdns" and by_id[i].covered_by]
        if hosts and len(hosts) == len(o.entry_ids):
            assert any(not any(lets_through(allowed, resolve(t, cat, cloud, tag=True), s) for t in h.covered_by)
                       for h in hosts for s in h.ports), f"service_tags keeps a covered host: {o.rule}"

    # fqdns: no tag rule made only of tag-strategy entries whose every port a compiled host rule carries
    allowed = allowed_by(fqdns)
    selected = select_entries(cat, cloud, cat.with_implied(set(features)))
    for o in fqdns.origins:
        tag_entries = [by_id[i] for i in o.entry_ids if i in by_id and by_id[i].strategy == "service_tags"]
        if not tag_entries or len(tag_entries) != len(o.entry_ids):
            continue
        for e in tag_entries:
            replacing = [h for h in selected if e.value in h.covered_by]
            assert any(not any(lets_through(allowed, resolve(h.value, cat, cloud, tag=False), s)
                               for h in replacing if any(hs.ports == s.ports for hs in h.ports))
                       for s in e.ports), f"fqdns keeps a replaced tag: {o.rule}"
        assert not any(by_id[i].strategy == "fqdns" for i in o.entry_ids if i in by_id)

    # both: every endpoint of the selection is compiled (a rule, a route, an allow-list row or a warning)
    seen = ({i for o in both.origins for i in o.entry_ids} | {r.entry_id for r in both.allow_list}
            | {w.entry_id for w in both.warnings if w.entry_id})
    assert {e.id for e in selected} <= seen
    # and the two strategies together never reach beyond both
    dests = {r.name for c in both.group.rule_collections for r in c.rules}
    for d in (tags, fqdns):
        assert {r.name for c in d.group.rule_collections for r in c.rules} <= dests
