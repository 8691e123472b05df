"""Starting, restarting and stopping a whole group of replica processes."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from gaia.apus.runtime.segments import unlink_segments
from gaia.apus.runtime.spec import GroupSpec
from gaia.apus.runtime.status import live_deployment, pid_alive, read_statuses
from gaia.deployment import Deployment
from gaia.errors import GaiaError
from gaia.paths import new_run_dir, run_root
from gaia.proc import Process, spawn, terminate

CURRENT = "apus.current"  # in run_root(): the run dir of the last `gaia apus up`


def replica_argv(run_dir: Path, spec: GroupSpec, replica: int) -> list[str]:
    argv = [sys.executable, "-m", "gaia.apus.replica", "--run-dir", str(run_dir),
            "--id", str(replica)]
    ns = spec.namespaces.get(replica)
    return ["ip", "netns", "exec", ns, *argv] if ns else argv


def spawn_replica(run_dir: Path, replica: int) -> Process:
    spec = GroupSpec.load(run_dir)
    log = spec.replica_dir(run_dir, replica) / "replica.log"
    return spawn(f"apus-r{replica}", replica_argv(Path(run_dir), spec, replica), log,
                 cwd=Path(__file__).resolve().parents[3])


def start_group(spec: GroupSpec, run_dir: Path | None = None, wait: float = 120.0
                ) -> tuple[Path, list[Process]]:
    """Write the spec, start every replica, wait until one leads. Returns the run dir."""
    run_dir = Path(run_dir) if run_dir else new_run_dir("apus")
    run_dir.mkdir(parents=True, exist_ok=True)
    spec.save(run_dir)
    Deployment(kind="apus", run_dir=str(run_dir), group_id=spec.group_id,
               transport=spec.transport, durability=spec.durability).save()
    procs = [spawn_replica(run_dir, r) for r in spec.replicas]
    (run_root() / CURRENT).write_text(str(run_dir))
    if wait:
        try:
            wait_leader(run_dir, wait, procs)
        except GaiaError:
            stop_group(run_dir)
            raise
    return run_dir, procs


def wait_leader(run_dir: Path, timeout: float, procs: list[Process] | None = None,
                not_leader: int | None = None) -> Deployment:
    """Until a live replica leads (other than `not_leader`), per the status files."""
    deadline = time.monotonic() + timeout
    while True:
        dep = live_deployment(run_dir)
        if dep.leader is not None and dep.leader != not_leader:
            return dep
        for p in procs or []:
            if not p.alive() and p.popen.returncode not in (None, 0, -9, -15):
                raise GaiaError(f"replica {p.name} exited with {p.popen.returncode}: "
                                f"{p.log_tail(5)}", f"see {p.log_path}")
        if time.monotonic() > deadline:
            raise GaiaError(f"no APUS leader in {run_dir} within {timeout:.0f} s",
                            "see the replicas' logs (r*/replica.log in the run directory)")
        time.sleep(0.01)


def current_run_dir(run_dir: Path | str | None = None) -> Path:
    if run_dir:
        return Path(run_dir)
    pointer = run_root() / CURRENT
    if pointer.exists():
        path = Path(pointer.read_text().strip())
        if (path / "group.json").exists():
            return path
    raise GaiaError("no running APUS group found", "start one with `gaia apus up`, or "
                    "pass --run-dir")


def stop_group(run_dir: Path, grace: float = 10.0) -> list[int]:
    """SIGTERM every replica (SIGKILL after `grace` s), then remove the group's segments."""
    spec = GroupSpec.load(run_dir)
    pids = [s.pid for s in read_statuses(run_dir, spec).values() if pid_alive(s.pid)]
    terminate(pids, grace)
    unlink_segments(spec.group_id, sorted(set(spec.replicas) | set(range(
        spec.layout.max_members))))
    pointer = run_root() / CURRENT
    if pointer.exists() and pointer.read_text().strip() == str(run_dir):
        pointer.unlink()
    return pids
