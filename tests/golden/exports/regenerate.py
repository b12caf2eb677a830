"""Regenerate the golden files of `tests/test_exports.py` (`amlfw render --format squid|nftables|paloalto-edl|
managed-network`), with SOURCE_DATE_EPOCH fixed so that the time stamp is stable.

    .venv/bin/python tests/golden/exports/regenerate.py

Review `git diff tests/golden/exports` before committing.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
EXAMPLES = REPO / "config" / "examples"
TAGS = REPO / "reference" / "service-tags"
EPOCH = "1767225600"  # 2026-01-01T00:00:00Z

# golden file -> (configuration, format, service-tag files)
CASES: dict[str, tuple[Path, str, tuple[str, ...]]] = {
    "public.squid.conf": (EXAMPLES / "public.yaml", "squid", ()),
    "fleet.squid.conf": (EXAMPLES / "fleet.yaml", "squid", ()),
    "public.nft": (EXAMPLES / "public.yaml", "nftables", ("ServiceTags_Public.json",)),
    "usgov.nft": (EXAMPLES / "usgov.yaml", "nftables", ("ServiceTags_Gov.json",)),
    "public.edl.txt": (EXAMPLES / "public.yaml", "paloalto-edl", ("ServiceTags_Public.json",)),
    "public.managed-network.txt": (EXAMPLES / "public.yaml", "managed-network", ()),
    "workspace-rg.managed-network.txt": (HERE / "workspace-rg.yaml", "managed-network", ()),
}


def render_args(config: Path, fmt: str, tags: tuple[str, ...]) -> list[str]:
    args = ["render", "--config", str(config), "--format", fmt]
    for t in tags:
        args += ["--service-tags", str(TAGS / t)]
    return args


def main() -> int:
    env = {**os.environ, "SOURCE_DATE_EPOCH": EPOCH}
    for name, (config, fmt, tags) in CASES.items():
        result = subprocess.run([sys.executable, "-m", "reconciler", *render_args(config, fmt, tags)], cwd=REPO,
                                capture_output=True, text=True, check=False, env=env)
        if result.returncode != 0:
            sys.stderr.write(f"amlfw failed for {config.name} --format {fmt}:\n{result.stderr}")
            return 1
        path = HERE / name
        old = path.read_text(encoding="utf-8") if path.is_file() else None
        path.write_text(result.stdout, encoding="utf-8")
        state = "new" if old is None else ("unchanged" if old == result.stdout else "UPDATED")
        print(f"{state:9} {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
