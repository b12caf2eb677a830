"""One reconcile pass per target: observe -> plan (+ pre-flight) -> report or apply. The shell.

`reconcile_target` is level-triggered: it re-reads the world each time and ends in one of four outcomes,
`in_sync`, `drift` (dry-run), `applied`, or `error`. The dry-run path never constructs a writer.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import structlog

from reconciler.arm import group_to_arm
from reconciler.config import Target
from reconciler.errors import AmlfwError, AzureError, StalePlanError, UserError, excerpt
from reconciler.execute import ApplyResult, RetrySettings, apply_plan
from reconciler.logs import EVENT_PASS_FINISHED
from reconciler.model import DesiredTarget, Route, RuleCollectionGroup
from reconciler.plan import ObservedGroup, ObservedPolicy, Outcome, PlanInput, TargetPlan, plan
from reconciler.planfile import SavedTarget, stale_reason
from reconciler.render.desired import policy_id

log = structlog.get_logger("amlfw")
BUSY_STATES = ("updating", "deleting", "creating")


@dataclass(frozen=True, slots=True)
class Hooks:
    """Callbacks the daemon uses for metrics; all optional."""

    on_response: Callable[[str, int, dict[str, str]], None] | None = None
    on_retry: Callable[[str, BaseException], None] | None = None
    may_write: Callable[[], bool] | None = None  # HA lease: False means stay passive
    progress: Callable[[str, str], None] | None = None  # (target, line): phases and "still updating" lines


def measure(group: RuleCollectionGroup) -> int:
    return len(json.dumps(group_to_arm(group), separators=(",", ":")).encode("utf-8"))


def retry_settings(target: Target) -> RetrySettings:
    a = target.azure
    return RetrySettings(attempts=a.write_attempts, initial_delay=a.write_backoff_initial,
                         max_delay=a.write_backoff_max, total_seconds=a.write_timeout, settle_poll=a.settle_poll,
                         settle_timeout=max(a.write_timeout / 2, a.settle_poll), poll_interval=a.polling_interval,
                         progress_interval=a.progress_interval)


def live_tag_check(target: Target, desired: DesiredTarget,
                   served: Callable[[str], frozenset[str]]) -> tuple[str, ...]:
    """Pre-flight: the desired service tags against what the Service Tags API serves in each workspace's region."""
    from reconciler.catalogue.tagcheck import unknown_tags

    found: dict[str, str] = {}
    for region in sorted({ws.region.lower() for ws in target.workspaces}):  # one GET per region, cached per pass
        for tag, message in unknown_tags(desired, served(region), region):
            found.setdefault(tag, message)
    return tuple(found.values())


def plan_input(target: Target, desired: DesiredTarget, observed: ObservedPolicy) -> PlanInput:
    return PlanInput(target=target.name, policy_id=policy_id(target), route_prefix=target.route_prefix,
                     desired=desired, observed=observed, limits=target.limits,
                     route_table_configured=target.route_table is not None, source_file=target.source_file)


def owned_routes(target: Target, observed: ObservedPolicy) -> tuple[Route, ...]:
    prefix = target.route_prefix.lower()
    return tuple(r for r in observed.routes or () if r.name.lower().startswith(prefix))


def reconcile_target(target: Target, desired: DesiredTarget, *, dry_run: bool, hooks: Hooks | None = None,
                     expect: SavedTarget | None = None) -> Outcome:
    """One level-triggered pass over one target. Never raises for Azure or plan trouble: returns an Outcome.

    With `expect` (a saved plan's target), it writes only what the plan recorded, and only while the live state
    is the one the plan observed: otherwise the outcome is an error saying the plan is stale, and nothing is
    written (also when the group moves between this check and the PUT: the write path re-checks).
    """
    from reconciler.azure.clients import build_clients
    from reconciler.azure.observe import AzureReader

    hooks = hooks or Hooks()
    started = time.monotonic()
    bound = log.bind(target=target.name)
    the_plan: TargetPlan | None = None
    routes_seen: tuple[Route, ...] = ()
    outcome: Outcome
    try:
        say = _progress_for(hooks, target.name) or (lambda _line: None)
        with build_clients(target, on_response=hooks.on_response) as clients:
            reader = AzureReader(target, clients)
            say("observing the live policy")
            observed = reader.observe()
            say("planning")
            the_plan = plan(plan_input(target, desired, observed), measure)
            if the_plan.drift and observed.exists:
                # pre-flight facts are read only when there is something to write
                rg_exists, provider = reader.account_facts()
                missing = reader.missing_ip_groups(desired.requirements.source_ip_groups)
                unknown = live_tag_check(target, desired, reader.service_tag_names)
                observed = replace(observed, resource_group_exists=rg_exists, network_provider_state=provider,
                                   missing_ip_groups=missing, unknown_service_tags=unknown)
                the_plan = plan(plan_input(target, desired, observed), measure)
            bound.info("plan.computed", action=the_plan.group_action, drift=the_plan.drift,
                       errors=[e.code for e in the_plan.errors], **the_plan.counts)
            routes_seen = owned_routes(target, observed)
            stale = stale_reason(expect, the_plan, routes_seen) if expect is not None else None
            if stale is not None:
                outcome = Outcome(target.name, "error", the_plan, error=stale, observed_routes=routes_seen)
            elif not the_plan.applyable:
                outcome = Outcome(target.name, "error", the_plan,
                                  error="; ".join(e.message for e in the_plan.errors if e.blocking))
            elif not the_plan.drift:
                outcome = Outcome(target.name, "in_sync", the_plan)
            elif dry_run:
                outcome = Outcome(target.name, "drift", the_plan)
            elif hooks.may_write is not None and not hooks.may_write():
                outcome = Outcome(target.name, "drift", the_plan, error="passive: this replica holds no lease")
            else:
                from reconciler.azure.write import AzureWriter

                writer = AzureWriter(target, clients)
                base_observed = observed

                def replan(live: ObservedGroup | None) -> TargetPlan:
                    fresh = plan(plan_input(target, desired, replace(base_observed, owned=live)), measure)
                    if expect is not None:
                        reason = stale_reason(expect, fresh, routes_seen)
                        if reason is not None:
                            raise StalePlanError(reason)
                    return fresh

                result = apply_plan(
                    the_plan, reader=reader, writer=writer, replan=replan, route_table=target.route_table,
                    settings=retry_settings(target),
                    policy_busy=(observed.provisioning_state or "").lower() in BUSY_STATES,
                    on_retry=hooks.on_retry, fence=hooks.may_write,
                    progress=_progress_for(hooks, target.name),
                )
                outcome = Outcome(target.name, "applied", result.plan or the_plan,
                                  group_written=result.group_written, routes_written=result.routes_written,
                                  retries=result.retries, routes_done=tuple(result.routes_done))
    except AzureError as exc:
        bound.error("azure.error", error=str(exc), status=exc.status, code=exc.code, request_id=exc.request_id)
        outcome = _failed(target.name, the_plan, exc, exc.describe())
    except AmlfwError as exc:
        outcome = _failed(target.name, the_plan, exc, str(exc))
    except Exception as exc:  # noqa: BLE001 - the error boundary: one target's surprise never ends the fleet's pass
        message = f"unexpected {type(exc).__name__}: {excerpt(str(exc), 120)}"
        bound.error("pass.unexpected_error", error=message)
        outcome = Outcome(target.name, "error", the_plan, error=message)
    duration_ms = int((time.monotonic() - started) * 1000)
    outcome = replace(outcome, duration_ms=duration_ms)
    if not outcome.observed_routes and routes_seen:
        outcome = replace(outcome, observed_routes=routes_seen)
    counts = outcome.plan.counts if outcome.plan else {}
    bound.info(EVENT_PASS_FINISHED, outcome=outcome.status, duration_ms=duration_ms,
               group_written=outcome.group_written, routes_written=outcome.routes_written,
               retries=outcome.retries, error=outcome.error, dry_run=dry_run, **counts)
    return outcome


def _progress_for(hooks: Hooks, name: str) -> Callable[[str], None] | None:
    report = hooks.progress
    if report is None:
        return None

    def line(text: str) -> None:
        report(name, text)

    return line


def _failed(name: str, the_plan: TargetPlan | None, exc: AmlfwError, message: str) -> Outcome:
    """An error outcome; `partial` when part of the plan was written before the failure (exactly what is said)."""
    applied = exc.applied if isinstance(exc.applied, ApplyResult) else None
    if applied is None or not (applied.group_written or applied.routes_written):
        return Outcome(name, "error", the_plan, error=message, retries=applied.retries if applied else 0)
    return Outcome(name, "partial", applied.plan or the_plan, error=message, group_written=applied.group_written,
                   routes_written=applied.routes_written, retries=applied.retries,
                   routes_done=tuple(applied.routes_done))


def reconcile_all(pairs: Sequence[tuple[Target, DesiredTarget]], *, dry_run: bool, max_workers: int = 4,
                  hooks: Hooks | None = None, expect: dict[str, SavedTarget] | None = None) -> list[Outcome]:
    """Every target once, concurrently (writes to one policy stay serial through execute's locks)."""
    def one(t: Target, d: DesiredTarget) -> Outcome:
        return reconcile_target(t, d, dry_run=dry_run, hooks=hooks, expect=(expect or {}).get(t.name))

    if len(pairs) == 1 or max_workers <= 1:
        return [one(t, d) for t, d in pairs]
    with ThreadPoolExecutor(max_workers=min(max_workers, len(pairs)), thread_name_prefix="amlfw") as pool:
        futures = [pool.submit(one, t, d) for t, d in pairs]
        return [f.result() for f in futures]


def exit_code(outcomes: Sequence[Outcome], *, dry_run: bool) -> int:
    if any(o.status in ("error", "partial") for o in outcomes):
        return 1
    if dry_run and any(o.status == "drift" for o in outcomes):
        return 2
    return 0


def render_outcomes(outcomes: Sequence[Outcome], fmt: str, *, dry_run: bool, color: bool) -> str:
    from reconciler.render import report

    mode = "dry-run" if dry_run else "apply"
    if fmt == "json":
        return report.render_json(outcomes, mode=mode, generated_at=datetime.now(UTC).isoformat(timespec="seconds"))
    if fmt == "markdown":
        return report.render_markdown(outcomes, mode=mode)
    return report.render_text(outcomes, color=color, applied=not dry_run)


def cli_hooks() -> Hooks:
    """One-shot commands: phase and "still updating" lines on stderr, prefixed by the target."""

    def progress(target: str, line: str) -> None:
        print(f"{target}: {line}", file=sys.stderr, flush=True)

    return Hooks(progress=progress)


def use_color(choice: str) -> bool:
    """`--color always|never|auto`; auto means a terminal, unless NO_COLOR is set (https://no-color.org)."""
    if choice != "auto":
        return choice == "always"
    return sys.stdout.isatty() and not os.environ.get("NO_COLOR")


def run_reconcile(args: argparse.Namespace) -> int:
    """`amlfw reconcile`: --once (with or without --dry-run) here; the daemon lives in reconciler.daemon."""
    pairs = _compile(args)
    if not args.once:
        from reconciler.daemon import run_daemon

        return run_daemon(args, pairs)
    outcomes = reconcile_all(pairs, dry_run=args.dry_run, max_workers=args.max_workers or 4, hooks=cli_hooks())
    color = use_color(args.color)
    sys.stdout.write(render_outcomes(outcomes, args.format, dry_run=args.dry_run, color=color))
    sys.stdout.flush()
    return exit_code(outcomes, dry_run=args.dry_run)


def run_deps(args: argparse.Namespace) -> int:
    """`amlfw deps`: compare each workspace's own dependency list with the compiled rules. Read-only."""
    from reconciler import logs
    from reconciler.azure.clients import build_clients
    from reconciler.azure.observe import AzureReader
    from reconciler.cli import load_and_compile
    from reconciler.deps import DependencyCheck, check_dependencies, parse_dependencies
    from reconciler.render.deps import render_deps_json, render_deps_text

    logs.configure()
    _, pairs = load_and_compile(args.config, args.catalogue_dir)
    pairs = select_targets(pairs, getattr(args, "target", None))
    checks: list[DependencyCheck] = []
    skipped: list[str] = []
    errors: list[str] = []
    for target, desired in pairs:
        workspaces = [w for w in target.workspaces if w.resource_group]
        skipped += [f"{target.name}/{w.name}: set workspaces[].resource_group to check it"
                    for w in target.workspaces if not w.resource_group]
        if not workspaces:
            continue
        with build_clients(target) as clients:
            reader = AzureReader(target, clients)
            for w in workspaces:
                assert w.resource_group is not None
                try:
                    body = reader.workspace_dependencies(w.subscription_id or target.subscription_id,
                                                         w.resource_group, w.name)
                except AzureError as exc:
                    errors.append(f"{target.name}/{w.name}: {exc.describe()}")
                    continue
                checks += check_dependencies(desired, w.name, parse_dependencies(body))
    render = render_deps_json if args.format == "json" else render_deps_text
    sys.stdout.write(render(checks, skipped, errors))
    if errors:
        return 1
    if not checks:
        print("error: nothing was checked: no workspace has resource_group set (deps needs it to find the "
              "workspace)", file=sys.stderr)
        return 1
    return 2 if any(not c.covered for c in checks) else 0


# ---------------------------------------------------------------------------------------------- plan / apply


def select_targets(pairs: list[tuple[Target, DesiredTarget]], names: Sequence[str] | None
                   ) -> list[tuple[Target, DesiredTarget]]:
    """`--target NAME` (repeatable): only those targets of a fleet; an unknown name is a usage error."""
    if not names:
        return pairs
    known = {t.name: (t, d) for t, d in pairs}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise UserError("--target", "", f"unknown target {unknown[0]!r} (targets: {', '.join(known)})")
    return [known[n] for n in dict.fromkeys(names)]


def _sha256_file(path: str) -> str:
    import hashlib

    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError as exc:
        raise UserError(path, "", f"cannot read file: {exc.strerror or exc}") from None


def catalogue_digests(catalogue_dir: str | None, versions: Sequence[str]) -> dict[str, str]:
    """sha256 over every file of each catalogue version (and the shared tag lists), in path order."""
    import hashlib

    from reconciler.catalogue import CatalogueStore

    root = CatalogueStore(Path(catalogue_dir) if catalogue_dir else None).root
    shared = sorted(p for p in root.glob("*.yaml") if p.is_file())
    out = {}
    for version in sorted(set(versions)):
        digest = hashlib.sha256()
        for path in [*shared, *sorted(p for p in (root / version).rglob("*") if p.is_file())]:
            digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
        out[version] = digest.hexdigest()
    return out


def _plan_doc(args: argparse.Namespace, pairs: list[tuple[Target, DesiredTarget]],
              outcomes: Sequence[Outcome]) -> dict[str, object]:
    from reconciler import __version__
    from reconciler.planfile import plan_document
    from reconciler.render import report

    now = datetime.now(UTC).isoformat(timespec="seconds")
    return plan_document(
        outcomes, {o.target: o.observed_routes for o in outcomes},
        report=json.loads(report.render_json(outcomes, mode="plan", generated_at=now)),
        amlfw_version=__version__, created_at=now, config_path=args.config,
        config_sha256=_sha256_file(args.config),
        catalogues=catalogue_digests(args.catalogue_dir, [t.catalogue_version for t, _ in pairs]))


def _compile(args: argparse.Namespace) -> list[tuple[Target, DesiredTarget]]:
    from reconciler import logs
    from reconciler.cli import load_and_compile

    logs.configure()
    _, pairs = load_and_compile(args.config, args.catalogue_dir)
    pairs = select_targets(pairs, getattr(args, "target", None))
    report_warnings(pairs)
    return pairs


def report_warnings(pairs: Sequence[tuple[Target, DesiredTarget]]) -> None:
    """Each distinct compile warning once (a log line naming the workspaces it concerns), then a one-line summary
    on stderr. Warnings whose code or catalogue entry id a target lists in `accept_warnings` are only counted."""
    distinct: dict[tuple[str, str | None, str], list[str]] = {}
    accepted = 0
    for target, d in pairs:
        known = set(target.accept_warnings)
        for w in d.warnings:
            if w.code in known or (w.entry_id is not None and w.entry_id in known):
                accepted += 1
                continue
            distinct.setdefault((w.code, w.entry_id, w.message), []).append(
                "/".join(p for p in (w.target, w.workspace) if p))
    for (code, entry_id, message), where in distinct.items():
        log.warning("compile.warning", code=code, entry_id=entry_id, message=message, where=sorted(set(where)))
    if distinct or accepted:
        codes: dict[str, int] = {}
        for code, _, _ in distinct:
            codes[code] = codes.get(code, 0) + 1
        shown = ", ".join(f"{c} x{n}" for c, n in sorted(codes.items())) or "none"
        print(f"compile warnings: {len(distinct)} shown ({shown}), {accepted} accepted in the configuration"
              + ("; acknowledge known ones with accept_warnings: [<code or entry id>, ...]" if distinct else ""),
              file=sys.stderr)


def run_plan(args: argparse.Namespace) -> int:
    """`amlfw plan`: the complete plan, read-only; `--out FILE` saves it for `amlfw apply`. Exit 0/2/1."""
    from reconciler.cli import emit

    pairs = _compile(args)
    outcomes = reconcile_all(pairs, dry_run=True, max_workers=args.max_workers or 4, hooks=cli_hooks())
    if args.out:
        emit(json.dumps(_plan_doc(args, pairs, outcomes), indent=2, ensure_ascii=False) + "\n", args.out)
    sys.stdout.write(render_outcomes(outcomes, args.format, dry_run=True, color=use_color(args.color)))
    if args.out and not any(o.status == "error" for o in outcomes):
        print(f"Saved the plan to {args.out}. To write exactly this: amlfw apply --config {args.config} "
              f"{args.out}", file=sys.stderr)
    return exit_code(outcomes, dry_run=True)


def _confirm(auto_approve: bool) -> bool:
    if auto_approve:
        return True
    if not (sys.stdin.isatty() and sys.stderr.isatty()):
        raise UserError("apply", "", "needs confirmation: run it on a terminal, pass --auto-approve, or apply a "
                        "saved plan (amlfw plan --out FILE, then amlfw apply --config F FILE); nothing was written")
    sys.stderr.write("\nApply these changes? Only 'yes' is accepted. (yes/no): ")
    sys.stderr.flush()
    return sys.stdin.readline().strip() == "yes"


def run_apply(args: argparse.Namespace) -> int:
    """`amlfw apply [PLANFILE]`: write a saved plan exactly, or plan, show, confirm and write that plan."""
    from reconciler import __version__
    from reconciler.planfile import SavedPlan, parse_plan, refusal

    pairs = _compile(args)
    color = use_color(args.color)
    saved: SavedPlan
    if args.planfile:
        try:
            text = Path(args.planfile).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise UserError(args.planfile, "", f"cannot read the plan file: {getattr(exc, 'strerror', None) or exc}"
                            ) from None
        saved = parse_plan(text, args.planfile)
        reason = refusal(saved, args.planfile, amlfw_version=__version__, config_sha256=_sha256_file(args.config),
                         catalogues=catalogue_digests(args.catalogue_dir, [t.catalogue_version for t, _ in pairs]))
        if reason:
            raise StalePlanError(f"{reason}; nothing was written")
        missing = [t.name for t, _ in pairs if saved.target(t.name) is None]
        if missing:
            raise StalePlanError(f"{args.planfile}: target {missing[0]} is not in the plan; nothing was written")
        if any(st is not None and st.status == "error" for st in (saved.target(t.name) for t, _ in pairs)):
            raise StalePlanError(f"{args.planfile}: the plan has targets in error; fix them and plan again; "
                                 "nothing was written")
    else:
        preview = reconcile_all(pairs, dry_run=True, max_workers=args.max_workers or 4, hooks=cli_hooks())
        sys.stdout.write(render_outcomes(preview, args.format, dry_run=True, color=color))
        sys.stdout.flush()
        if any(o.status == "error" for o in preview):
            return 1
        if not any(o.status == "drift" for o in preview):
            return 0
        if not _confirm(args.auto_approve):
            print("Apply cancelled; nothing was written.", file=sys.stderr)
            return 1
        saved = parse_plan(json.dumps(_plan_doc(args, pairs, preview)), "<the plan shown>")
    expect = {t.name: t for t in saved.targets if t.has_changes}
    todo = [(t, d) for t, d in pairs if t.name in expect]
    # first check every target against the plan, so that a stale one stops the apply before anything is written
    checks = reconcile_all(todo, dry_run=True, max_workers=args.max_workers or 4, expect=expect)
    stale = [o for o in checks if o.status == "error"]
    if stale:
        for o in stale:
            print(f"error: {o.target}: {o.error}", file=sys.stderr)
        print("Nothing was written.", file=sys.stderr)
        return 1
    outcomes = reconcile_all(todo, dry_run=False, max_workers=args.max_workers or 4, expect=expect,
                             hooks=cli_hooks())
    sys.stdout.write(render_outcomes(outcomes, args.format, dry_run=False, color=color))
    return exit_code(outcomes, dry_run=False)
