"""Agent status files, and the deployment.json that APUS statuses and agents fold into.

Each agent writes `r<N>/agent.json` whenever its state changes (and now and then with
its applied index). A replica serves clients only when its APUS replica leads AND its
agent has finished the takeover in that view: `compose()` names that replica the leader
of deployment.json, so leader-aware clients never connect to a server that is still
replaying. `compose()` is pure; `live()` reads the files.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from gaia.apus.runtime.spec import GroupSpec
from gaia.apus.runtime.status import ReplicaStatus, pid_alive, read_statuses
from gaia.deployment import Deployment, ReplicaInfo
from gaia.replicate.spec import ReplicateSpec

AGENT_FILE = "agent.json"
# agent states
STARTING, BACKUP, PROMOTING, SERVING = "starting", "backup", "promoting", "serving"
FAILED, DEPOSED, STOPPED = "failed", "deposed", "stopped"
DOWN_STATES = frozenset({FAILED, DEPOSED, STOPPED})


@dataclass
class AgentStatus:
    id: int
    pid: int
    state: str
    server_pid: int | None = None
    host: str = "127.0.0.1"
    app_port: int | None = None
    applied: int = 0
    view: int = 0  # SERVING: the view it serves in
    error: str = ""
    checkpoint_port: int | None = None  # its guard serves checkpoints here (host: `host`)
    recovered_from: str = ""  # a restarted replica: checkpoint + suffix, or the whole log
    updated: float = 0.0


def write_agent_status(path: Path, status: AgentStatus) -> None:
    status.updated = time.time()
    tmp = path.with_name(f"{path.name}.tmp")
    tmp.write_text(json.dumps(asdict(status)))
    os.replace(tmp, path)


def read_agent_statuses(run_dir: Path, spec: ReplicateSpec) -> dict[int, AgentStatus]:
    """The last status of every agent that reported; a dead agent reads as STOPPED (or
    keeps FAILED/DEPOSED, which say more)."""
    out = {}
    for r in spec.replicas:
        path = ReplicateSpec.replica_dir(run_dir, r) / AGENT_FILE
        try:
            status = AgentStatus(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            continue
        if not pid_alive(status.pid) and status.state not in DOWN_STATES:
            status.state = STOPPED
            status.error = status.error or "the agent process is gone"
        out[r] = status
    return out


def _role(apus: ReplicaStatus | None, agent: AgentStatus | None, leader: int | None,
          replica: int) -> str:
    if replica == leader:
        return "leader"
    if apus is None or agent is None:
        return "starting"
    if apus.role == "down" or agent.state in DOWN_STATES:
        return "down"
    if agent.state in (STARTING, PROMOTING):
        return agent.state
    return "backup" if apus.role == "leader" else apus.role


def serving_leader(apus: dict[int, ReplicaStatus], agents: dict[int, AgentStatus]
                   ) -> int | None:
    """The replica that leads in APUS and whose agent serves in that same view."""
    best: tuple[int, int] | None = None
    for r, st in apus.items():
        agent = agents.get(r)
        if (st.role == "leader" and agent is not None and agent.state == SERVING
                and agent.view == st.view and (best is None or st.view > best[0])):
            best = (st.view, r)
    return best[1] if best else None


def compose(run_dir: Path, spec: ReplicateSpec, apus: dict[int, ReplicaStatus],
            agents: dict[int, AgentStatus], front_port: int | None = None) -> Deployment:
    """deployment.json of a replicated group (kind "replicate")."""
    leader = serving_leader(apus, agents)
    replicas = []
    for r in spec.replicas:
        st, agent = apus.get(r), agents.get(r)
        replicas.append(ReplicaInfo(
            id=r, role=_role(st, agent, leader, r), host=spec.hosts.get(r, "127.0.0.1"),
            pid=agent.server_pid if agent else None, app_port=spec.app_ports.get(r)))
    view = max((s.view for s in apus.values()), default=0)
    extra = {
        "apus_run_dir": str(ReplicateSpec.apus_dir(run_dir)),
        "command": spec.command,
        "processes": {r: {"apus": apus[r].pid if r in apus else None,
                          "agent": agents[r].pid if r in agents else None,
                          "server": agents[r].server_pid if r in agents else None}
                      for r in spec.replicas},
        "agents": {r: {"state": a.state, "applied": a.applied, "error": a.error}
                   for r, a in agents.items()},
        "commit": {r: s.commit for r, s in apus.items()},
        "namespaces": spec.namespaces,
    }
    return Deployment(kind="replicate", run_dir=str(run_dir), replicas=replicas,
                      group_id=spec.group_id, transport=spec.transport,
                      durability=spec.durability, app=spec.name, view=view, leader=leader,
                      front_port=front_port if front_port is not None else spec.front_port,
                      extra=extra)


def live(run_dir: Path, spec: ReplicateSpec | None = None) -> Deployment:
    """deployment.json as the status files say it is now."""
    spec = spec or ReplicateSpec.load(run_dir)
    apus_dir = ReplicateSpec.apus_dir(run_dir)
    apus = read_statuses(apus_dir, GroupSpec.load(apus_dir))
    return compose(Path(run_dir), spec, apus, read_agent_statuses(run_dir, spec))


def same_content(a: Deployment, b: Deployment | None) -> bool:
    """Equal apart from the `updated` stamp (so the file is rewritten only on change)."""
    if b is None:
        return False
    da, db = asdict(a), asdict(b)
    da.pop("updated", None)
    db.pop("updated", None)
    return json.loads(json.dumps(da)) == json.loads(json.dumps(db))
