"""A deployed task's replicas as the harness sees them: where each runs, which one serves,
how far each executed, and their state digests — for tests, experiments and campaigns.

Placement comes from the leading controller's view (the log's decision plus the agents'
last statuses); digests and positions from each R > 1 replica's replicated-server agent
(its control socket in the replica's directory: TRIPOD's namespace and local hosts share
this machine's disk).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gaia.apus.runtime.status import ReplicaStatus
from gaia.deployment import Deployment
from gaia.errors import GaiaError
from gaia.proc import pid_alive
from gaia.replicate import control
from gaia.replicate.spec import ReplicateSpec
from gaia.tripod.entries import replica_key
from gaia.tripod.group_replica import GROUP_DIR, read_apus_status
from gaia.tripod.launch import replica_dir
from gaia.tripod.state import apus_member_id

POLL_S = 0.05


@dataclass(frozen=True)
class PlacedReplica:
    task_id: str
    index: int
    incarnation: int
    agent_id: str
    address: str
    app_port: int
    placement: str  # the log's view: placed | lost | killed ...
    status: str  # the agent's: staging | running | failed ...
    work_dir: Path
    member: int  # its APUS replica id

    @property
    def key(self) -> str:
        return replica_key(self.task_id, self.index, self.incarnation)

    @property
    def control_socket(self) -> Path:
        gdir = replica_dir(self.work_dir, self.key) / GROUP_DIR
        return ReplicateSpec.replica_dir(gdir, self.member) / control.SOCKET_NAME

    def ask(self, request: dict[str, Any], timeout: float = 60.0) -> dict[str, Any]:
        return control.call(self.control_socket, request, timeout)

    def apus_status(self) -> ReplicaStatus | None:
        """Its APUS replica's last status; None if it never wrote one or has died."""
        status = read_apus_status(replica_dir(self.work_dir, self.key) / GROUP_DIR, self.member)
        return status if status is not None and pid_alive(status.pid) else None


def placed_replicas(cluster: Any, task_id: str) -> list[PlacedReplica]:
    """The task's current incarnations (GaiaError if the leader does not know it)."""
    view = cluster.query()
    task = next((t for t in view["tasks"] if t["task_id"] == task_id), None)
    if task is None:
        raise GaiaError(f"TRIPOD has no task {task_id}", "see `gaia tripod status`")
    return [
        PlacedReplica(task_id, r["index"], r["incarnation"], r["agent_id"], r["address"],
                      r["ports"]["app"], r["placement"], r["status"],
                      cluster.agent_work_dir(r["agent_id"]),
                      apus_member_id(r["index"], r["incarnation"], task["r"]))
        for r in task["replicas"]
    ]


def task_dir(cluster: Any, task_id: str) -> Path:
    """The run dir whose deployment.json names the task's serving replica (`cluster`: a
    TripodCluster or its run directory)."""
    return Path(getattr(cluster, "run_dir", cluster)) / "tasks" / task_id


def wait_until(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    problem = ""
    while True:
        try:
            value = predicate()
            if value:
                return value
        except GaiaError as exc:  # a controller or agent in transition
            problem = exc.problem
        if time.monotonic() > deadline:
            raise GaiaError(f"timed out after {timeout:g} s waiting for {what}"
                            + (f" ({problem})" if problem else ""),
                            "see the controller and agent logs in the TRIPOD run dir")
        time.sleep(POLL_S)


def serving(cluster: Any, task_id: str, timeout: float = 60.0,
            not_leader: int | None = None) -> Deployment:
    """deployment.json once it names a serving replica (other than `not_leader`)."""
    def ready() -> Deployment | None:
        try:
            dep = Deployment.load(task_dir(cluster, task_id))
        except GaiaError:
            return None
        ok = dep.leader is not None and dep.leader != not_leader
        return dep if ok else None

    return wait_until(ready, timeout, f"a serving replica of {task_id}")


def wait_whole(cluster: Any, task_id: str, r: int, timeout: float = 240.0,
               not_on: str | None = None) -> list[PlacedReplica]:
    """Until all r replicas of the task run (re-placed ones included), none of them on
    agent `not_on` (a host just killed: until the leader declares its agent dead, its
    replicas still show their last status, "running")."""
    def whole() -> list[PlacedReplica] | None:
        reps = placed_replicas(cluster, task_id)
        running = [p for p in reps if p.placement == "placed" and p.status == "running"
                   and p.agent_id != not_on]
        return running if len(running) == r else None

    return wait_until(whole, timeout, f"{r} running replicas of {task_id}")


def group_agrees(replicas: list[PlacedReplica]) -> bool:
    """Every replica's APUS replica lives as a voting member (one leader, the others
    backups) of one view. The controller's "running" lags a host that just died, and a
    replica restarted in place or re-placed runs before it recovered or was promoted
    from learner: until then the group tolerates no further failure."""
    statuses = [rep.apus_status() for rep in replicas]
    if any(s is None for s in statuses):
        return False
    roles = sorted(s.role for s in statuses)  # type: ignore[union-attr]
    views = {s.view for s in statuses}  # type: ignore[union-attr]
    return len(views) == 1 and roles == ["backup"] * (len(roles) - 1) + ["leader"]


def caught_up_digests(replicas: list[PlacedReplica], timeout: float = 120.0) -> dict[int, str]:
    """Digest of every replica's server once each executed everything the serving one
    has (its committed index): equal digests = equal states."""
    lead = None
    for rep in replicas:
        status = rep.ask({"op": "status"}, timeout)
        if status["state"] == "serving":
            lead = status
    if lead is None:
        raise GaiaError("no replica of the task serves", "wait for the group's leader")
    index = int(lead["applied"])
    for rep in replicas:
        rep.ask({"op": "wait_applied", "index": index, "timeout": timeout}, timeout + 10)
    return {rep.index: rep.ask({"op": "digest"}, timeout)["digest"] for rep in replicas}
