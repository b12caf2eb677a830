"""The `amlfw` command line. Reports go to stdout, logs and warnings to stderr.

Exit codes: 0 success / in sync, 1 error (including usage errors), 2 drift (`reconcile --dry-run`).
`--help`, `render` and `catalogue` never import the Azure SDK; `reconcile` imports it on demand.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from reconciler import __version__
from reconciler.errors import AmlfwError, UserError, excerpt

if TYPE_CHECKING:  # imported lazily at run time, so `--help` stays fast
    from reconciler.catalogue import CatalogueStore
    from reconciler.config import Config, Target
    from reconciler.model import DesiredTarget

EXIT_OK, EXIT_ERROR, EXIT_DRIFT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on usage errors; 2 means drift here, so usage errors exit 1."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="amlfw", description="Keep an Azure Firewall Policy in step with what Azure Machine "
                "Learning needs.")
    p.add_argument("--version", action="version", version=f"amlfw {__version__}")
    p.add_argument("--catalogue-dir", metavar="DIR",
                   help="endpoint catalogue directory (default: $AMLFW_CATALOGUE_DIR or config/catalogue)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    r = sub.add_parser("render", help="compile a configuration into rules, offline")
    r.add_argument("--config", required=True, metavar="FILE")
    r.add_argument("--format", choices=("arm", "table", "csv", "json"), default="table",
                   help="arm: rule collection groups as PUT; table: human view; csv/json: allow-list")
    r.add_argument("--output", metavar="FILE", help="write here instead of stdout (only on success)")
    r.set_defaults(func=cmd_render)

    c = sub.add_parser("catalogue", help="inspect and validate the endpoint catalogue")
    csub = c.add_subparsers(dest="catalogue_command", metavar="SUBCOMMAND", parser_class=_Parser)
    csub.required = True
    cl = csub.add_parser("list", help="list catalogue entries")
    cl.add_argument("--cloud", choices=("AzureCloud", "AzureUSGovernment", "AzureChinaCloud"))
    cl.add_argument("--feature", help="entries needed by this feature (baseline entries included)")
    cl.add_argument("--version", dest="catalogue_version", metavar="VERSION", help="catalogue version")
    cl.add_argument("--format", choices=("table", "json"), default="table")
    cl.set_defaults(func=cmd_catalogue_list)
    cv = csub.add_parser("validate", help="check schema, duplicates, FQDN syntax and service tag names")
    cv.add_argument("--version", dest="catalogue_version", metavar="VERSION",
                    help="catalogue version (default: all)")
    cv.add_argument("--service-tags", metavar="DIR",
                    help="directory with ServiceTags_Public.json / ServiceTags_Gov.json "
                         "(default: the bundled tag-name lists)")
    cv.set_defaults(func=cmd_catalogue_validate)
    cd = csub.add_parser("diff", help="compare two catalogue versions: entries and destinations gained or lost")
    cd.add_argument("from_version", metavar="FROM", help="the older catalogue version, e.g. azureml-2021.11")
    cd.add_argument("to_version", metavar="TO", help="the newer catalogue version, e.g. azureml-2026.03")
    cd.add_argument("--cloud", choices=("AzureCloud", "AzureUSGovernment", "AzureChinaCloud"),
                    help="only entries and destinations of this cloud")
    cd.add_argument("--feature", action="append", metavar="FEATURE",
                    help="only what a workspace with this feature needs (baseline and implied features included; "
                         "repeatable; default: every feature)")
    cd.add_argument("--format", choices=("text", "json"), default="text")
    cd.set_defaults(func=cmd_catalogue_diff)

    dp = sub.add_parser("deps", help="check each workspace's own dependency list (Azure ML API) against the "
                        "compiled rules; read-only (exit 0 covered, 2 gaps, 1 error)")
    dp.add_argument("--config", required=True, metavar="FILE")
    dp.add_argument("--output", choices=("text", "json"), default="text")
    dp.set_defaults(func=cmd_deps)

    rc = sub.add_parser("reconcile", help="observe the live policy, plan, and apply (or report drift)")
    rc.add_argument("--config", required=True, metavar="FILE")
    rc.add_argument("--once", action="store_true", help="one pass over every target, then exit")
    rc.add_argument("--dry-run", action="store_true",
                    help="report drift only; never writes (exit 0 in sync, 2 drift, 1 error)")
    rc.add_argument("--output", choices=("text", "json", "markdown"), default="text", help="report format")
    rc.add_argument("--color", choices=("auto", "always", "never"), default="auto")
    rc.add_argument("--interval", type=float, metavar="SECONDS", help="daemon: seconds between passes")
    rc.add_argument("--listen", metavar="HOST:PORT", help="daemon: health and metrics address")
    rc.add_argument("--max-workers", type=int, metavar="N", help="daemon: targets reconciled at once")
    rc.set_defaults(func=cmd_reconcile)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "reconcile" and not args.once and hasattr(signal, "SIGHUP"):
        # the daemon installs its reload handler after loading the Azure SDK; until then a SIGHUP
        # (a ConfigMap change, `systemctl reload`) must not kill it with the default action
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        code: int = args.func(args)
        return code
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except AmlfwError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `amlfw render | head`
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK
    except Exception as exc:  # the last boundary: one line, never a traceback (AMLFW_DEBUG=1 shows it)
        if os.environ.get("AMLFW_DEBUG") == "1":
            raise
        print(f"error: unexpected {type(exc).__name__}: {excerpt(str(exc), 100)} (AMLFW_DEBUG=1 shows where)",
              file=sys.stderr)
        return EXIT_ERROR


def _store(args: argparse.Namespace) -> CatalogueStore:
    from reconciler.catalogue import CatalogueStore

    return CatalogueStore(Path(args.catalogue_dir) if args.catalogue_dir else None)


def load_and_compile(config_path: str, catalogue_dir: str | None) -> tuple[Config, list[tuple[Target, DesiredTarget]]]:
    """Load a config with its catalogues and compile it: [(Target, DesiredTarget)]."""
    from reconciler.catalogue import CatalogueStore
    from reconciler.compile import compile_target
    from reconciler.config import load_config

    store = CatalogueStore(Path(catalogue_dir) if catalogue_dir else None)
    config = load_config(config_path, store.get)
    return config, [(t, compile_target(t, store.get(t.catalogue_version))) for t in config.targets]


def _emit(text: str, output: str | None) -> None:
    if output is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    target = Path(output)
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(dir=target.parent if str(target.parent) else ".", prefix=".amlfw-")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the file the mode open() would
        os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        raise UserError(output, "", f"cannot write file: {exc.strerror or exc}") from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def cmd_render(args: argparse.Namespace) -> int:
    from reconciler.render import desired as r

    _, pairs = load_and_compile(args.config, args.catalogue_dir)
    for _, d in pairs:
        for w in d.warnings:
            print(str(w), file=sys.stderr)
    renderer = {"arm": r.render_arm, "table": r.render_table, "csv": r.render_csv, "json": r.render_allow_json}
    _emit(renderer[args.format](pairs), args.output)
    return EXIT_OK


def cmd_catalogue_list(args: argparse.Namespace) -> int:
    import json

    from reconciler.compile import select_entries

    store = _store(args)
    try:
        cat = store.get(args.catalogue_version)
    except LookupError as exc:
        raise UserError("--version", "", str(exc).strip("'\"")) from None
    if args.feature and args.feature not in cat.feature_names:
        raise UserError("--feature", "", f"unknown feature {args.feature!r} "
                        f"(expected one of {', '.join(sorted(cat.feature_names))})")
    entries = list(cat.entries)
    if args.feature:
        clouds = [args.cloud] if args.cloud else ["AzureCloud", "AzureUSGovernment", "AzureChinaCloud"]
        wanted = cat.with_implied({args.feature})
        ids = {e.id for c in clouds for e in select_entries(cat, c, wanted)}
        entries = [e for e in entries if e.id in ids]
    if args.cloud:
        entries = [e for e in entries if args.cloud in e.clouds]
    if args.format == "json":
        doc = {
            "catalogue_version": cat.version,
            "entries": [
                {"id": e.id, "kind": e.kind, "value": e.value, "direction": e.direction,
                 "ports": [str(p) for p in e.ports], "clouds": sorted(e.clouds), "features": sorted(e.features),
                 "apply_as": e.apply_as, "purpose": e.purpose, "section": e.provenance.section,
                 "corrections": [c.code for c in e.corrections]}
                for e in entries
            ],
        }
        sys.stdout.write(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
        return EXIT_OK
    from reconciler.render.desired import table_lines

    rows = [(e.id, e.kind, e.value, ",".join(str(p) for p in e.ports), ",".join(sorted(e.features)),
             ",".join(c.code for c in e.corrections)) for e in entries]
    lines = [f"catalogue {cat.version}: {len(entries)} entries"]
    lines += table_lines(("id", "kind", "value", "ports", "features", "corrections"), rows)
    sys.stdout.write("\n".join(lines) + "\n")
    return EXIT_OK


def cmd_catalogue_validate(args: argparse.Namespace) -> int:
    from reconciler.catalogue.validate import tag_names_from_json, usability_notes, validate_catalogue

    store = _store(args)
    versions = [args.catalogue_version] if args.catalogue_version else store.versions()
    if args.service_tags:
        tag_dir = Path(args.service_tags)
        if not tag_dir.is_dir():
            raise UserError(args.service_tags, "", "not a directory")
        names = tag_names_from_json(tag_dir)
        if not names:
            raise UserError(args.service_tags, "", "no ServiceTags_Public.json or ServiceTags_Gov.json found")
    else:
        names = store.service_tag_names()
    failed = False
    for version in versions:
        try:
            cat = store.get(version)
        except LookupError as exc:
            raise UserError("--version", "", str(exc).strip("'\"")) from None
        problems = validate_catalogue(cat, names)
        for prob in problems:
            print(f"error: {cat.path}: {prob}", file=sys.stderr)
        for note in usability_notes(cat):
            print(f"warning: {cat.path}: {note}", file=sys.stderr)
        failed = failed or bool(problems)
        checked = ", ".join(sorted(names)) or "no clouds (no tag lists)"
        print(f"catalogue {cat.version}: {len(cat.entries)} entries, "
              f"{'INVALID' if problems else 'valid'} (service tags checked for {checked})")
    return EXIT_ERROR if failed else EXIT_OK


def cmd_catalogue_diff(args: argparse.Namespace) -> int:
    import json

    from reconciler.catalogue.diff import diff_catalogues, render_text, to_json

    store = _store(args)
    cats = []
    for label, version in (("FROM", args.from_version), ("TO", args.to_version)):
        try:
            cats.append(store.get(version))
        except LookupError as exc:
            raise UserError(label, "", str(exc).strip("'\"")) from None
    old, new = cats
    known = old.feature_names | new.feature_names
    for feature in args.feature or []:
        if feature not in known:
            raise UserError("--feature", "", f"unknown feature {feature!r} "
                            f"(expected one of {', '.join(sorted(known))})")
    diff = diff_catalogues(old, new, cloud=args.cloud, feature=args.feature)
    if args.format == "json":
        sys.stdout.write(json.dumps(to_json(diff), indent=2, ensure_ascii=False) + "\n")
    else:
        sys.stdout.write(render_text(diff))
    return EXIT_OK


def cmd_reconcile(args: argparse.Namespace) -> int:
    from reconciler.engine import run_reconcile

    return run_reconcile(args)


def cmd_deps(args: argparse.Namespace) -> int:
    from reconciler.engine import run_deps

    return run_deps(args)
