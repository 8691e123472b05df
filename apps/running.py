"""Servers started by hand (`invoke apps.start`) and remembered between commands.

`apps.start` returns while the server keeps running, so the server is remembered in a
small JSON file under the run root (`apps-running.json`): endpoint, pid, the process's
start time (so a recycled pid is never signalled), data dir and log. `apps.stop` finds
it there, stops it with SIGTERM then SIGKILL and removes the data dir it created.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import apps
from gaia.errors import ConfigError
from gaia.paths import new_run_dir, run_root

STATE_FILE = "apps-running.json"


@dataclass(frozen=True)
class RunningApp:
    app: str
    server_kind: str
    host: str
    port: int
    pid: int
    start_ticks: int  # /proc/<pid>/stat starttime: tells a recycled pid apart
    data_dir: str
    log: str

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    def alive(self) -> bool:
        return start_ticks(self.pid) == self.start_ticks


def state_path() -> Path:
    return run_root() / STATE_FILE


def load() -> dict[str, RunningApp]:
    """The remembered servers that still run (entries of dead ones are dropped)."""
    try:
        raw = json.loads(state_path().read_text())
    except (OSError, ValueError):
        return {}
    entries = {name: RunningApp(**entry) for name, entry in raw.items()}
    return {name: entry for name, entry in entries.items() if entry.alive()}


def _save(entries: dict[str, RunningApp]) -> None:
    path = state_path()
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({n: asdict(e) for n, e in entries.items()}, indent=2))
    tmp.replace(path)


def start_app(name: str, port: int = 0, deterministic: bool = False) -> RunningApp:
    """Start `name` in the background (it outlives this process) and remember it."""
    cls = apps.get(name)
    entries = load()
    if name in entries:
        running = entries[name]
        raise ConfigError(
            f"{name} is already running at {running.endpoint} (pid {running.pid})",
            f"stop it first: `invoke apps.stop --app {name}`",
        )
    data_dir = new_run_dir(f"app-{name}")
    server = cls(port=port, data_dir=data_dir, deterministic=deterministic)
    try:
        server.start()
    except BaseException:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)
        raise
    pid = server.pid or 0
    entry = RunningApp(
        app=name,
        server_kind=server.server_kind,
        host=server.host,
        port=server.port,
        pid=pid,
        start_ticks=start_ticks(pid) or 0,
        data_dir=str(data_dir),
        log=str(getattr(server, "log_path", data_dir)),
    )
    entries[name] = entry
    _save(entries)
    return entry


def stop_apps(names: list[str] | None, timeout: float = 10.0) -> list[RunningApp]:
    """Stop the named remembered servers (all when `names` is None); returns them."""
    entries = load()
    targets = list(entries) if names is None else names
    for name in targets:
        if name not in entries:
            apps.get(name)  # an unknown name is a ConfigError of its own
            raise ConfigError(
                f"{name} is not running (not started by `invoke apps.start`)",
                "see what runs with `invoke apps.list`",
            )
    stopped = []
    for name in targets:
        entry = entries.pop(name)
        stop_pid(entry.pid, entry.start_ticks, timeout)
        shutil.rmtree(entry.data_dir, ignore_errors=True)
        stopped.append(entry)
    _save(entries)
    return stopped


def start_ticks(pid: int) -> int | None:
    """When a live (non-zombie) process started, in clock ticks since boot; None if gone.
    Servers rewrite their argv (redis does), so the start time identifies them."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    except (OSError, IndexError):
        return None
    return None if fields[0] == "Z" else int(fields[19])


def stop_pid(pid: int, ticks: int, timeout: float) -> None:
    """SIGTERM, then SIGKILL after `timeout`; only while `pid` is still that process."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        if start_ticks(pid) != ticks:
            return
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and start_ticks(pid) == ticks:
            time.sleep(0.05)
