"""Reports of a pass (`reconciler.render.report`): text, JSON and Markdown from hand-built outcomes."""

from __future__ import annotations

import json
import re

import pytest

from reconciler.model import CompileWarning
from reconciler.plan import (
    FORMAT_VERSION,
    CollectionChange,
    FieldChange,
    ForeignGroup,
    Outcome,
    PreflightIssue,
    RouteChange,
    RuleChange,
    TargetPlan,
)
from reconciler.render.report import outcome_to_dict, render_json, render_markdown, render_text

POLICY = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-hub/providers/Microsoft.Network/" \
         "firewallPolicies/fwpol-hub"
ANSI = re.compile(r"\033\[[0-9;]*m")


def drift_plan() -> TargetPlan:
    return TargetPlan(
        target="prod",
        policy_id=POLICY,
        group_name="azureml-egress",
        group_action="update",
        group_fields=(FieldChange("priority", 310, 300),),
        collections=(
            CollectionChange("add", "ws-new-net", rules=(RuleChange("add", "ws-new-net", "tag-Storage.WestUS2-tcp",
                                                                    "NetworkRule"),)),
            CollectionChange("remove", "ws-old-app", rules=(RuleChange("remove", "ws-old-app", "app-example.com",
                                                                       "ApplicationRule"),)),
            CollectionChange("change", "ws-a-net", fields=(FieldChange("priority", 1005, 1000),), rules=(
                RuleChange("change", "ws-a-net", "tag-AzureCloud.westus2-tcp", "NetworkRule",
                           (FieldChange("destinationPorts", ("8443",), ("443", "9000")),)),
                RuleChange("add", "ws-a-net", "fqdn-sa.file.core.windows.net-tcp", "NetworkRule"),
            )),
        ),
        routes=(RouteChange("add", "amlfw-AzureMachineLearning", (
            FieldChange("addressPrefix", None, "AzureMachineLearning"), FieldChange("nextHopType", None, "Internet"))),
            RouteChange("remove", "amlfw-Old", (FieldChange("addressPrefix", "AzureCloud", None),))),
        foreign_groups=(ForeignGroup("DefaultNetworkRuleCollectionGroup", 200, 1, 3),),
        foreign_collections=("team-extra",),
        foreign_routes=("default-to-firewall",),
        notices=(PreflightIssue("policy-busy", "the policy is Updating; writes wait until it settles", False),),
        warnings=(CompileWarning("url-widened", "vscode.raw", "allowing the whole host", "prod", "ws-a"),),
        catalogue_version="azureml-2021.11",
    )


def quiet_plan() -> TargetPlan:
    return TargetPlan(target="quiet | one", policy_id=POLICY, group_name="azureml-egress", group_action="none",
                      catalogue_version="azureml-2021.11")


def blocked_plan() -> TargetPlan:
    return TargetPlan(target="blocked", policy_id=POLICY, group_name="azureml-egress", group_action="create",
                      collections=(CollectionChange("add", "ws-b-net", rules=(
                          RuleChange("add", "ws-b-net", "fqdn-x-tcp", "NetworkRule"),)),),
                      errors=(PreflightIssue("dns-proxy-disabled", "enable DNS proxy on the policy"),),
                      catalogue_version="azureml-2021.11")


def outcomes() -> list[Outcome]:
    return [
        Outcome("prod", "drift", drift_plan(), duration_ms=1234),
        Outcome("quiet | one", "in_sync", quiet_plan(), duration_ms=12),
        Outcome("blocked", "error", blocked_plan(), error="pre-flight failed"),
        Outcome("unreachable", "error", None, error="AuthError: 403 AuthorizationFailed x-ms-request-id=abc"),
    ]


# ------------------------------------------------------------------------------------------ text


def test_text_marks_add_remove_change() -> None:
    text = render_text(outcomes())
    lines = text.splitlines()
    assert lines[0] == f"target prod: drift  (policy {POLICY}, catalogue azureml-2021.11)"
    for expected in [
        "  ~ rule collection group azureml-egress (update)",
        "      priority: 310 -> 300",
        "      + collection ws-new-net",
        "          + rule tag-Storage.WestUS2-tcp (NetworkRule)",
        "      - collection ws-old-app",
        "          - rule app-example.com (ApplicationRule)",
        "      ~ collection ws-a-net",
        "          priority: 1005 -> 1000",
        "          ~ rule tag-AzureCloud.westus2-tcp (NetworkRule)",
        '              destinationPorts: +["443", "9000"] -["8443"] (1 -> 2 elements)',
        "  + route amlfw-AzureMachineLearning",
        '      addressPrefix: (none) -> "AzureMachineLearning"',
        "  - route amlfw-Old",
        "    foreign collection team-extra in azureml-egress: carried through unchanged",
        "    foreign route default-to-firewall: left alone",
        "  note: the policy is Updating; writes wait until it settles",
        "  ! error [dns-proxy-disabled]: enable DNS proxy on the policy",
        "  ! error: AuthError: 403 AuthorizationFailed x-ms-request-id=abc",
        "  No changes: the owned rule collection group and routes match the configuration.",
    ]:
        assert expected in lines, expected
    assert any(line.startswith("    foreign group DefaultNetworkRuleCollectionGroup (priority 200") for line in lines)
    assert "  Plan: 3 to add, 3 to change, 2 to destroy." in lines  # Terraform's line: rules and routes
    assert ("  (2 rules to add, 1 to change, 1 to remove; 1 collection to add, 1 to remove; "
            "1 route to add, 0 to change, 1 to remove.)") in lines
    assert lines[-1] == "4 targets: 1 in sync, 1 drifted, 0 applied, 2 failed."
    # an error outcome whose plan carries the errors does not repeat the outcome's own message
    assert "pre-flight failed" not in text


def test_text_after_apply_says_applied() -> None:
    text = render_text([Outcome("prod", "applied", drift_plan(), group_written=True)], applied=True)
    assert "  Applied: 3 added, 3 changed, 2 destroyed." in text.splitlines()
    assert ("  (2 rules added, 1 changed, 1 removed; 1 collection added, 1 removed; 1 route added, "
            "0 changed, 1 removed.)") in text.splitlines()
    assert text.splitlines()[-1] == "1 target: 0 in sync, 0 drifted, 1 applied, 0 failed."
    assert "Plan:" not in text


def test_colours_only_when_asked() -> None:
    plain = render_text(outcomes())
    assert "\033" not in plain
    coloured = render_text(outcomes(), color=True)
    assert ANSI.sub("", coloured) == plain
    by_line = dict(zip(plain.splitlines(), coloured.splitlines(), strict=True))
    assert by_line["      + collection ws-new-net"].startswith("\033[32m")
    assert by_line["      - collection ws-old-app"].startswith("\033[31m")
    assert by_line["      ~ collection ws-a-net"].startswith("\033[33m")
    assert by_line["  ! error [dns-proxy-disabled]: enable DNS proxy on the policy"].startswith("\033[1;31m")
    assert "\033" not in by_line["4 targets: 1 in sync, 1 drifted, 0 applied, 2 failed."]
    assert "\033" not in render_json(outcomes(), mode="dry-run")
    assert "\033" not in render_markdown(outcomes(), mode="dry-run")


# ------------------------------------------------------------------------------------------ JSON


def test_json_is_versioned_parseable_and_stable() -> None:
    text = render_json(outcomes(), mode="dry-run", generated_at="2026-01-01T00:00:00Z")
    assert text == render_json(outcomes(), mode="dry-run", generated_at="2026-01-01T00:00:00Z")
    assert text.endswith("}\n")
    doc = json.loads(text)
    assert doc["format_version"] == FORMAT_VERSION == 2
    assert (doc["mode"], doc["generated_at"]) == ("dry-run", "2026-01-01T00:00:00Z")
    assert doc["summary"] == {
        "targets": 4, "in_sync": 1, "drift": 1, "applied": 0, "partial": 0, "errors": 2,
        "collections_added": 2, "collections_removed": 1, "collections_changed": 1,
        "rules_added": 3, "rules_removed": 1, "rules_changed": 1,
        "routes_added": 1, "routes_removed": 1, "routes_changed": 0,
    }
    assert [t["target"] for t in doc["targets"]] == ["prod", "quiet | one", "blocked", "unreachable"]
    prod = doc["targets"][0]
    assert (prod["drift"], prod["applyable"], prod["duration_ms"]) == (True, True, 1234)
    assert prod["group"] == {"name": "azureml-egress", "action": "update",
                             "fields": [{"field": "priority", "before": 310, "after": 300}]}
    change = next(c for c in prod["changes"] if c["collection"] == "ws-a-net")
    assert change["rules"][0] == {
        "rule": "tag-AzureCloud.westus2-tcp", "rule_type": "NetworkRule", "action": "change",
        "fields": [{"field": "destinationPorts", "before": ["8443"], "after": ["443", "9000"],
                    "added": ["443", "9000"], "removed": ["8443"]}],
        "attributes": {}, "entries": [], "features": [], "breadth": ""}
    assert prod["foreign"] == {"groups": [{"name": "DefaultNetworkRuleCollectionGroup", "priority": 200,
                                           "collections": 1, "rules": 3}],
                               "collections": ["team-extra"], "routes": ["default-to-firewall"]}
    assert prod["warnings"] == [{"code": "url-widened", "entry_id": "vscode.raw", "workspace": "ws-a",
                                 "message": "allowing the whole host"}]
    blocked = doc["targets"][2]
    assert (blocked["applyable"], blocked["errors"]) == (
        False, [{"code": "dns-proxy-disabled", "message": "enable DNS proxy on the policy"}])
    assert doc["targets"][3] == {"target": "unreachable", "status": "error", "duration_ms": 0,
                                 "error": "AuthError: 403 AuthorizationFailed x-ms-request-id=abc"}


@pytest.mark.parametrize("outcome", outcomes(), ids=lambda o: o.target)
def test_outcome_dict_round_trips_through_json(outcome: Outcome) -> None:
    doc = outcome_to_dict(outcome)
    assert json.loads(json.dumps(doc)) == doc


# ------------------------------------------------------------------------------------------ Markdown


def test_markdown() -> None:
    md = render_markdown(outcomes(), mode="dry-run")
    lines = md.splitlines()
    assert lines[0] == "## amlfw dry-run report"
    assert "| `prod` | drift | 2/1/1 | 1/1 | 1/0/1 | 0 |" in lines
    assert "| `quiet \\| one` | in sync | 0/0/0 | 0/0 | 0/0/0 | 0 |" in lines  # pipes escaped
    assert "| `blocked` | error | 1/0/0 | 1/0 | 0/0/0 | 1 |" in lines
    assert "| `unreachable` | error | 0/0/0 | 0/0 | 0/0/0 | 1 |" in lines
    assert ('| change | `ws-a-net` | `tag-AzureCloud.westus2-tcp` | destinationPorts: +["443", "9000"] -["8443"] '
            '(1 -> 2 elements) |') in lines
    assert "| change | `ws-a-net` |  | priority: 1005 → 1000 |" in lines
    assert any(line.startswith("| add | `(route)` | `amlfw-AzureMachineLearning` | addressPrefix: (none) → ")
               for line in lines)
    assert "``" not in md  # an empty cell is empty, not two backticks
    assert "> **Error `dns-proxy-disabled`:** enable DNS proxy on the policy" in lines
    assert "**Error:** AuthError: 403 AuthorizationFailed x-ms-request-id=abc" in lines
    assert "No changes." in lines
    assert "- `url-widened` `vscode.raw`: allowing the whole host" in lines
    assert md == render_markdown(outcomes(), mode="dry-run")
