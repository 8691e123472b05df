"""Operations on a background TRIPOD deployment, shared by `gaia tripod ...` and
`invoke tripod.*`: up, submit, status, kill, down. Output formatting lives here too so
both front ends print the same thing.

The most recent deployment is remembered in `<run root>/tripod-current`, so the other
commands need no `--run-dir`.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

from gaia import proc
from gaia.errors import ConfigError, GaiaError
from gaia.paths import new_run_dir, run_root
from gaia.tripod.deploy import OPTIONS_FILE, TripodOptions, query_leader
from gaia.tripod.entries import TaskSpec
from gaia.tripod.framework import LAYOUT_FILE, Framework, TaskStatus, controller_addresses
from gaia.tripod.resources import Resources

CURRENT = "tripod-current"
CLI_FRAMEWORK = "cli-framework.json"


def current_file() -> Path:
    return run_root() / CURRENT


def resolve_run_dir(run_dir: str | Path | None) -> Path:
    """The deployment to act on: the one named, else the most recent `up`."""
    if run_dir:
        return Path(run_dir)
    try:
        return Path(current_file().read_text().strip())
    except OSError:
        raise GaiaError(
            "no TRIPOD deployment is up", "start one with `gaia tripod up` or pass --run-dir"
        ) from None


def load_layout(run_dir: Path) -> dict[str, Any]:
    try:
        return json.loads((run_dir / LAYOUT_FILE).read_text())
    except (OSError, ValueError):
        raise GaiaError(
            f"{run_dir} holds no TRIPOD deployment", "pass the run dir `gaia tripod up` printed"
        ) from None


def up(options: TripodOptions, timeout: float = 240.0) -> Path:
    """Start a deployment in the background; returns its run dir once every agent is live."""
    options.validate()
    if (old := running_deployment()) is not None:
        raise GaiaError(
            f"a TRIPOD deployment is already up in {old}",
            "stop it with `gaia tripod down` (or pass --run-dir to use it)",
        )
    run_dir = new_run_dir("tripod")
    (run_dir / OPTIONS_FILE).write_text(json.dumps(options.__dict__))
    supervisor = proc.spawn(
        "tripod-supervisor",
        [sys.executable, "-m", "gaia.tripod.deploy", str(run_dir)],
        run_dir / "supervisor.log",
    )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not supervisor.alive():
            tail = supervisor.log_tail(3).strip().splitlines()
            raise GaiaError(
                f"TRIPOD failed to start: {tail[-1] if tail else 'no output'}",
                f"see {run_dir / 'supervisor.log'}",
            )
        try:
            if load_layout(run_dir).get("ready"):
                current_file().write_text(str(run_dir))
                return run_dir
        except GaiaError:
            pass
        time.sleep(0.1)
    supervisor.stop()
    raise GaiaError(f"TRIPOD did not come up within {timeout:g} s", f"see the logs in {run_dir}")


def running_deployment() -> Path | None:
    """The most recent deployment if its supervisor still runs."""
    try:
        run_dir = resolve_run_dir(None)
        layout = load_layout(run_dir)
    except GaiaError:
        return None
    return run_dir if _supervisor_alive(layout) else None


def _supervisor_alive(layout: dict[str, Any]) -> bool:
    pid = layout.get("supervisor_pid")
    if not pid:
        return False
    try:
        os.waitpid(pid, os.WNOHANG)  # reap it if it is our child (else it stays a zombie)
    except ChildProcessError:
        pass
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def down(run_dir: Path, timeout: float = 60.0) -> None:
    """Stop the supervisor (it stops agents, replicas, controllers, namespaces)."""
    layout = load_layout(run_dir)
    pid = layout.get("supervisor_pid")
    if pid and _supervisor_alive(layout):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _supervisor_alive(layout) and time.monotonic() < deadline:
            time.sleep(0.1)
        if _supervisor_alive(layout):
            os.kill(pid, signal.SIGKILL)
    _kill_leftovers(layout)
    if layout.get("netns_run"):
        from gaia.cluster.netns import cleanup_stale

        cleanup_stale()
    try:
        if current_file().read_text().strip() == str(run_dir):
            current_file().unlink()
    except OSError:
        pass


def _kill_leftovers(layout: dict[str, Any]) -> None:
    for item in [*layout.get("controllers", []), *layout.get("agents", [])]:
        if item.get("pid"):
            try:
                os.kill(item["pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass


def status(run_dir: Path, timeout: float = 5.0) -> dict[str, Any]:
    view = query_leader(controller_addresses(run_dir), timeout)
    view["run_dir"] = str(run_dir)
    return view


def cli_framework(run_dir: Path) -> Framework:
    """The CLI's framework: max R = number of controllers; its id kept in the run dir so
    every `submit` is the same framework (its tasks, its offers)."""
    layout = load_layout(run_dir)
    saved = run_dir / CLI_FRAMEWORK
    framework_id = None
    if saved.exists():
        framework_id = json.loads(saved.read_text()).get("framework_id")
    fw = Framework.from_run_dir(
        run_dir, "gaia-cli", max_r=len(layout["controllers"]), framework_id=framework_id
    )
    fw.connect()
    saved.write_text(json.dumps({"framework_id": fw.framework_id}))
    return fw


def submit(
    run_dir: Path,
    app: str | None,
    command: list[str] | None,
    r: int = 1,
    cpus: float = 0.1,
    mem_mb: int = 64,
    task_id: str | None = None,
    wait: bool = True,
    timeout: float = 180.0,
) -> tuple[str, dict[int, TaskStatus]]:
    """Submit one task; with `wait`, returns once every replica runs."""
    if (app is None) == (not command):
        raise ConfigError("give either --app NAME or a command after --", "e.g. --app redis --R 3")
    spec = TaskSpec(app=app, command=tuple(command) if command else None)
    layout = load_layout(run_dir)
    controllers = len(layout["controllers"])
    if r < 1 or r > controllers:
        raise ConfigError(
            f"R={r} is not possible with {controllers} controllers",
            f"use R between 1 and {controllers}",
        )
    fw = cli_framework(run_dir)
    try:
        result, statuses = fw.submit(
            spec, r, Resources.of(cpus, mem_mb), task_id=task_id, wait=wait, timeout=timeout
        )
    finally:
        fw.close()
    return result.task_id, statuses


def kill(run_dir: Path, task_id: str) -> None:
    fw = cli_framework(run_dir)
    try:
        if not fw.kill(task_id):
            raise ConfigError(f"no live task {task_id}", "see `gaia tripod status` for task ids")
    finally:
        fw.close()


# -- output ----------------------------------------------------------------------------------


def placement_lines(task_id: str, statuses: dict[int, TaskStatus]) -> list[str]:
    lines = [f"task {task_id}: {len(statuses)} replica(s)"]
    for index, s in sorted(statuses.items()):
        port = s.ports.get("app")
        lines.append(
            f"  replica {index}: {s.state} on {s.agent_id} ({s.host}) at {s.address}:{port}"
        )
    return lines


def print_status(view: dict[str, Any], as_json: bool = False) -> None:
    if as_json:
        print(json.dumps(view, indent=1))
        return
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print(
        f"TRIPOD in {view.get('run_dir')}: leader controller {view['leader']}, "
        f"{len(view['controllers'])} controllers, log index {view['applied_index']}"
    )
    agents = Table("agent", "host", "address", "live", "cpus used/cap", "mem used/cap (MiB)")
    for a in view["agents"]:
        agents.add_row(
            a["agent_id"],
            a["host"],
            a["address"],
            "yes" if a["live"] and a["active"] else "no",
            f"{a['used']['cpus_m'] / 1000:g}/{a['capacity']['cpus_m'] / 1000:g}",
            f"{a['used']['mem_mb']}/{a['capacity']['mem_mb']}",
        )
    console.print(agents)
    tasks = Table("task", "what", "R", "replica", "host", "endpoint", "status", "role")
    for t in view["tasks"]:
        what = t["what"] if len(t["what"]) <= 20 else t["what"][:19] + "…"
        for rep in t["replicas"]:
            placed = rep["placement"] == "placed"
            tasks.add_row(
                t["task_id"],
                what,
                str(t["r"]),
                f"{rep['index']}.{rep['incarnation']}",
                rep["host"],
                f"{rep['address']}:{rep['ports'].get('app')}",
                rep["status"] if placed else rep["placement"],
                rep.get("role") or "-",
            )
    console.print(tasks)
