"""Azurite (Microsoft's Azure Storage emulator, npm package `azurite`) for the HA lease tests.

`ensure_installed()` installs a pinned Azurite with npm into `.amlfw-run/azurite/` of this checkout once
(about 30 s, from the npm registry; later runs reuse it) and returns the blob service's entry point.
`Azurite(...).start()` runs the blob service on a free loopback port with telemetry off, in a directory of its
own, and `.stop()` ends it. Tests skip only when npm itself is missing; a failed install is an error.

    python -m tests.azurite          # install only (e.g. to warm a CI cache)
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

REPO = Path(__file__).resolve().parents[1]
CACHE_DIR = REPO / ".amlfw-run" / "azurite"
AZURITE_VERSION = "3.35.0"  # the last release that runs on Node 20 (3.36.0 asks for Node >= 21)
ACCOUNT = "devstoreaccount1"
# Azurite's well-known development account key, published in its README; it guards nothing.
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
INSTALL_TIMEOUT = 600


class AzuriteUnavailableError(RuntimeError):
    """npm (or node) is not on this machine: the tests that need Azurite skip with this reason."""


def _installed(cache: Path) -> Path | None:
    package = cache / "node_modules" / "azurite" / "package.json"
    entry = cache / "node_modules" / "azurite" / "dist" / "src" / "blob" / "main.js"
    try:
        version = json.loads(package.read_text(encoding="utf-8")).get("version")
    except (OSError, ValueError):
        return None
    return entry if version == AZURITE_VERSION and entry.is_file() else None


def ensure_installed(cache: Path = CACHE_DIR) -> Path:
    """The path of Azurite's blob `main.js`, installing the pinned version first if needed."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        raise AzuriteUnavailableError("npm is not installed (the HA lease tests run Azurite from the npm registry)")
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # parallel test processes install once
        entry = _installed(cache)
        if entry is not None:
            return entry
        result = subprocess.run(
            [npm, "install", "--prefix", str(cache), "--no-audit", "--no-fund", "--ignore-scripts",
             "--loglevel=error", f"azurite@{AZURITE_VERSION}"],
            capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False, stdin=subprocess.DEVNULL,
        )
        entry = _installed(cache)
        if result.returncode != 0 or entry is None:
            raise RuntimeError(f"npm install azurite@{AZURITE_VERSION} failed ({result.returncode}):\n"
                               f"{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
        return entry


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Azurite:
    """The Azurite blob service on 127.0.0.1, storing into `location`."""

    def __init__(self, location: Path, *, entry: Path | None = None) -> None:
        self.location = location
        self.entry = entry or ensure_installed()
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Path = location / "azurite.log"

    @property
    def blob_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
                f"BlobEndpoint={self.blob_endpoint};")

    def start(self, timeout: float = 30) -> Azurite:
        self.location.mkdir(parents=True, exist_ok=True)
        node = shutil.which("node")
        if node is None:
            raise AzuriteUnavailableError("node is not installed")
        for _ in range(3):  # the free port can be taken between the probe and Azurite's bind: try again
            self.port = free_port()
            with self._log.open("wb") as log:
                self.proc = subprocess.Popen(
                    [node, str(self.entry), "--blobHost", "127.0.0.1", "--blobPort", str(self.port),
                     "--location", str(self.location), "--skipApiVersionCheck", "--disableTelemetry", "--silent"],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                )
            if self._wait_listening(timeout):
                return self
            self.stop()
        raise RuntimeError(f"Azurite did not start:\n{self._log.read_text(errors='replace')[-4000:]}")

    def _wait_listening(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                return False
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
            time.sleep(0.1)
        return False

    def stop(self) -> None:
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)

    def __enter__(self) -> Azurite:
        return self.start() if self.proc is None else self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


if __name__ == "__main__":
    try:
        print(ensure_installed())
    except AzuriteUnavailableError as exc:
        print(f"skipped: {exc}", file=sys.stderr)
        sys.exit(0)
    sys.exit(os.EX_OK)
