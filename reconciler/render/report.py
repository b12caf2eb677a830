"""Render the outcomes of a pass: terraform-like text, versioned JSON, Markdown. Pure functions of data."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from reconciler.plan import FORMAT_VERSION, CollectionChange, FieldChange, Outcome, RuleChange, TargetPlan, Value

_SIGN = {"add": "+", "create": "+", "remove": "-", "change": "~", "update": "~", "repair": "~", "none": " "}
_COLOR = {"+": "\033[32m", "-": "\033[31m", "~": "\033[33m", "!": "\033[1;31m"}
_RESET = "\033[0m"


def _fmt(v: object) -> str:
    if isinstance(v, tuple):
        return "[" + ", ".join(json.dumps(x) for x in v) + "]"
    if v is None:
        return "(none)"
    return json.dumps(v)


def _list_delta(f: FieldChange) -> str:
    """A list change as the elements added and removed, with the sizes: `+["b"] -["a"] (3 -> 3 elements)`."""
    parts = []
    if f.added:
        parts.append("+" + _fmt(f.added))
    if f.removed:
        parts.append("-" + _fmt(f.removed))
    sizes = (len(f.before) if isinstance(f.before, tuple) else 0, len(f.after) if isinstance(f.after, tuple) else 0)
    return " ".join(parts) + f" ({sizes[0]} -> {sizes[1]} element{'' if sizes[1] == 1 else 's'})"


def _field_lines(fields: Sequence[FieldChange], indent: str) -> list[str]:
    lines = []
    for f in fields:
        if f.is_list and (f.added or f.removed) and f.before is not None and f.after is not None:
            lines.append(f"{indent}{f.field}: {_list_delta(f)}")
        else:
            lines.append(f"{indent}{f.field}: {_fmt(f.before)} -> {_fmt(f.after)}")
    return lines


def _serves(r: RuleChange) -> str:
    if not r.entries:
        return ""
    features = f" [{', '.join(r.features)}]" if r.features else ""
    breadth = f" ({r.breadth})" if r.breadth else ""
    return f"  serves {', '.join(r.entries)}{features}{breadth}"


def _attribute_lines(attributes: Sequence[tuple[str, Value]], indent: str) -> list[str]:
    return [f"{indent}{name}: {_fmt(value)}" for name, value in attributes]


def _collection_lines(c: CollectionChange, indent: str) -> list[str]:
    sign = _SIGN[c.action]
    lines = [f"{indent}{sign} collection {c.collection}"]
    lines += _field_lines(c.fields, indent + "    ")
    for r in c.rules:
        rs = _SIGN[r.action]
        lines.append(f"{indent}    {rs} rule {r.rule} ({r.rule_type}){_serves(r)}")
        lines += _field_lines(r.fields, indent + "        ")
        lines += _attribute_lines(r.attributes, indent + "        ")
    return lines


def _summary(plans: Sequence[TargetPlan]) -> dict[str, int]:
    total: dict[str, int] = {}
    for p in plans:
        for k, v in p.counts.items():
            total[k] = total.get(k, 0) + v
    return total


def render_text(outcomes: Sequence[Outcome], *, color: bool = False, applied: bool = False) -> str:
    out: list[str] = []
    for o in outcomes:
        p = o.plan
        head = f"target {o.target}: {o.status.replace('_', ' ')}"
        if p is not None:
            head += f"  (policy {p.policy_id}, catalogue {p.catalogue_version})"
        out.append(head)
        if p is not None:
            if p.group_action != "none":
                out.append(f"  {_SIGN[p.group_action]} rule collection group {p.group_name} ({p.group_action})")
                out += _field_lines(p.group_fields, "      ")
                for c in p.collections:
                    out += _collection_lines(c, "      ")
            for r in p.routes:
                out.append(f"  {_SIGN[r.action]} route {r.route}")
                out += _field_lines(r.fields, "      ")
            for g in p.foreign_groups:
                out.append(f"    foreign group {g.name} (priority {g.priority}, {g.collections} collections, "
                           f"{g.rules} rules): not amlfw's, left alone")
            for name in p.foreign_collections:
                out.append(f"    foreign collection {name} in {p.group_name}: carried through unchanged")
            for name in p.foreign_routes:
                out.append(f"    foreign route {name}: left alone")
            for n in p.notices:
                out.append(f"  note: {n.message}")
            for e in p.errors:
                out.append(f"  ! error [{e.code}]: {e.message}")
            if p.drift:
                out += ["  " + line for line in _count_lines(p, done=applied and o.status == "applied")]
            elif o.status != "error":
                out.append("  No changes: the owned rule collection group and routes match the configuration.")
        if o.status == "partial":
            out.append(f"  ! partial apply: {_written(o)}")
        if o.error and (p is None or not p.errors):
            out.append(f"  ! error: {o.error}")
        out.append("")
    n_drift = sum(o.status == "drift" for o in outcomes)
    n_err = sum(o.status == "error" for o in outcomes)
    n_applied = sum(o.status == "applied" for o in outcomes)
    n_partial = sum(o.status == "partial" for o in outcomes)
    out.append(f"{_n(len(outcomes), 'target')}: {sum(o.status == 'in_sync' for o in outcomes)} in sync, "
               f"{n_drift} drifted, {n_applied} applied, "
               + (f"{n_partial} partially applied, " if n_partial else "") + f"{n_err} failed.")
    text = "\n".join(out) + "\n"
    return _colorize(text) if color else text


def _written(o: Outcome) -> str:
    """Exactly what a partial apply wrote and what it did not."""
    p = o.plan
    done = set(o.routes_done)
    wanted = [f"{r.action} {r.route}" for r in p.routes] if p else list(o.routes_done)
    written = ["group " + (p.group_name if p else "")] if o.group_written else []
    written += [f"route {r}" for r in o.routes_done]
    missing = ([f"group {p.group_name}"] if p and p.group_action != "none" and not o.group_written else [])
    missing += [f"route {r}" for r in wanted if r not in done]
    return (f"written: {', '.join(written) or 'nothing'}; not written: {', '.join(missing) or 'nothing'}")


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _count_lines(p: TargetPlan, *, done: bool) -> list[str]:
    """Terraform's closing line (rules and routes), then the breakdown."""
    c, t = p.counts, p.totals
    if done:
        return [f"Applied: {t['add']} added, {t['change']} changed, {t['destroy']} destroyed.",
                f"({_n(c['rules_added'], 'rule')} added, {c['rules_changed']} changed, "
                f"{c['rules_removed']} removed; {_n(c['collections_added'], 'collection')} added, "
                f"{c['collections_removed']} removed; {_n(c['routes_added'], 'route')} added, "
                f"{c['routes_changed']} changed, {c['routes_removed']} removed.)"]
    return [f"Plan: {t['add']} to add, {t['change']} to change, {t['destroy']} to destroy.",
            f"({_n(c['rules_added'], 'rule')} to add, {c['rules_changed']} to change, "
            f"{c['rules_removed']} to remove; {_n(c['collections_added'], 'collection')} to add, "
            f"{c['collections_removed']} to remove; {_n(c['routes_added'], 'route')} to add, "
            f"{c['routes_changed']} to change, {c['routes_removed']} to remove.)"]


def _colorize(text: str) -> str:
    lines = []
    for line in text.split("\n"):
        stripped = line.lstrip()
        code = _COLOR.get(stripped[:1]) if stripped else None
        lines.append(f"{code}{line}{_RESET}" if code else line)
    return "\n".join(lines)


def _json_value(v: Value) -> Any:
    return list(v) if isinstance(v, tuple) else v


def _fields(fields: Sequence[FieldChange]) -> list[dict[str, Any]]:
    out = []
    for f in fields:
        doc: dict[str, Any] = {"field": f.field, "before": _json_value(f.before), "after": _json_value(f.after)}
        if f.is_list:
            doc["added"], doc["removed"] = list(f.added), list(f.removed)
        out.append(doc)
    return out


def _rule_dict(r: RuleChange) -> dict[str, Any]:
    return {"rule": r.rule, "rule_type": r.rule_type, "action": r.action, "fields": _fields(r.fields),
            "attributes": {name: _json_value(value) for name, value in r.attributes},
            "entries": list(r.entries), "features": list(r.features), "breadth": r.breadth}


def outcome_to_dict(o: Outcome) -> dict[str, Any]:
    p = o.plan
    doc: dict[str, Any] = {"target": o.target, "status": o.status, "error": o.error,
                           "duration_ms": o.duration_ms}
    if p is None:
        return doc
    doc.update({
        "policy_id": p.policy_id,
        "catalogue_version": p.catalogue_version,
        "drift": p.drift,
        "applyable": p.applyable,
        "group": {"name": p.group_name, "action": p.group_action, "fields": _fields(p.group_fields)},
        "changes": [
            {"collection": c.collection, "action": c.action, "fields": _fields(c.fields),
             "rules": [_rule_dict(r) for r in c.rules]}
            for c in p.collections
        ],
        "routes": [{"route": r.route, "action": r.action, "fields": _fields(r.fields)} for r in p.routes],
        "counts": p.counts,
        "totals": p.totals,
        "foreign": {
            "groups": [{"name": g.name, "priority": g.priority, "collections": g.collections, "rules": g.rules}
                       for g in p.foreign_groups],
            "collections": list(p.foreign_collections),
            "routes": list(p.foreign_routes),
        },
        "errors": [{"code": e.code, "message": e.message} for e in p.errors],
        "notices": [{"code": e.code, "message": e.message} for e in p.notices],
        "warnings": [{"code": w.code, "entry_id": w.entry_id, "workspace": w.workspace, "message": w.message}
                     for w in p.warnings],
        "applied": {"group_written": o.group_written, "routes_written": o.routes_written, "retries": o.retries,
                    "routes_done": list(o.routes_done)},
    })
    return doc


def render_json(outcomes: Sequence[Outcome], *, mode: str, generated_at: str | None = None) -> str:
    plans = [o.plan for o in outcomes if o.plan is not None]
    doc = {
        "format_version": FORMAT_VERSION,
        "mode": mode,
        "generated_at": generated_at,
        "summary": {
            "targets": len(outcomes),
            "in_sync": sum(o.status == "in_sync" for o in outcomes),
            "drift": sum(o.status == "drift" for o in outcomes),
            "applied": sum(o.status == "applied" for o in outcomes),
            "partial": sum(o.status == "partial" for o in outcomes),
            "errors": sum(o.status == "error" for o in outcomes),
            **_summary(plans),
        },
        "targets": [outcome_to_dict(o) for o in outcomes],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


MD_FOLD_ROWS = 20  # longer change tables are collapsed in pull-request comments


def _md_field(f: FieldChange) -> str:
    if f.is_list and (f.added or f.removed) and f.before is not None and f.after is not None:
        return f"{f.field}: {_list_delta(f)}"
    return f"{f.field}: {_fmt(f.before)} → {_fmt(f.after)}"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _md_code(text: str) -> str:
    """A table cell in code style; an empty cell stays empty (a bare `` would show as two backticks)."""
    return f"`{_md_escape(text)}`" if text else ""


def render_markdown(outcomes: Sequence[Outcome], *, mode: str) -> str:
    lines = [f"## amlfw {mode} report", ""]
    lines.append("| target | status | rules +/~/- | collections +/- | routes +/~/- | errors |")
    lines.append("|---|---|---|---|---|---|")
    for o in outcomes:
        c = o.plan.counts if o.plan else {}
        errs = len(o.plan.errors) if o.plan else (1 if o.error else 0)
        lines.append(
            f"| `{_md_escape(o.target)}` | {o.status.replace('_', ' ')} | "
            f"{c.get('rules_added', 0)}/{c.get('rules_changed', 0)}/{c.get('rules_removed', 0)} | "
            f"{c.get('collections_added', 0)}/{c.get('collections_removed', 0)} | "
            f"{c.get('routes_added', 0)}/{c.get('routes_changed', 0)}/{c.get('routes_removed', 0)} | {errs} |")
    for o in outcomes:
        p = o.plan
        lines += ["", f"### `{_md_escape(o.target)}`", ""]
        if p is None:
            lines.append(f"**Error:** {_md_escape(o.error or 'unknown')}")
            continue
        lines.append(f"Policy `{p.policy_id}`, group `{p.group_name}` ({p.group_action}), "
                     f"catalogue `{p.catalogue_version}`.")
        rows = []
        for ch in p.collections:
            if ch.fields or not ch.rules:
                detail = "; ".join(f"{f.field}: {_fmt(f.before)} → {_fmt(f.after)}" for f in ch.fields)
                rows.append((ch.action, ch.collection, "", detail))
            for r in ch.rules:
                detail = "; ".join([*(_md_field(f) for f in r.fields),
                                    *(f"{name}: {_fmt(value)}" for name, value in r.attributes)])
                if r.entries:
                    detail += f" (serves {', '.join(r.entries)})"
                rows.append((r.action, ch.collection, r.rule, detail))
        for rc in p.routes:
            detail = "; ".join(f"{f.field}: {_fmt(f.before)} → {_fmt(f.after)}" for f in rc.fields)
            rows.append((rc.action, "(route)", rc.route, detail))
        if rows:
            t = p.totals
            fold = len(rows) > MD_FOLD_ROWS
            if fold:
                lines += ["", f"<details><summary>{len(rows)} changes: {t['add']} to add, {t['change']} to change, "
                          f"{t['destroy']} to destroy</summary>"]
            lines += ["", "| change | collection | rule / route | detail |", "|---|---|---|---|"]
            lines += [f"| {a} | {_md_code(c)} | {_md_code(r)} | {_md_escape(d)} |" for a, c, r, d in rows]
            if fold:
                lines += ["", "</details>"]
            lines += ["", f"**Plan: {t['add']} to add, {t['change']} to change, {t['destroy']} to destroy.**"]
        else:
            lines.append("")
            lines.append("No changes.")
        if p.foreign_groups:
            lines += ["", "Foreign groups (left alone): " + ", ".join(f"`{g.name}` ({g.priority})"
                                                                     for g in p.foreign_groups)]
        for e in p.errors:
            lines += ["", f"> **Error `{e.code}`:** {_md_escape(e.message)}"]
        if p.warnings:
            lines += ["", "<details><summary>Warnings</summary>", ""]
            lines += [f"- `{w.code}` {('`' + w.entry_id + '`') if w.entry_id else ''}: {_md_escape(w.message)}"
                      for w in p.warnings]
            lines += ["", "</details>"]
    return "\n".join(lines) + "\n"
