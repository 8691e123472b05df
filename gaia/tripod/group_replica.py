"""One replica of an R > 1 task: the task's server under the replicated-server layer,
joined to the task's APUS group over tcp, so every replica executes the same inputs.

The agent that launches replica k of task T writes, into k's own directory, the files the
replicated-server layer reads (gaia.replicate: `replicate.json`, `apus/group.json`) from
the group configuration carried in the placement record (`state.TaskRecord.group()`:
members, hosts, app and APUS ports, epoch), then starts two processes on its host:
  - the APUS replica (`gaia.tripod.replica_node`: the layer's gated replica that also
    follows members moving to other hosts), and
  - the layer's agent (`gaia.replicate.agent`), which starts the server with the shim,
    replays committed inputs into it while it is a backup and takes over when its APUS
    replica is elected.
Nothing is shared between hosts but the network: each replica has its own copy of the
files, its own shared memory (its host's /dev/shm) and its own data. A replica re-placed
on another host after a host died starts fresh there (same id, new address, next
incarnation): the leader syncs its APUS replica and its server replays the committed log
(catch-up); the surviving replicas are told the new address (`update_group`).

The replica's role (leader serving clients / backup / ...) is read from the layer's
status files and reported by the TRIPOD agent, so the leading controller can name the
serving replica in the task's deployment.json.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gaia import proc
from gaia.apus.layout import LayoutConfig
from gaia.apus.runtime.spec import GroupSpec
from gaia.apus.runtime.status import ReplicaStatus, pid_alive, read_status
from gaia.errors import GaiaError
from gaia.intercept.shm import shm_path
from gaia.paths import REPO
from gaia.replicate.gate import gate_name
from gaia.replicate.spec import ReplicateSpec
from gaia.replicate.status import AGENT_FILE, BACKUP, DOWN_STATES, SERVING, AgentStatus
from gaia.tripod.apus_log import unlink_replica_segments
from gaia.tripod.entries import TaskSpec
from gaia.tripod.placeholders import expand
from gaia.tripod.state import apus_max_members

GROUP_DIR = "group"
EPOCH_FILE = "tripod-group.json"
ELECTION_MS = 300
TICK_US = 1000
POLL_S = 0.02


def apus_group_id(cluster: str, task_id: str) -> str:
    """The same 32-hex id on every replica of the task (computed, never sent)."""
    return uuid.uuid5(uuid.NAMESPACE_URL, f"tripod-task:{cluster}:{task_id}").hex


def replicate_spec(group: dict[str, Any], spec: TaskSpec, group_id: str,
                   values: dict[str, str]) -> ReplicateSpec:
    """The layer's deployment spec for the task: an app, or the task's command (its
    TRIPOD placeholders filled in; the layer fills {port} and {dir})."""
    members = group["members"]
    command = None
    if spec.app is None:  # the layer fills {port} and {dir} itself
        command = expand(spec.command or (), {**values, "port": "{port}", "dir": "{dir}"})
    return ReplicateSpec(
        replicas=sorted(m["member"] for m in members),
        app=spec.app,
        command=command,
        transport="tcp",
        durability="memory",
        app_ports={m["member"]: m["app_port"] for m in members},
        hosts={m["member"]: m["address"] for m in members},
        checkpoint_ports={m["member"]: m["checkpoint_port"] for m in members
                          if m.get("checkpoint_port")},
        election_ms=ELECTION_MS,
        group_id=group_id,
    )


def apus_spec(rspec: ReplicateSpec, group: dict[str, Any]) -> GroupSpec:
    """The APUS group: its current members (the ids of the current incarnations), room
    for every id a re-placed replica may take."""
    n = len(group["members"])
    return GroupSpec(
        replicas=rspec.replicas,
        group_id=rspec.group_id,
        transport="tcp",
        durability=rspec.durability,
        layout=LayoutConfig(max_members=apus_max_members(n)),
        addresses={m["member"]: f"{m['address']}:{m['apus_port']}" for m in group["members"]},
        tick_us=TICK_US,
        election_ticks=max(2, rspec.election_ms * 1000 // TICK_US),
        ring_dead_ms=rspec.ring_dead_ms,
    )


def write_group_files(directory: Path, group: dict[str, Any], spec: TaskSpec, cluster: str,
                      values: dict[str, str]) -> bool:
    """Write (or update) the layer's files for this group epoch; False if the directory
    already holds this epoch or a newer one."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "apus").mkdir(exist_ok=True)
    try:
        held = json.loads((directory / EPOCH_FILE).read_text())["epoch"]
    except (OSError, ValueError, KeyError):
        held = -1
    if held >= group["epoch"]:
        return False
    rspec = replicate_spec(group, spec, apus_group_id(cluster, group["group_id"]), values)
    _replace(directory / "replicate.json", lambda tmp: rspec.save(tmp))
    _replace(directory / "apus" / "group.json", lambda tmp: apus_spec(rspec, group).save(tmp))
    (directory / EPOCH_FILE).write_text(json.dumps({"epoch": group["epoch"], "group": group}))
    return True


def _replace(path: Path, save: Any) -> None:
    """Write through a scratch directory, then rename: readers never see half a file."""
    scratch = path.parent / f".{path.name}.{os.getpid()}"
    scratch.mkdir(exist_ok=True)
    written = save(scratch)
    os.replace(written, path)
    scratch.rmdir()


@dataclass
class GroupReplica:
    """A running replica of an R > 1 task: its APUS replica and the layer's agent (which
    owns the server). Same interface as launch.ReplicaProcess."""

    key: str
    member: int  # its APUS replica id (state.apus_member_id)
    data_dir: Path
    node: proc.Process
    agent: proc.Process
    group_id: str

    @property
    def group_dir(self) -> Path:
        return self.data_dir / GROUP_DIR

    @property
    def process(self) -> proc.Process:
        return self.agent

    @property
    def pid(self) -> int:
        return self.agent.pid

    def pids(self) -> list[int]:
        """Process groups to kill if an earlier run of the TRIPOD agent left them: the
        layer's agent, the APUS replica and the server."""
        server = (self.agent_status() or AgentStatus(0, 0, "")).server_pid
        return [self.agent.pid, self.node.pid, *([server] if server else [])]

    def agent_status(self) -> AgentStatus | None:
        path = ReplicateSpec.replica_dir(self.group_dir, self.member) / AGENT_FILE
        try:
            return AgentStatus(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def apus_status(self) -> ReplicaStatus | None:
        return read_apus_status(self.group_dir, self.member)

    def role(self) -> tuple[str, int]:
        """("leader", view) when this replica serves clients in `view`; otherwise the
        layer agent's state ("backup", "promoting", ...) and the APUS view."""
        apus, agent = self.apus_status(), self.agent_status()
        if apus is None or agent is None or not pid_alive(apus.pid):
            return "down", apus.view if apus else 0
        if apus.role == "leader" and agent.state == SERVING and agent.view == apus.view:
            return "leader", apus.view
        return agent.state, apus.view

    def exit_code(self) -> int | None:
        """Non-None once the replica can no longer serve: the layer's agent exited, its
        APUS replica died, or the agent reports itself failed/deposed."""
        code = self.agent.popen.poll()
        if code is not None:
            return code
        if self.node.popen.poll() is not None:
            return self.node.popen.returncode or 1
        status = self.agent_status()
        if status is not None and status.pid == self.agent.pid and status.state in DOWN_STATES:
            return 1
        return None

    def failure(self) -> str:
        status = self.agent_status()
        if status is not None and status.error:
            return status.error
        return self.node.log_tail(3) if self.node.popen.poll() is not None else ""

    def stop(self, timeout: float = 10.0) -> None:
        """The layer's agent (it stops the server) and the APUS replica, told at once (each
        takes seconds to shut down on a busy machine), then this replica's shared memory
        (its host's /dev/shm). The server's shim fails closed once its APUS replica is
        gone, so no input runs unreplicated meanwhile."""
        server_pid = (self.agent_status() or AgentStatus(0, 0, "")).server_pid
        for process in (self.agent, self.node):
            if process.alive():
                process.signal(signal.SIGCONT)
                process.signal(signal.SIGTERM)
        self.agent.stop(timeout)
        self.node.stop(timeout)
        if server_pid and pid_alive(server_pid):
            os.kill(server_pid, signal.SIGKILL)
        unlink_replica_segments(self.group_id, self.member)
        shm_path(gate_name(self.group_id, self.member)).unlink(missing_ok=True)


def read_apus_status(group_dir: Path, member: int) -> ReplicaStatus | None:
    """The last status APUS member `member` of the group in `group_dir` wrote (None if it
    never did)."""
    return read_status(ReplicateSpec.apus_dir(group_dir), member)


def start_group_replica(key: str, member: int, data_dir: Path, timeout: float
                        ) -> GroupReplica:
    """Start APUS member `member` from the files in data_dir/group; returns once its
    server runs as a backup (or already serves). GaiaError with the layer's reason
    otherwise."""
    gdir = data_dir / GROUP_DIR
    group_id = ReplicateSpec.load(gdir).group_id
    apus_dir = ReplicateSpec.apus_dir(gdir)
    python = sys.executable
    node = proc.spawn(f"tripod-apus-{key}",
                      [python, "-m", "gaia.tripod.replica_node", "--run-dir", str(apus_dir),
                       "--id", str(member)], apus_dir / f"r{member}" / "replica.log", cwd=REPO)
    replica = GroupReplica(key, member, data_dir, node, node, group_id)
    try:
        _wait(lambda: _node_ready(replica), timeout, replica, "its APUS replica")
        replica.agent = proc.spawn(
            f"tripod-replicate-{key}",
            # --recover: a peer's newest checkpoint + the log suffix (the only way back
            # once the group compacted its log; with no checkpoint anywhere, the whole log)
            [python, "-m", "gaia.replicate.agent", "--run-dir", str(gdir), "--id", str(member),
             "--recover"],
            ReplicateSpec.replica_dir(gdir, member) / "agent.log", cwd=REPO)
        _wait(lambda: _agent_ready(replica), timeout, replica, "its server")
    except BaseException:
        replica.stop(5.0)
        raise
    return replica


def _node_ready(replica: GroupReplica) -> bool:
    if replica.node.popen.poll() is not None:
        raise GaiaError(f"the APUS replica of {replica.key} exited while starting: "
                        f"{replica.node.log_tail(3).strip()}", f"see {replica.node.log_path}")
    st = replica.apus_status()
    return st is not None and st.pid == replica.node.pid and st.role != "starting"


def _agent_ready(replica: GroupReplica) -> bool:
    agent = replica.agent
    st = replica.agent_status()
    if st is not None and st.pid == agent.pid:
        if st.state in DOWN_STATES:
            problem, _, fix = (st.error or "the server failed").partition(" — fix: ")
            raise GaiaError(f"replica {replica.key}: {problem}", fix or f"see {agent.log_path}")
        if st.state in (BACKUP, SERVING):
            return True
    if agent.popen.poll() is not None:
        raise GaiaError(f"the replicated-server agent of {replica.key} exited: "
                        f"{agent.log_tail(3).strip()}", f"see {agent.log_path}")
    return False


def _wait(ready: Any, timeout: float, replica: GroupReplica, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise GaiaError(f"replica {replica.key}: {what} did not start within {timeout:g} s",
                            f"see the logs under {replica.group_dir}")
        time.sleep(POLL_S)
