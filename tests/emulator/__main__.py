"""``python -m tests.emulator``: run the emulator until SIGTERM/SIGINT (exit 0).

Once it listens it writes ``DIR/emulator.json`` = ``{"base_url", "ca_bundle", "admin_url", "pid", "env"}``
atomically (temporary file, then rename), and removes it again on a clean exit.

``--seed-config FILE`` is the sandbox: it seeds what FILE points at and writes ``DIR/sandbox.yaml`` (FILE pointed
at the emulator) and ``DIR/env.sh`` (the variables to export), then prints how to run amlfw against it. An invalid
FILE gives amlfw's own one-line error and exit 1, before anything listens.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from .api import Emulator
from .reference import ReferenceDataMissingError

DEFAULT_STATE_DIR = ".amlfw-run/emulator"


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--state-dir", default=DEFAULT_STATE_DIR, help="where emulator.json and ca.pem go")
    parser.add_argument("--op-duration", type=float, default=0.0, help="seconds a long-running operation takes")
    parser.add_argument("--page-size", type=int, default=2)
    parser.add_argument("--conflict-status", type=int, choices=(409, 429), default=409)
    parser.add_argument("--retry-after", type=float, default=1.0,
                        help="seconds in Retry-After on 201/202, polls and 429 conflicts (Azure: whole seconds)")
    parser.add_argument("--policy-settle", type=float, default=0.0,
                        help="seconds the policy stays Updating after a child operation ended")
    parser.add_argument("--sync-validation", action="store_true",
                        help="answer rule-level validation errors with 400 instead of an operation that ends Failed")
    parser.add_argument("--ignore-if-match", action="store_true",
                        help="ignore If-Match and If-None-Match, as the Network RP has been reported to do")
    parser.add_argument("--seed-examples", action="store_true", help="seed the official examples")
    parser.add_argument("--seed-config", metavar="FILE",
                        help="sandbox: seed what this amlfw config points at; write DIR/sandbox.yaml and DIR/env.sh")
    parser.add_argument("--catalogue-dir", metavar="DIR", help="catalogue for --seed-config (default: amlfw's)")
    parser.add_argument("--verbose", action="store_true", help="log every request (never tokens)")
    return parser.parse_args(argv)


def write_state_file(emulator: Emulator, state_dir: Path) -> Path:
    info = {
        "base_url": emulator.base_url,
        "ca_bundle": emulator.ca_bundle,
        "admin_url": emulator.admin_url,
        "pid": os.getpid(),
        "env": emulator.env(),
    }
    target = state_dir / "emulator.json"
    temporary = state_dir / f".emulator.json.{os.getpid()}.tmp"
    temporary.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    temporary.replace(target)
    return target


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING, format="%(asctime)s %(message)s")
    state_dir = Path(args.state_dir).resolve()
    state_dir.mkdir(parents=True, exist_ok=True)
    stop = threading.Event()

    def request_stop(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, request_stop)
    signal.signal(signal.SIGINT, request_stop)
    try:
        emulator = Emulator(
            host=args.host,
            port=args.port,
            op_duration=args.op_duration,
            page_size=args.page_size,
            conflict_status=args.conflict_status,
            retry_after=args.retry_after,
            policy_settle=args.policy_settle,
            sync_validation=args.sync_validation,
            honor_if_match=not args.ignore_if_match,
            state_dir=state_dir,
        )
    except ReferenceDataMissingError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    with emulator:
        if args.seed_examples:
            emulator.seed_examples()
        if args.seed_config:
            from reconciler.errors import AmlfwError

            from .sandbox import seed_config

            try:
                sandbox = seed_config(emulator, Path(args.seed_config), state_dir,
                                      Path(args.catalogue_dir) if args.catalogue_dir else None)
            except (AmlfwError, LookupError) as exc:
                print(f"error: {exc}", file=sys.stderr)
                return 1
            here = Path.cwd()

            def shown(path: Path) -> str:
                return str(path.relative_to(here)) if path.is_relative_to(here) else str(path)

            print(f"emulator listening on {emulator.base_url}; seeded:", *(f"  {line}" for line in sandbox.seeded),
                  "try your configuration against it (in another shell, from this folder):",
                  f"  . {shown(sandbox.env_file)}",
                  f"  amlfw plan --config {shown(sandbox.config)}",
                  f"  amlfw apply --config {shown(sandbox.config)}      # shows the plan again, asks, writes",
                  "stop the emulator with Ctrl-C", sep="\n", flush=True)
        state_file = write_state_file(emulator, state_dir)
        try:
            while not stop.wait(0.2):
                pass
        finally:
            state_file.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
