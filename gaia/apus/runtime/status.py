"""Where a running group reports itself: one status file per replica, and deployment.json.

Why both: each replica knows only its own role; the leader knows the view and who leads.
Every replica writes `r<id>/status.json` when its role, view or leader changes (and now
and then with its commit index); the leader folds them into `deployment.json`
(DESIGN.md, "Finding the leader"), which clients and `gaia status --json` read. A
replica whose process is gone is reported as down, whatever its last file says.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from gaia.apus.runtime.spec import GroupSpec
from gaia.deployment import Deployment, ReplicaInfo
from gaia.fsutil import write_atomically
from gaia.proc import pid_alive

STATUS_FILE = "status.json"


@dataclass
class ReplicaStatus:
    id: int
    pid: int
    role: str
    view: int
    leader: int | None
    commit: int
    last: int
    incarnation: int
    updated: float = 0.0


def write_status(path: Path, status: ReplicaStatus) -> None:
    status.updated = time.time()
    write_atomically(path, json.dumps(asdict(status)), sync=False)


def _load(path: Path) -> ReplicaStatus | None:
    try:
        return ReplicaStatus(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None


def read_status(run_dir: Path, replica: int) -> ReplicaStatus | None:
    """The last status replica `replica` of the group in `run_dir` wrote (None if it never
    did, or the file is being replaced)."""
    return _load(Path(run_dir) / f"r{replica}" / STATUS_FILE)


def read_statuses(run_dir: Path, spec: GroupSpec) -> dict[int, ReplicaStatus]:
    """The last status of every replica that ever reported (role 'down' if its process
    is gone)."""
    out = {}
    for path in sorted(Path(run_dir).glob(f"r*/{STATUS_FILE}")):
        status = _load(path)
        if status is None:
            continue
        if not pid_alive(status.pid):
            status.role = "down"
        out[status.id] = status
    return out


def deployment_of(run_dir: Path, spec: GroupSpec, statuses: dict[int, ReplicaStatus],
                  view: int, leader: int | None) -> Deployment:
    ids = sorted(set(spec.replicas) | set(statuses))
    replicas = []
    for r in ids:
        st = statuses.get(r)
        address = spec.addresses.get(r, "127.0.0.1:0")
        replicas.append(ReplicaInfo(
            id=r, role=st.role if st else "starting", host=address.rsplit(":", 1)[0],
            pid=st.pid if st else None, executing=spec.executing.get(r, True)))
    return Deployment(
        kind="apus", run_dir=str(run_dir), replicas=replicas, group_id=spec.group_id,
        transport=spec.transport, durability=spec.durability, view=view, leader=leader,
        extra={"commit": {r: s.commit for r, s in statuses.items()},
               "namespaces": spec.namespaces})


def live_deployment(run_dir: Path) -> Deployment:
    """deployment.json refreshed with the replicas' own status files (what `gaia status`
    shows): a dead leader is not reported as the leader."""
    spec = GroupSpec.load(run_dir)
    statuses = read_statuses(run_dir, spec)
    leaders = [s for s in statuses.values() if s.role == "leader"]
    best = max(leaders, key=lambda s: s.view, default=None)
    view = max((s.view for s in statuses.values()), default=0)
    return deployment_of(run_dir, spec, statuses, view, best.id if best else None)
