"""One reconcile pass per target: observe -> plan (+ pre-flight) -> report or apply. The shell.

`reconcile_target` is level-triggered: it re-reads the world each time and ends in one of four outcomes,
`in_sync`, `drift` (dry-run), `applied`, or `error`. The dry-run path never constructs a writer.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import structlog

from reconciler.arm import group_to_arm
from reconciler.config import Target
from reconciler.errors import AmlfwError, AzureError, excerpt
from reconciler.execute import RetrySettings, apply_plan
from reconciler.logs import EVENT_PASS_FINISHED
from reconciler.model import DesiredTarget, RuleCollectionGroup
from reconciler.plan import ObservedGroup, ObservedPolicy, Outcome, PlanInput, TargetPlan, plan
from reconciler.render.desired import policy_id

log = structlog.get_logger("amlfw")
BUSY_STATES = ("updating", "deleting", "creating")


@dataclass(frozen=True, slots=True)
class Hooks:
    """Callbacks the daemon uses for metrics; all optional."""

    on_response: Callable[[str, int, dict[str, str]], None] | None = None
    on_retry: Callable[[str, BaseException], None] | None = None
    may_write: Callable[[], bool] | None = None  # HA lease: False means stay passive


def measure(group: RuleCollectionGroup) -> int:
    return len(json.dumps(group_to_arm(group), separators=(",", ":")).encode("utf-8"))


def retry_settings(target: Target) -> RetrySettings:
    a = target.azure
    return RetrySettings(attempts=a.write_attempts, initial_delay=a.write_backoff_initial,
                         max_delay=a.write_backoff_max, total_seconds=a.write_timeout, settle_poll=a.settle_poll,
                         settle_timeout=max(a.write_timeout / 2, a.settle_poll))


def plan_input(target: Target, desired: DesiredTarget, observed: ObservedPolicy) -> PlanInput:
    return PlanInput(target=target.name, policy_id=policy_id(target), route_prefix=target.route_prefix,
                     desired=desired, observed=observed, limits=target.limits,
                     route_table_configured=target.route_table is not None, source_file=target.source_file)


def reconcile_target(target: Target, desired: DesiredTarget, *, dry_run: bool, hooks: Hooks | None = None) -> Outcome:
    """One level-triggered pass over one target. Never raises for Azure or plan trouble: returns an Outcome."""
    from reconciler.azure.clients import build_clients
    from reconciler.azure.observe import AzureReader

    hooks = hooks or Hooks()
    started = time.monotonic()
    bound = log.bind(target=target.name)
    the_plan: TargetPlan | None = None
    outcome: Outcome
    try:
        with build_clients(target, on_response=hooks.on_response) as clients:
            reader = AzureReader(target, clients)
            observed = reader.observe()
            the_plan = plan(plan_input(target, desired, observed), measure)
            if the_plan.drift and observed.exists:
                # pre-flight facts are read only when there is something to write
                rg_exists, provider = reader.account_facts()
                missing = reader.missing_ip_groups(desired.requirements.source_ip_groups)
                observed = replace(observed, resource_group_exists=rg_exists, network_provider_state=provider,
                                   missing_ip_groups=missing)
                the_plan = plan(plan_input(target, desired, observed), measure)
            bound.info("plan.computed", action=the_plan.group_action, drift=the_plan.drift,
                       errors=[e.code for e in the_plan.errors], **the_plan.counts)
            if not the_plan.applyable:
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
                    return plan(plan_input(target, desired, replace(base_observed, owned=live)), measure)

                result = apply_plan(
                    the_plan, reader=reader, writer=writer, replan=replan, route_table=target.route_table,
                    settings=retry_settings(target),
                    policy_busy=(observed.provisioning_state or "").lower() in BUSY_STATES,
                    on_retry=hooks.on_retry,
                )
                outcome = Outcome(target.name, "applied", result.plan or the_plan,
                                  group_written=result.group_written, routes_written=result.routes_written,
                                  retries=result.retries)
    except AzureError as exc:
        bound.error("azure.error", error=str(exc), status=exc.status, code=exc.code, request_id=exc.request_id)
        outcome = Outcome(target.name, "error", the_plan, error=exc.describe())
    except AmlfwError as exc:
        outcome = Outcome(target.name, "error", the_plan, error=str(exc))
    except Exception as exc:  # noqa: BLE001 - the error boundary: one target's surprise never ends the fleet's pass
        message = f"unexpected {type(exc).__name__}: {excerpt(str(exc), 120)}"
        bound.error("pass.unexpected_error", error=message)
        outcome = Outcome(target.name, "error", the_plan, error=message)
    duration_ms = int((time.monotonic() - started) * 1000)
    outcome = replace(outcome, duration_ms=duration_ms)
    counts = outcome.plan.counts if outcome.plan else {}
    bound.info(EVENT_PASS_FINISHED, outcome=outcome.status, duration_ms=duration_ms,
               group_written=outcome.group_written, routes_written=outcome.routes_written,
               retries=outcome.retries, error=outcome.error, dry_run=dry_run, **counts)
    return outcome


def reconcile_all(pairs: Sequence[tuple[Target, DesiredTarget]], *, dry_run: bool, max_workers: int = 4,
                  hooks: Hooks | None = None) -> list[Outcome]:
    """Every target once, concurrently (writes to one policy stay serial through execute's locks)."""
    if len(pairs) == 1 or max_workers <= 1:
        return [reconcile_target(t, d, dry_run=dry_run, hooks=hooks) for t, d in pairs]
    with ThreadPoolExecutor(max_workers=min(max_workers, len(pairs)), thread_name_prefix="amlfw") as pool:
        futures = [pool.submit(reconcile_target, t, d, dry_run=dry_run, hooks=hooks) for t, d in pairs]
        return [f.result() for f in futures]


def exit_code(outcomes: Sequence[Outcome], *, dry_run: bool) -> int:
    if any(o.status == "error" for o in outcomes):
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


def run_reconcile(args: argparse.Namespace) -> int:
    """`amlfw reconcile`: --once (with or without --dry-run) here; the daemon lives in reconciler.daemon."""
    from reconciler import logs
    from reconciler.cli import load_and_compile

    logs.configure()
    _, pairs = load_and_compile(args.config, args.catalogue_dir)
    for _, d in pairs:
        for w in d.warnings:
            log.warning("compile.warning", target=w.target, workspace=w.workspace, code=w.code,
                        entry_id=w.entry_id, message=w.message)
    if not args.once:
        from reconciler.daemon import run_daemon

        return run_daemon(args, pairs)
    outcomes = reconcile_all(pairs, dry_run=args.dry_run, max_workers=args.max_workers or 4)
    color = args.color == "always" or (args.color == "auto" and sys.stdout.isatty())
    sys.stdout.write(render_outcomes(outcomes, args.output, dry_run=args.dry_run, color=color))
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
    render = render_deps_json if args.output == "json" else render_deps_text
    sys.stdout.write(render(checks, skipped, errors))
    if errors:
        return 1
    return 2 if any(not c.covered for c in checks) else 0
