"""Helpers shared by the cluster tests: the probe command, waiting on logs, leftovers."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from gaia.cluster.host import Host, HostProcess
from gaia.cluster.netns import STATE_DIR

PROBE = Path(__file__).with_name("probe.py")


def probe(*args: object) -> list[str]:
    return [sys.executable, str(PROBE), *map(str, args)]


def wait_for_log(process: HostProcess, needle: str, timeout: float = 15.0) -> str:
    """Poll a process's log until `needle` shows up (or fail with the log)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        tail = process.log_tail(50)
        if needle in tail:
            return tail
        if not process.alive():
            break
        time.sleep(0.05)
    pytest.fail(f"{process.name} never logged {needle!r}; log:\n{process.log_tail(50)}")


def echo_works(client: Host, address: str, port: int) -> bool:
    """One TCP round trip from `client` to an echo server at address:port."""
    return client.run(probe("tcp-echo", address, port), check=False, timeout=30).ok


def leftovers(run: str) -> list[str]:
    """Anything of run `run` still on the machine: namespaces, links, its record."""
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    found = [line.split()[0] for line in names.splitlines() if f"gaia-{run}" in line]
    found += [line.split(":")[1].strip() for line in links.splitlines() if f"gaia-{run}" in line]
    if (STATE_DIR / f"{run}.json").exists():
        found.append(str(STATE_DIR / f"{run}.json"))
    return found
