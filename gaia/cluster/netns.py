"""Network namespaces as hosts: N namespaces on one bridge, each with its own address.

Replicas in separate namespaces talk over a real (virtual) network, so partitions, loss
and rate limits act on their traffic while everything still runs on one machine.

Layout of run `abcde` (5 hex digits, so interface names fit the kernel's 15 characters):
bridge `gaia-abcde` in the root namespace with address 10.X.Y.254/24 (the harness and
the delay relays reach the hosts through it); namespace `gaia-abcde-h1` holds `eth0`
(10.X.Y.1/24), the peer of veth `gaia-abcde-1` on the bridge, and `lo` up.

Nothing may outlive its run: the context manager, an atexit hook and SIGINT/SIGTERM
handlers remove namespaces, processes inside them and the bridge; a run killed with
SIGKILL leaves a record in STATE_DIR naming its owner, and `cleanup_stale()` removes runs
whose owner is gone (other live runs are left alone).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

from gaia.cluster.host import LocalHost
from gaia.errors import GaiaError

STATE_DIR = Path(os.environ.get("GAIA_NETNS_STATE", "/run/gaia-netns"))
PREFIX = "gaia-"
_NS_RE = re.compile(r"^gaia-([0-9a-f]{5})-([a-z0-9]+)$")
_LINK_RE = re.compile(r"^gaia-([0-9a-f]{5})(?:-\d+)?$")
_HOST_NAME_RE = re.compile(r"^[a-z0-9]{1,8}$")
_GATEWAY = 254


class NetnsUnavailableError(GaiaError):
    def __init__(self, reason: str) -> None:
        super().__init__(
            f"network namespaces cannot be created here: {reason}",
            "run as root on Linux with iproute2 installed (`sudo apt-get install -y iproute2`),"
            " or use local or SSH hosts",
        )


def netns_unavailable_reason() -> str | None:
    """None if this process can create namespaces, else why not (tests skip on it)."""
    if os.geteuid() != 0:
        return "not running as root"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is missing"
    return None


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise GaiaError(
            f"`ip {' '.join(args)}` failed: {done.stderr.strip()}",
            "run `python -m gaia.cluster --cleanup` to remove leftovers, then retry",
        )
    return done


class NetnsHost(LocalHost):
    """A host that is a network namespace of this machine (files are shared with it)."""

    def __init__(self, name: str, namespace: str, address: str) -> None:
        super().__init__(name, address)
        self.namespace = namespace
        self.interface = "eth0"

    def wrap(self, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.namespace, *argv]

    def pids(self) -> list[int]:
        """Processes whose network namespace is this host's."""
        done = _ip("netns", "pids", self.namespace, check=False)
        return [int(p) for p in done.stdout.split()]


def _used_subnets() -> set[str]:
    """/24 prefixes ("10.X.Y") in use by addresses, routes or recorded live runs."""
    used = set()
    text = _ip("-4", "-o", "addr", check=False).stdout + _ip("-4", "route", check=False).stdout
    for found in re.findall(r"\b10\.(\d+)\.(\d+)\.\d+", text):
        used.add(f"10.{found[0]}.{found[1]}")
    for record in _records():
        used.add(record.get("subnet", ""))
    return used


def _pick_subnet(rng: random.Random) -> str:
    used = _used_subnets()
    for _ in range(1000):
        candidate = f"10.{rng.randint(200, 249)}.{rng.randint(0, 255)}"
        if candidate not in used:
            return candidate
    raise NetnsUnavailableError("no free 10.200-249.x.0/24 subnet")


def _process_start(pid: int) -> int | None:
    """Start time of a process in clock ticks (tells a live owner from a reused pid)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(") ", 1)[1].split()[19])


def _records() -> list[dict[str, Any]]:
    records = []
    for path in sorted(STATE_DIR.glob("*.json")) if STATE_DIR.is_dir() else []:
        try:
            records.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            records.append({"run": path.stem})
    return records


def _owner_alive(record: dict[str, Any]) -> bool:
    pid = record.get("owner_pid")
    return pid is not None and _process_start(pid) == record.get("owner_start")


def _kill_namespace_processes(namespace: str) -> None:
    pids = [int(p) for p in _ip("netns", "pids", namespace, check=False).stdout.split()]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)  # a stopped process would not die before it runs
            os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while pids and time.monotonic() < deadline:
        pids = [p for p in pids if _alive_not_zombie(p)]
        time.sleep(0.02)


def _alive_not_zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def _namespaces() -> list[str]:
    return [line.split()[0] for line in _ip("netns", "list", check=False).stdout.splitlines()]


def _links() -> list[str]:
    out = _ip("-o", "link", "show", check=False).stdout
    return [m.split("@")[0] for m in re.findall(r"^\d+: ([^:\s]+)", out, re.MULTILINE)]


def _teardown(run: str) -> list[str]:
    """Remove everything of one run (idempotent, never raises). Returns what was removed."""
    removed = []
    for namespace in _namespaces():
        match = _NS_RE.match(namespace)
        if match and match[1] == run:
            _kill_namespace_processes(namespace)
            if _ip("netns", "del", namespace, check=False).returncode == 0:
                removed.append(namespace)
    # veth ends on the bridge go with their namespace peer; delete stragglers, then the bridge
    for link in sorted(_links(), key=len, reverse=True):
        match = _LINK_RE.match(link)
        if match and match[1] == run and _ip("link", "del", link, check=False).returncode == 0:
            removed.append(link)
    (STATE_DIR / f"{run}.json").unlink(missing_ok=True)
    return removed


def cleanup_stale(force: bool = False) -> list[str]:
    """Remove namespaces, links and records of runs whose owner process is gone.

    `force` removes every GAIA run, live or not (for an operator, never for tests that
    share the machine). Returns the names removed.
    """
    runs = {m[1] for name in _namespaces() if (m := _NS_RE.match(name))}
    runs |= {m[1] for name in _links() if (m := _LINK_RE.match(name))}
    records = {r["run"]: r for r in _records() if "run" in r}
    removed = []
    for run in sorted(runs | set(records)):
        if force or not _owner_alive(records.get(run, {})):
            removed += _teardown(run)
    return removed


# --- removal on exit and on signals ---------------------------------------------------

_LIVE: dict[str, NetnsCluster] = {}
_LIVE_LOCK = threading.RLock()  # re-entered by a signal handler
_PREVIOUS_HANDLERS: dict[int, Any] = {}


def _destroy_all() -> None:
    with _LIVE_LOCK:
        clusters = list(_LIVE.values())
    for cluster in clusters:
        cluster.destroy()


def _on_signal(signum: int, frame: FrameType | None) -> None:
    _destroy_all()
    previous = _PREVIOUS_HANDLERS.get(signum, signal.SIG_DFL)
    if callable(previous):
        previous(signum, frame)  # SIGINT: raises KeyboardInterrupt as before
    elif previous != signal.SIG_IGN:
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


_HOOKS = {"atexit": False, "signals": False}


def _install_exit_hooks() -> None:
    """atexit once; SIGINT/SIGTERM handlers once, from the main thread (Python's rule)."""
    if not _HOOKS["atexit"]:
        atexit.register(_destroy_all)
        _HOOKS["atexit"] = True
    if _HOOKS["signals"] or threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGINT, signal.SIGTERM):
        _PREVIOUS_HANDLERS[signum] = signal.getsignal(signum)
        signal.signal(signum, _on_signal)
    _HOOKS["signals"] = True


class NetnsCluster:
    """N namespaces on a bridge; use as a context manager (`with NetnsCluster(3) as c:`)."""

    def __init__(self, hosts: int | Sequence[str] = 3) -> None:
        names = [f"h{i}" for i in range(1, hosts + 1)] if isinstance(hosts, int) else list(hosts)
        bad = [n for n in names if not _HOST_NAME_RE.match(n)]
        if bad or not names or len(set(names)) != len(names) or len(names) > 250:
            raise GaiaError(
                f"bad namespace host names {bad or names}",
                "give 1-250 distinct names of 1-8 lowercase letters or digits",
            )
        self.names = names
        self._rng = random.SystemRandom()  # run ids must differ across processes
        self.run = ""  # chosen by create()
        self.bridge = ""
        self.subnet = ""
        self.hosts: list[NetnsHost] = []
        self._created = False

    def _new_run_id(self) -> str:
        taken = {m[1] for name in _namespaces() if (m := _NS_RE.match(name))}
        taken |= {r.get("run") for r in _records()}
        while True:
            run = f"{self._rng.getrandbits(20):05x}"
            if run not in taken:
                return run

    @property
    def gateway(self) -> str:
        """The root namespace's address on the bridge (the harness reaches hosts from it)."""
        return f"{self.subnet}.{_GATEWAY}"

    def host(self, name: str) -> NetnsHost:
        for host in self.hosts:
            if host.name == name:
                return host
        raise KeyError(name)

    def __getitem__(self, name: str) -> NetnsHost:
        return self.host(name)

    def create(self) -> NetnsCluster:
        reason = netns_unavailable_reason()
        if reason:
            raise NetnsUnavailableError(reason)
        _install_exit_hooks()
        STATE_DIR.mkdir(parents=True, exist_ok=True)
        with _LIVE_LOCK:
            self.run = self._new_run_id()
            self.bridge = f"{PREFIX}{self.run}"
            self.subnet = _pick_subnet(self._rng)
            record = {
                "run": self.run,
                "owner_pid": os.getpid(),
                "owner_start": _process_start(os.getpid()),
                "subnet": self.subnet,
                "hosts": self.names,
            }
            (STATE_DIR / f"{self.run}.json").write_text(json.dumps(record))
            _LIVE[self.run] = self
        self._created = True
        try:
            self._build()
        except BaseException:
            self.destroy()
            raise
        return self

    def _build(self) -> None:
        _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "add", f"{self.gateway}/24", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")
        for index, name in enumerate(self.names, start=1):
            namespace = f"{PREFIX}{self.run}-{name}"
            veth = f"{PREFIX}{self.run}-{index}"
            address = f"{self.subnet}.{index}"
            _ip("netns", "add", namespace)
            _ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", namespace)
            _ip("link", "set", veth, "master", self.bridge, "up")
            _ip("-n", namespace, "addr", "add", f"{address}/24", "dev", "eth0")
            _ip("-n", namespace, "link", "set", "eth0", "up")
            _ip("-n", namespace, "link", "set", "lo", "up")
            self.hosts.append(NetnsHost(name, namespace, address))

    def destroy(self) -> None:
        """Kill processes in the namespaces, remove namespaces, veths, bridge, record."""
        if not self._created:
            return
        _teardown(self.run)
        self._created = False
        with _LIVE_LOCK:
            _LIVE.pop(self.run, None)

    def __enter__(self) -> NetnsCluster:
        return self.create()

    def __exit__(self, *exc: object) -> None:
        self.destroy()

    def __repr__(self) -> str:
        return f"NetnsCluster({self.run}, {self.subnet}.0/24, hosts={self.names})"


def main(argv: list[str] | None = None) -> int:
    """`python -m gaia.cluster --cleanup [--force]`: remove leftovers of dead runs."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m gaia.cluster", description=main.__doc__)
    parser.add_argument("--cleanup", action="store_true", help="remove runs whose owner is gone")
    parser.add_argument("--force", action="store_true", help="remove every GAIA run, even live")
    args = parser.parse_args(argv)
    if args.cleanup:
        removed = cleanup_stale(force=args.force)
        print("removed: " + (", ".join(removed) if removed else "nothing"))
    else:
        for namespace in _namespaces():
            if _NS_RE.match(namespace):
                print(namespace)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
