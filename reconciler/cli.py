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
    from reconciler.render.servicetags import TagIndex

EXIT_OK, EXIT_ERROR, EXIT_DRIFT = 0, 1, 2


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on usage errors; 2 means drift here, so usage errors exit 1."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_ERROR, f"error: {message}\n")


class _VersionAction(argparse.Action):
    """`amlfw [--catalogue-dir DIR] --version`: the package version, then the catalogue versions and where they are.

    Exit 0; exit 1 with one line on stderr when the catalogue cannot be found (the version line is printed first).
    """

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: object) -> None:
        super().__init__(option_strings, dest, nargs=0, help=str(kwargs.get("help") or ""))

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: object,
                 option_string: str | None = None) -> None:
        from reconciler.catalogue import CatalogueStore

        print(f"amlfw {__version__}")
        directory = getattr(namespace, "catalogue_dir", None)
        store = CatalogueStore(Path(directory) if directory else None)
        try:
            versions = store.versions()
        except AmlfwError as exc:
            print(f"error: {exc}", file=sys.stderr)
            parser.exit(EXIT_ERROR)
        print(f"catalogue {', '.join(versions) or '(none)'} ({store.root})")
        parser.exit(EXIT_OK)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="amlfw", description="Keep an Azure Firewall Policy in step with what Azure Machine "
                "Learning needs.")
    p.add_argument("--version", action=_VersionAction,
                   help="print the version and the catalogue versions it ships, then exit")
    p.add_argument("--catalogue-dir", metavar="DIR",
                   help="endpoint catalogue directory (default: $AMLFW_CATALOGUE_DIR, else the catalogue shipped "
                        "with amlfw)")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    r = sub.add_parser("render", help="compile a configuration into rules, offline")
    _config_arg(r)
    r.add_argument("--format", choices=("arm", "table", "csv", "json", "squid", "nftables", "paloalto-edl",
                                        "managed-network"), default="table",
                   help="arm: rule collection groups as PUT; table: human view; csv/json: allow-list; squid, "
                        "nftables, paloalto-edl, managed-network: exports for other enforcement points")
    _out_arg(r, "write the rendering to FILE instead of stdout (only on success); for paloalto-edl and "
             "managed-network, a directory that receives one file per list", legacy=True)
    r.add_argument("--service-tags", action="append", metavar="FILE",
                   help="Microsoft's ServiceTags_*.json for a cloud of the configuration (repeatable); needed by "
                        "nftables and paloalto-edl")
    _target_arg(r)
    r.set_defaults(func=cmd_render)

    c = sub.add_parser("catalogue", help="inspect and validate the endpoint catalogue")
    csub = c.add_subparsers(dest="catalogue_command", metavar="SUBCOMMAND", parser_class=_Parser)
    csub.required = True
    cl = csub.add_parser("list", help="list catalogue entries")
    cl.add_argument("--cloud", choices=("AzureCloud", "AzureUSGovernment", "AzureChinaCloud"),
                    help="only entries of this cloud")
    cl.add_argument("--feature", action="append", metavar="FEATURE",
                    help="entries needed by this feature (baseline entries included; repeatable: the union)")
    cl.add_argument("--version", dest="catalogue_version", metavar="VERSION",
                    help="catalogue version (default: the newest)")
    cl.add_argument("--format", choices=("table", "json"), default="table", help="output format")
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
    cd.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    cd.set_defaults(func=cmd_catalogue_diff)

    dp = sub.add_parser("deps", help="check each workspace's own dependency list (Azure ML API) against the "
                        "compiled rules; read-only (exit 0 covered, 2 gaps, 1 error)")
    _config_arg(dp)
    _format_arg(dp, ("text", "json"), "text", legacy=True)
    _target_arg(dp)
    dp.set_defaults(func=cmd_deps)

    pl = sub.add_parser("plan", help="the complete plan for every target, read-only; --out saves it for apply "
                        "(exit 0 in sync, 2 changes, 1 error)")
    _config_arg(pl)
    _out_arg(pl, "save the plan (JSON, with the exact bodies and the state they were planned against) to FILE")
    _report_args(pl)
    pl.set_defaults(func=cmd_plan)

    ap = sub.add_parser("apply", help="write a saved plan exactly (refused if stale), or plan, show, confirm "
                        "and write")
    _config_arg(ap)
    ap.add_argument("planfile", nargs="?", metavar="PLANFILE", help="a plan saved by `amlfw plan --out`")
    ap.add_argument("--auto-approve", action="store_true",
                    help="without PLANFILE: apply without asking (needed when there is no terminal)")
    _report_args(ap)
    ap.set_defaults(func=cmd_apply)

    dm = sub.add_parser("daemon", help="the long-running service: every target on an interval, health and metrics")
    _config_arg(dm)
    dm.add_argument("--dry-run", action="store_true", help="report drift only; never writes")
    _daemon_args(dm, max_workers=True)
    dm.set_defaults(func=cmd_daemon, once=False, format="text", color="never")

    rc = sub.add_parser("reconcile", help="one pass with --once (--dry-run: drift report, exit 0/2/1); without "
                        "--once an alias of `amlfw daemon`")
    _config_arg(rc)
    rc.add_argument("--once", action="store_true", help="one pass over every target, then exit")
    rc.add_argument("--dry-run", action="store_true",
                    help="report drift only; never writes (exit 0 in sync, 2 drift, 1 error)")
    _report_args(rc, legacy=True)
    _daemon_args(rc, max_workers=False)
    rc.set_defaults(func=cmd_reconcile)
    return p


def _config_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", required=True, metavar="FILE", help="the amlfw configuration (YAML)")


def _target_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--target", action="append", metavar="NAME",
                        help="only this target of a fleet (repeatable; default: every target)")


def _out_arg(parser: argparse.ArgumentParser, text: str, *, legacy: bool = False) -> None:
    parser.add_argument("--out", metavar="FILE", help=text)
    if legacy:  # the old spelling of `render --out`, kept for one release
        parser.add_argument("--output", dest="out", metavar="FILE", help=argparse.SUPPRESS,
                            default=argparse.SUPPRESS)


def _format_arg(parser: argparse.ArgumentParser, choices: tuple[str, ...], default: str, *,
                legacy: bool = False) -> None:
    parser.add_argument("--format", choices=choices, default=default, help="report format")
    if legacy:  # the old spelling (`reconcile --output json`), kept for one release
        parser.add_argument("--output", dest="format", choices=choices, help=argparse.SUPPRESS,
                            default=argparse.SUPPRESS)


def _report_args(parser: argparse.ArgumentParser, *, legacy: bool = False) -> None:
    _format_arg(parser, ("text", "json", "markdown"), "text", legacy=legacy)
    parser.add_argument("--color", choices=("auto", "always", "never"), default="auto",
                        help="colour the text report (auto: on a terminal, unless NO_COLOR is set)")
    parser.add_argument("--max-workers", type=int, metavar="N", help="targets reconciled at once (default 4)")
    _target_arg(parser)


def _daemon_args(parser: argparse.ArgumentParser, *, max_workers: bool) -> None:
    parser.add_argument("--interval", type=float, metavar="SECONDS", help="daemon: seconds between passes")
    parser.add_argument("--listen", metavar="HOST:PORT", help="daemon: health and metrics address")
    if max_workers:  # `reconcile` has it already, from the report flags
        parser.add_argument("--max-workers", type=int, metavar="N", help="daemon: targets reconciled at once")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "reconcile" and args.once:
        given = [flag for flag, dest in (("--interval", "interval"), ("--listen", "listen"))
                 if getattr(args, dest, None) is not None]
        if given:
            parser.error(f"{given[0]} is a daemon flag; it has no effect with --once (use `amlfw daemon`)")
    if args.command == "reconcile" and not args.once:
        print("note: `amlfw reconcile` without --once runs the daemon; `amlfw daemon` is its name now",
              file=sys.stderr)
    if args.command in ("reconcile", "daemon") and not args.once and hasattr(signal, "SIGHUP"):
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


def emit(text: str, output: str | None) -> None:
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

    export = args.format not in ("arm", "table", "csv", "json")
    if args.service_tags and not export:
        raise UserError("--service-tags", "", f"not used by --format {args.format}")
    tags = _read_service_tags(args.service_tags or []) if export else []  # bad input first, before any warning
    _, pairs = load_and_compile(args.config, args.catalogue_dir)
    for _, d in pairs:
        for w in d.warnings:
            print(str(w), file=sys.stderr)
    from reconciler.engine import select_targets

    pairs = select_targets(pairs, args.target)
    if not export:
        renderer = {"arm": r.render_arm, "table": r.render_table, "csv": r.render_csv, "json": r.render_allow_json}
        emit(renderer[args.format](pairs), args.out)
        sys.stderr.write(r.breadth_summary(pairs) + "\n")
        return EXIT_OK
    return _render_export(args, pairs, tags)


def _read_service_tags(paths: Sequence[str]) -> list[TagIndex]:
    """Parse each --service-tags FILE: one line naming the file, key and reason on any problem."""
    import json

    from reconciler.render.servicetags import ServiceTagFileError, parse_service_tags

    out: dict[str, TagIndex] = {}
    for path in paths:
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as exc:
            raise UserError(path, "", f"cannot read file: {exc.strerror or exc}") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise UserError(path, "", f"not JSON: {exc}") from None
        try:
            index = parse_service_tags(doc)
        except ServiceTagFileError as exc:
            key, _, reason = str(exc).partition(": ")
            raise UserError(path, key, reason) from None
        if index.cloud in out:
            raise UserError(path, "cloud", f"a second service-tag file for {index.cloud}")
        out[index.cloud] = index
    return list(out.values())


def _generated_at() -> str:
    """The export's time stamp: SOURCE_DATE_EPOCH when set (reproducible output), else now; UTC, seconds."""
    import datetime as dt

    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        try:
            when = dt.datetime.fromtimestamp(int(epoch), dt.UTC)
        except (ValueError, OverflowError, OSError):
            raise UserError("SOURCE_DATE_EPOCH", "", f"not a Unix time: {epoch!r}") from None
    else:
        when = dt.datetime.now(dt.UTC).replace(microsecond=0)
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


def _render_export(args: argparse.Namespace, pairs: list[tuple[Target, DesiredTarget]],
                   tags: list[TagIndex]) -> int:
    from reconciler.render import exports as x

    try:
        config_bytes = Path(args.config).read_bytes()
    except OSError as exc:
        raise UserError(args.config, "", f"cannot read file: {exc.strerror or exc}") from None
    stamp = x.stamp_for(pairs, config_bytes, _generated_at())
    try:
        files = x.render_export(args.format, pairs, stamp, tags)
    except x.ExportError as exc:
        key, _, reason = str(exc).partition(": ")
        raise UserError(key, "", reason) from None
    if args.out is None or args.format in ("squid", "nftables"):
        emit(x.concatenate(files), args.out)
        return EXIT_OK
    out_dir = Path(args.out)
    if out_dir.exists() and not out_dir.is_dir():
        raise UserError(args.out, "", f"--format {args.format} writes several files: give a directory")
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(args.out, "", f"cannot create directory: {exc.strerror or exc}") from None
    for name, text in files:
        emit(text, str(out_dir / name))
    return EXIT_OK


def cmd_catalogue_list(args: argparse.Namespace) -> int:
    import json

    from reconciler.compile import select_entries

    store = _store(args)
    try:
        cat = store.get(args.catalogue_version)
    except LookupError as exc:
        raise UserError("--version", "", str(exc).strip("'\"")) from None
    for feature in args.feature or []:
        if feature not in cat.feature_names:
            raise UserError("--feature", "", f"unknown feature {feature!r} "
                            f"(expected one of {', '.join(sorted(cat.feature_names))})")
    entries = list(cat.entries)
    if args.feature:
        clouds = [args.cloud] if args.cloud else ["AzureCloud", "AzureUSGovernment", "AzureChinaCloud"]
        wanted = cat.with_implied(set(args.feature))
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


def cmd_plan(args: argparse.Namespace) -> int:
    from reconciler.engine import run_plan

    return run_plan(args)


def cmd_apply(args: argparse.Namespace) -> int:
    from reconciler.engine import run_apply

    return run_apply(args)


def cmd_daemon(args: argparse.Namespace) -> int:
    from reconciler.engine import run_reconcile

    return run_reconcile(args)


def cmd_reconcile(args: argparse.Namespace) -> int:
    from reconciler.engine import run_reconcile

    return run_reconcile(args)


def cmd_deps(args: argparse.Namespace) -> int:
    from reconciler.engine import run_deps

    return run_deps(args)
