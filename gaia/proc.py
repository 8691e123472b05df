"""Starting and stopping the real processes GAIA runs (servers, replicas, peers).

Every process GAIA spawns carries `GAIA_OWNER=<token>` in its environment. The token is
inherited from the environment when set (the test session sets one), so a whole session's
processes can be found from /proc afterwards and none outlives it unnoticed.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

OWNER_VAR = "GAIA_OWNER"


def pid_alive(pid: int | None) -> bool:
    """Whether process `pid` exists and is not a zombie (a killed child its parent has
    not reaped yet still answers kill(pid, 0), which would make it look alive)."""
    if not pid or pid <= 0:
        return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def owner_token() -> str:
    """The token that marks processes of this session (created once per process tree)."""
    token = os.environ.get(OWNER_VAR)
    if not token:
        token = f"gaia-{uuid.uuid4().hex[:12]}"
        os.environ[OWNER_VAR] = token
    return token


@dataclass
class Process:
    """A spawned process with its log file; `stop()` is idempotent."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path
    argv: list[str] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def signal(self, sig: int) -> None:
        if self.alive():
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout` seconds. Returns the exit code."""
        if self.alive():
            self.signal(signal.SIGCONT)  # a paused process cannot handle SIGTERM
            self.signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.popen.poll()

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        try:
            self.popen.wait(5)
        except subprocess.TimeoutExpired:
            pass


def spawn(
    name: str,
    argv: Sequence[str],
    log_path: Path,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    stdin: int | None = subprocess.DEVNULL,
) -> Process:
    """Start `argv` in its own session, stdout+stderr appended to `log_path`."""
    full_env = dict(os.environ if env is None else env)
    full_env[OWNER_VAR] = owner_token()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        popen = subprocess.Popen(
            list(argv),
            stdin=stdin,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=full_env,
            cwd=cwd,
            start_new_session=True,
        )
    return Process(name=name, popen=popen, log_path=log_path, argv=list(argv))


def owned_pids(token: str | None = None) -> list[int]:
    """Pids of live processes whose environment carries the owner token."""
    token = token or owner_token()
    needle = f"{OWNER_VAR}={token}".encode()
    found = []
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = (entry / "stat").read_text().split(") ", 1)[1][0]
        except OSError:
            continue
        if state != "Z" and needle in environ.split(b"\0"):
            found.append(int(entry.name))
    return found


def signal_all(pids: Sequence[int], sig: int) -> None:
    """SIGCONT (a paused process cannot act on the signal) then `sig` to every pid."""
    for pid in pids:
        for each in (signal.SIGCONT, sig):
            try:
                os.kill(pid, each)
            except ProcessLookupError:
                break


def terminate(pids: Sequence[int], grace: float = 10.0) -> None:
    """SIGTERM the processes, wait up to `grace` s for them to exit, SIGKILL the rest."""
    signal_all(pids, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(pid_alive(p) for p in pids):
        time.sleep(0.02)
    signal_all([p for p in pids if pid_alive(p)], signal.SIGKILL)


def kill_owned(token: str | None = None, grace: float = 2.0) -> list[int]:
    """SIGKILL every process carrying the token; returns the pids found."""
    pids = owned_pids(token)
    signal_all(pids, signal.SIGKILL)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and owned_pids(token):
        time.sleep(0.05)
    return pids
