"""Refresh the vendored reference data from a source folder, file by file, and rewrite MANIFEST.sha256.

Usage::

    python reference/refresh.py SOURCE [--seed SEED_DIR] [--check]

SOURCE has the layout of this folder (``azure-rest-api-specs/``, ``service-tags/``, ``azureml/``); the seed
document is looked up under ``SOURCE/seed/`` or ``--seed``. Only the files listed in ``MANIFEST.sha256`` are
copied: the ones the emulator, the tests and ``generate_catalogue_data.py`` read. To vendor a new file, add a line
for it to the manifest (any hash) and its origin to ``README.md``, then run this. ``--check`` copies nothing and
exits 1 if a vendored file differs from its manifest hash (``make test`` checks the same).

Exit 0 when done (it prints each file that changed), 1 on a missing source file (nothing is written then).
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
MANIFEST = HERE / "MANIFEST.sha256"


def read_manifest(path: Path = MANIFEST) -> dict[str, str]:
    """Relative path -> sha256, in file order."""
    entries: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        digest, _, name = line.partition("  ")
        if len(digest) != 64 or not name or name.startswith("/") or ".." in Path(name).parts:
            raise SystemExit(f"{path}:{number}: expected '<sha256>  <relative path>'")
        entries[name] = digest
    return entries


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_manifest(entries: dict[str, str], path: Path = MANIFEST) -> None:
    path.write_text("".join(f"{digest}  {name}\n" for name, digest in sorted(entries.items())), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("source", type=Path, nargs="?", help="folder to copy from (layout of reference/)")
    parser.add_argument("--seed", type=Path, help="folder holding the seed document (default: SOURCE/seed)")
    parser.add_argument("--into", type=Path, default=HERE, help=argparse.SUPPRESS)  # tests refresh a copy
    parser.add_argument("--check", action="store_true", help="only verify the vendored files against the manifest")
    args = parser.parse_args(argv)
    manifest_path = args.into / "MANIFEST.sha256"
    entries = read_manifest(manifest_path)
    if args.check:
        bad = [name for name, digest in entries.items()
               if not (args.into / name).is_file() or sha256(args.into / name) != digest]
        for name in bad:
            print(f"{args.into / name}: missing or differs from {manifest_path.name}", file=sys.stderr)
        return 1 if bad else 0
    if args.source is None:
        parser.error("SOURCE is required unless --check is given")
    sources: dict[str, Path] = {}
    for name in entries:
        if name.startswith("seed/"):
            base = args.seed if args.seed else args.source / "seed"
            candidate = base / name.removeprefix("seed/")
        else:
            candidate = args.source / name
        if not candidate.is_file():
            print(f"error: {candidate}: not found (listed in {manifest_path.name}); nothing was copied",
                  file=sys.stderr)
            return 1
        sources[name] = candidate
    changed = 0
    for name, source in sources.items():
        target = args.into / name
        digest = sha256(source)
        if digest != entries[name] or not target.is_file():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)
            print(f"updated {name}")
            changed += 1
        entries[name] = digest
    write_manifest(entries, manifest_path)
    print(f"{len(entries)} files, {changed} updated", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
