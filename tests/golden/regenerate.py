"""Regenerate the golden files of `tests/test_render.py` from the example configurations.

    .venv/bin/python tests/golden/regenerate.py          (from the repository root, or from anywhere)

Run it after an intended change to the compiler, the renderers or the catalogue, then review `git diff tests/golden`
before committing: every changed line there is a change to what amlfw would PUT to Azure.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent
REPO = GOLDEN.parents[1]
EXAMPLES = REPO / "config" / "examples"

# golden file -> (example configuration, `amlfw render --format`)
CASES: dict[str, tuple[str, str]] = {
    "public.arm.json": ("public.yaml", "arm"),
    "usgov.arm.json": ("usgov.yaml", "arm"),
    "china.arm.json": ("china.yaml", "arm"),
    "fleet.arm.json": ("fleet.yaml", "arm"),
    "public.table.txt": ("public.yaml", "table"),
    "public-2026.arm.json": ("public-2026.yaml", "arm"),
}
# the same examples under the other two strategies (`allow_by:`), from tests/golden/configs/
for _example in ("public", "usgov", "china", "public-2026"):
    for _strategy in ("fqdns", "both"):
        CASES[f"{_example}-{_strategy}.arm.json"] = (f"tests/golden/configs/{_example}-{_strategy}.yaml", "arm")
CASES["public-fqdns.table.txt"] = ("tests/golden/configs/public-fqdns.yaml", "table")


def render_args(config: str, fmt: str) -> list[str]:
    """`amlfw` arguments that produce one golden file (stdout is the golden content). A bare name is an
    example of config/examples/, a path is relative to the repository."""
    path = REPO / config if "/" in config else EXAMPLES / config
    return ["render", "--config", str(path), "--format", fmt]


def main() -> int:
    for name, (config, fmt) in CASES.items():
        result = subprocess.run([sys.executable, "-m", "reconciler", *render_args(config, fmt)], cwd=REPO,
                                capture_output=True, text=True, check=False)
        if result.returncode != 0:
            sys.stderr.write(f"amlfw failed for {config} --format {fmt}:\n{result.stderr}")
            return 1
        path = GOLDEN / name
        old = path.read_text(encoding="utf-8") if path.is_file() else None
        path.write_text(result.stdout, encoding="utf-8")
        state = "new" if old is None else ("unchanged" if old == result.stdout else "UPDATED")
        print(f"{state:9} {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
