"""Real parsers from Debian packages for the export and monitoring tests: `squid`, `nft`, `promtool`.

`ensure_tool("squid", "squid")` returns the binary's path. When it is absent and the tests run as root on a
machine with apt-get (a developer's machine and CI here), it installs the Debian package first, once, under a
lock (parallel test processes install once). When the binary still cannot be had, the caller skips with the
reason: only the binary's absence ever skips a test. AMLFW_NO_APT=1 turns the install off.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

INSTALL_TIMEOUT = 600
LOCK = Path(tempfile.gettempdir()) / "amlfw-debian-tools.lock"


class ToolUnavailableError(RuntimeError):
    """The binary is not installed and could not be installed: the test skips with this reason."""


def _apt_install(package: str) -> str:
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0 or os.environ.get("AMLFW_NO_APT") == "1":
        return "not root with apt-get (or AMLFW_NO_APT=1)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    cmd = [apt, "install", "-y", "-qq", "--no-install-recommends", package]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False, env=env,
                            stdin=subprocess.DEVNULL)
    if result.returncode != 0:  # the package lists may be missing or stale on a fresh machine
        subprocess.run([apt, "update", "-qq"], capture_output=True, timeout=INSTALL_TIMEOUT, check=False, env=env,
                       stdin=subprocess.DEVNULL)
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False, env=env,
                                stdin=subprocess.DEVNULL)
    return "" if result.returncode == 0 else f"apt-get install {package} failed: {result.stderr.strip()[-300:]}"


def ensure_tool(binary: str, package: str) -> str:
    """The path of `binary`, installing Debian's `package` first if needed; ToolUnavailableError if impossible."""
    found = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/sbin")
    if found:
        return found
    with LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        found = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/sbin")
        if found:
            return found
        why = _apt_install(package)
        found = shutil.which(binary) or shutil.which(binary, path="/usr/sbin:/sbin")
        if found:
            return found
    why = why or "not found after install"
    raise ToolUnavailableError(f"{binary} is not installed (Debian package {package}; {why})")
