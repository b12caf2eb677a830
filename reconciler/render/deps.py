"""Render dependency-check results (text and JSON). Pure."""

from __future__ import annotations

import json
from collections.abc import Sequence

from reconciler.deps import FORMAT_VERSION, DependencyCheck
from reconciler.render.desired import table_lines


def render_deps_text(checks: Sequence[DependencyCheck], skipped: Sequence[str], errors: Sequence[str]) -> str:
    out: list[str] = []
    for ws in sorted({c.workspace for c in checks}):
        mine = [c for c in checks if c.workspace == ws]
        gaps = [c for c in mine if not c.covered]
        out.append(f"workspace {ws}: {len(mine) - len(gaps)} of {len(mine)} endpoints covered by the compiled rules")
        rows = [("ok" if c.covered else "MISSING", c.domain, str(c.port), c.category,
                 ", ".join(c.covered_by) if c.covered else "no application or FQDN rule allows it")
                for c in sorted(mine, key=lambda c: (c.covered, c.domain, c.port))]
        out.extend("  " + line for line in table_lines(("", "endpoint", "port", "category", "covered by"), rows))
        out.append("")
    for s in skipped:
        out.append(f"skipped {s}")
    for e in errors:
        out.append(f"! error: {e}")
    n_gaps = sum(not c.covered for c in checks)
    out.append(f"{n_gaps} endpoint{'s' if n_gaps != 1 else ''} not covered.")
    return "\n".join(out) + "\n"


def render_deps_json(checks: Sequence[DependencyCheck], skipped: Sequence[str], errors: Sequence[str]) -> str:
    doc = {
        "format_version": FORMAT_VERSION,
        "endpoints": [{"workspace": c.workspace, "category": c.category, "domain": c.domain, "port": c.port,
                       "covered": c.covered, "covered_by": list(c.covered_by)} for c in checks],
        "skipped": list(skipped),
        "errors": list(errors),
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
