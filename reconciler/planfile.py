"""Saved plans: what `amlfw plan --out FILE` writes and `amlfw apply --config F FILE` applies. Pure.

A plan file is JSON. Besides the report (the same document `--format json` prints), it records, per target, the
exact bodies amlfw would write (the complete rule collection group PUT body, each route PUT or DELETE) and the
state they were planned against (the owned group's etag, the owned routes as read). `apply` writes those bodies
only if the live state still matches, so what was reviewed is what is written; otherwise it refuses as stale and
writes nothing. The file also records the amlfw version, a digest of the configuration file, a digest of each
catalogue version used, and the time; applying it with another configuration or catalogue is refused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from reconciler.arm import group_to_arm, route_to_arm
from reconciler.errors import UserError
from reconciler.model import Route
from reconciler.plan import Outcome, TargetPlan

PLAN_KIND = "amlfw-plan"
PLAN_FORMAT = 1


@dataclass(frozen=True, slots=True)
class SavedTarget:
    """What a plan decided for one target, as recorded in the plan file."""

    name: str
    status: str  # in_sync | drift | error
    policy_id: str
    catalogue_version: str
    group_name: str
    group_action: str
    observed_etag: str | None
    body: Mapping[str, Any] | None  # the complete group PUT body, or None when the group is not written
    routes: tuple[Mapping[str, Any], ...]  # [{"action", "route", "body"}]
    observed_routes: tuple[Mapping[str, Any], ...]  # owned routes as read: [{"name", "addressPrefix", ...}]

    @property
    def has_changes(self) -> bool:
        return self.status == "drift"


@dataclass(frozen=True, slots=True)
class SavedPlan:
    amlfw_version: str
    created_at: str
    config_path: str
    config_sha256: str
    catalogues: Mapping[str, str]  # version -> digest
    targets: tuple[SavedTarget, ...]
    report: Mapping[str, Any]

    def target(self, name: str) -> SavedTarget | None:
        return next((t for t in self.targets if t.name == name), None)


def put_body(p: TargetPlan) -> dict[str, Any] | None:
    """The complete group PUT body the plan writes, or None when it leaves the group alone."""
    return group_to_arm(p.body) if p.body is not None and p.group_action != "none" else None


def _route_doc(route: Route) -> dict[str, Any]:
    return {"name": route.name, **route_to_arm(route)}


def route_changes(p: TargetPlan) -> list[dict[str, Any]]:
    """The route writes a plan makes, with the exact body of each PUT (DELETE has none)."""
    desired = {r.name.lower(): r for r in p.desired_routes}
    out = []
    for change in p.routes:
        route = desired.get(change.route.lower())
        body = route_to_arm(route) if change.action != "remove" and route is not None else None
        out.append({"action": change.action, "route": change.route, "body": body})
    return out


def saved_target(o: Outcome, observed_routes: Sequence[Route]) -> dict[str, Any]:
    p = o.plan
    doc: dict[str, Any] = {"name": o.target, "status": o.status if o.status in ("in_sync", "drift") else "error",
                           "error": o.error}
    if p is None:
        return doc
    doc.update({
        "policy_id": p.policy_id,
        "catalogue_version": p.catalogue_version,
        "group": {"name": p.group_name, "action": p.group_action, "observed_etag": p.observed_etag,
                  "body": put_body(p)},
        "routes": route_changes(p),
        "observed_routes": [_route_doc(r) for r in sorted(observed_routes, key=lambda r: r.name.lower())],
    })
    return doc


def plan_document(outcomes: Sequence[Outcome], observed_routes: Mapping[str, Sequence[Route]], *,
                  report: Mapping[str, Any], amlfw_version: str, created_at: str, config_path: str,
                  config_sha256: str, catalogues: Mapping[str, str]) -> dict[str, Any]:
    return {
        "kind": PLAN_KIND,
        "format_version": PLAN_FORMAT,
        "amlfw_version": amlfw_version,
        "created_at": created_at,
        "config": {"path": config_path, "sha256": config_sha256},
        "catalogues": dict(sorted(catalogues.items())),
        "targets": [saved_target(o, observed_routes.get(o.target, ())) for o in outcomes],
        "report": dict(report),
    }


def _need(doc: Mapping[str, Any], key: str, kind: type | tuple[type, ...], path: str, where: str) -> Any:
    value = doc.get(key) if isinstance(doc, Mapping) else None
    if not isinstance(value, kind):
        raise UserError(path, f"{where}{key}", "missing or malformed: not a plan file written by `amlfw plan --out`")
    return value


def parse_plan(text: str, path: str) -> SavedPlan:
    """Parse a plan file; a UserError (one line: file, key, reason) for anything that is not one."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UserError(path, "", f"not JSON ({exc.msg} at line {exc.lineno}): not a plan file") from None
    if not isinstance(doc, dict) or doc.get("kind") != PLAN_KIND:
        raise UserError(path, "kind", f"expected {PLAN_KIND!r}: not a plan file written by `amlfw plan --out`")
    if doc.get("format_version") != PLAN_FORMAT:
        raise UserError(path, "format_version", f"{doc.get('format_version')!r} is not supported (this amlfw "
                        f"reads format {PLAN_FORMAT}); make the plan again with this version")
    config = _need(doc, "config", dict, path, "")
    targets = []
    for i, t in enumerate(_need(doc, "targets", list, path, "")):
        where = f"targets[{i}]."
        name = _need(t, "name", str, path, where)
        status = _need(t, "status", str, path, where)
        if status == "error" or "group" not in t:
            targets.append(SavedTarget(name, "error", "", "", "", "none", None, None, (), ()))
            continue
        group = _need(t, "group", dict, path, where)
        body = group.get("body")
        if body is not None and not isinstance(body, dict):
            raise UserError(path, f"{where}group.body", "expected a JSON object or null")
        etag = group.get("observed_etag")
        routes = _need(t, "routes", list, path, where)
        observed_routes = _need(t, "observed_routes", list, path, where)
        if not all(isinstance(r, dict) for r in [*routes, *observed_routes]):
            raise UserError(path, f"{where}routes", "expected JSON objects")
        targets.append(SavedTarget(
            name=name, status=status, policy_id=_need(t, "policy_id", str, path, where),
            catalogue_version=_need(t, "catalogue_version", str, path, where),
            group_name=_need(group, "name", str, path, f"{where}group."),
            group_action=_need(group, "action", str, path, f"{where}group."),
            observed_etag=etag if isinstance(etag, str) else None, body=body,
            routes=tuple(routes), observed_routes=tuple(observed_routes)))
    catalogues = _need(doc, "catalogues", dict, path, "")
    return SavedPlan(
        amlfw_version=_need(doc, "amlfw_version", str, path, ""),
        created_at=_need(doc, "created_at", str, path, ""),
        config_path=_need(config, "path", str, path, "config."),
        config_sha256=_need(config, "sha256", str, path, "config."),
        catalogues={str(k): str(v) for k, v in catalogues.items()},
        targets=tuple(targets),
        report=_need(doc, "report", dict, path, ""),
    )


def refusal(saved: SavedPlan, path: str, *, amlfw_version: str, config_sha256: str,
            catalogues: Mapping[str, str]) -> str | None:
    """Why this plan file cannot be applied with this amlfw, configuration and catalogue (None: it can)."""
    if saved.amlfw_version != amlfw_version:
        return (f"{path}: made by amlfw {saved.amlfw_version}, this is {amlfw_version}: make the plan again "
                "with this version")
    if saved.config_sha256 != config_sha256:
        return (f"{path}: the configuration changed since the plan was made ({saved.config_path}, sha256 "
                f"{saved.config_sha256[:12]}... then, {config_sha256[:12]}... now): make the plan again")
    for version, digest in sorted(saved.catalogues.items()):
        if catalogues.get(version) != digest:
            return (f"{path}: catalogue {version} differs from the one the plan was made with: make the plan "
                    "again")
    return None


def stale_reason(saved: SavedTarget, live: TargetPlan, live_routes: Sequence[Route]) -> str | None:
    """Why the live state no longer matches what the plan observed (None: apply may write the saved bodies).

    The owned group's etag must be the one the plan read (or both absent), the bodies the live state leads to must
    be exactly the saved ones, and the owned routes must be as the plan read them.
    """
    group = saved.group_name
    if (live.observed_etag or None) != (saved.observed_etag or None):
        seen = "it did not exist" if saved.observed_etag is None else f"etag {saved.observed_etag}"
        now = "it is gone" if live.observed_etag is None else f"etag {live.observed_etag}"
        return f"stale plan: group {group} changed since the plan was made ({seen} then, {now} now)"
    if put_body(live) != saved.body:
        return f"stale plan: the body amlfw would write to group {group} is no longer the one in the plan"
    observed = [_route_doc(r) for r in sorted(live_routes, key=lambda r: r.name.lower())]
    if observed != list(saved.observed_routes) or route_changes(live) != list(saved.routes):
        return f"stale plan: the owned routes of target {saved.name} changed since the plan was made"
    return None
