"""The controller state machine: a deterministic function of the committed entries.

`ControllerStateMachine.apply(index, entry)` validates the entry against the state (so a
decision proposed by a deposed leader from a stale view is rejected the same way by every
controller), updates the state, and returns the actions for THIS controller: launch the
replicas assigned to it (S4), kill its replicas of a killed task. No clock, no I/O, no
randomness: a controller that restarts and replays the log (or restores a snapshot and
replays the rest) reaches the same state, byte for byte, as the others.

The placement record of a task also holds the configuration of the APUS group its
replicas form (`TaskRecord.group()`): members, hosts, app and APUS ports, and an epoch that
grows at every re-placement, so the group can be reconfigured from the log alone.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from gaia.tripod.entries import (
    APP_PORT,
    APUS_PORT,
    CHECKPOINT_PORT,
    EndReplica,
    Entry,
    KillTask,
    PlaceTask,
    RegisterAgent,
    RegisterFramework,
    RemoveAgent,
    ReplaceReplica,
    ReplicaAssignment,
    TaskSpec,
    assignment_from_json,
    decode,
    port_names,
    spec_from_json,
    to_json,
)
from gaia.tripod.resources import Resources, total

# Replica states recorded in the log. "placed": should run (staging or running, which
# only agents know); "lost": its agent was removed, waiting to be placed elsewhere.
PLACED = "placed"
LOST = "lost"
ENDED_STATES = ("finished", "failed", "killed")


@dataclass
class AgentRecord:
    agent_id: str
    host: str
    address: str
    capacity: Resources
    port_range: tuple[int, int]
    active: bool = True
    generation: int = 1  # registrations so far; a rejoined agent has a new generation
    boot: str = ""  # the agent process's start id (AgentReport.boot)


@dataclass
class FrameworkRecord:
    framework_id: str
    name: str
    max_r: int


@dataclass
class ReplicaRecord:
    assignment: ReplicaAssignment
    state: str = PLACED
    exit_code: int | None = None

    @property
    def holds_resources(self) -> bool:
        return self.state == PLACED


# A replica's id in its task's APUS group changes with each incarnation (cycling through
# APUS_ID_SLOTS ids per replica index): a re-placed replica joins as a NEW member (the
# leader removes the old id, then adds the new one), so an old incarnation that still
# runs somewhere (a partitioned host) is no member and cannot vote or ack for it.
APUS_ID_SLOTS = 4


def apus_member_id(index: int, incarnation: int, r: int) -> int:
    return index + r * (incarnation % APUS_ID_SLOTS)


def apus_max_members(r: int) -> int:
    return r * APUS_ID_SLOTS


@dataclass(frozen=True)
class GroupMember:
    index: int
    host: str
    address: str
    app_port: int
    apus_port: int | None
    member: int = 0  # the APUS replica id of this incarnation (apus_member_id)
    checkpoint_port: int | None = None


@dataclass(frozen=True)
class GroupConfig:
    """The APUS group formed by the replicas of one R > 1 task."""

    group_id: str
    epoch: int
    members: tuple[GroupMember, ...]


@dataclass
class TaskRecord:
    task_id: str
    framework_id: str
    spec: TaskSpec
    resources: Resources
    r: int
    consensus: bool
    replicas: list[ReplicaRecord]
    killed: bool = False

    def hosts_in_use(self, except_index: int | None = None) -> set[str]:
        """Hosts of replicas that run or wait to run (ended ones no longer count)."""
        return {
            rep.assignment.host
            for rep in self.replicas
            if rep.state in (PLACED, LOST) and rep.assignment.index != except_index
        }

    @property
    def state(self) -> str:
        states = {rep.state for rep in self.replicas}
        if self.killed:
            return "killed"
        if states <= set(ENDED_STATES):
            return "failed" if "failed" in states else "finished"
        return LOST if LOST in states else PLACED

    def group(self) -> GroupConfig:
        members = tuple(
            GroupMember(
                index=rep.assignment.index,
                host=rep.assignment.host,
                address=rep.assignment.address,
                app_port=rep.assignment.port(APP_PORT),
                apus_port=dict(rep.assignment.ports).get(APUS_PORT),
                member=apus_member_id(rep.assignment.index, rep.assignment.incarnation, self.r),
                checkpoint_port=dict(rep.assignment.ports).get(CHECKPOINT_PORT),
            )
            for rep in self.replicas
        )
        epoch = sum(rep.assignment.incarnation for rep in self.replicas)
        return GroupConfig(group_id=self.task_id, epoch=epoch, members=members)


@dataclass(frozen=True)
class Launch:
    """Action: start this replica on its agent (idempotent at the agent)."""

    task_id: str
    spec: TaskSpec
    resources: Resources
    replica: ReplicaAssignment
    group: GroupConfig | None


@dataclass(frozen=True)
class Kill:
    """Action: stop this incarnation of a replica on its agent."""

    task_id: str
    replica: ReplicaAssignment


@dataclass(frozen=True)
class Reconfigure:
    """Action: a member of this replica's APUS group moved (re-placed elsewhere): tell
    its agent the group's new configuration."""

    task_id: str
    spec: TaskSpec
    replica: ReplicaAssignment
    group: GroupConfig


Action = Launch | Kill | Reconfigure


@dataclass(frozen=True)
class Applied:
    index: int
    entry: Entry | None
    accepted: bool
    reason: str = ""
    actions: tuple[Action, ...] = ()


@dataclass
class ClusterState:
    """What every controller agrees on: agents, frameworks, tasks and their placements."""

    controllers: int
    applied_index: int = 0
    agents: dict[str, AgentRecord] = field(default_factory=dict)
    frameworks: dict[str, FrameworkRecord] = field(default_factory=dict)
    tasks: dict[str, TaskRecord] = field(default_factory=dict)

    # -- queries used by the allocation and by validation ---------------------------------
    def active_agents(self) -> list[AgentRecord]:
        return sorted((a for a in self.agents.values() if a.active), key=lambda a: a.agent_id)

    def placed(self) -> list[tuple[TaskRecord, ReplicaRecord]]:
        """Every replica that should run (and holds its agent's resources)."""
        return [(t, rep) for t in self.tasks.values() for rep in t.replicas if rep.holds_resources]

    def placed_on(self, agent_id: str) -> list[tuple[TaskRecord, ReplicaRecord]]:
        return [(t, rep) for t, rep in self.placed() if rep.assignment.agent_id == agent_id]

    def used(self, agent_id: str) -> Resources:
        return total([task.resources for task, _ in self.placed_on(agent_id)])

    def used_ports(self, agent_id: str) -> set[int]:
        return {port for _, rep in self.placed_on(agent_id) for _, port in rep.assignment.ports}

    def free(self, agent_id: str) -> Resources:
        agent = self.agents[agent_id]
        return (agent.capacity - self.used(agent_id)) if agent.active else Resources()

    def replicas_of_controller(self, controller: int) -> list[tuple[TaskRecord, ReplicaRecord]]:
        return [(t, rep) for t, rep in self.placed() if rep.assignment.controller == controller]

    def placements(self) -> dict[str, list[tuple[int, int, int, str, str]]]:
        """Task -> (index, incarnation, controller, agent, state) per replica."""
        return {
            task.task_id: [
                (
                    rep.assignment.index,
                    rep.assignment.incarnation,
                    rep.assignment.controller,
                    rep.assignment.agent_id,
                    rep.state,
                )
                for rep in task.replicas
            ]
            for task in self.tasks.values()
        }

    # -- snapshot --------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        """Records as lists in insertion order: iteration order is part of the state (it
        decides e.g. which replica a query lists first), so a restored copy keeps it."""
        return {
            "controllers": self.controllers,
            "applied_index": self.applied_index,
            "agents": [to_json(a) for a in self.agents.values()],
            "frameworks": [to_json(f) for f in self.frameworks.values()],
            "tasks": [to_json(t) for t in self.tasks.values()],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClusterState:
        state = cls(controllers=int(data["controllers"]), applied_index=data["applied_index"])
        for a in data["agents"]:
            state.agents[a["agent_id"]] = AgentRecord(
                agent_id=a["agent_id"],
                host=a["host"],
                address=a["address"],
                capacity=Resources.from_json(a["capacity"]),
                port_range=(a["port_range"][0], a["port_range"][1]),
                active=a["active"],
                generation=a["generation"],
                boot=a.get("boot", ""),
            )
        for f in data["frameworks"]:
            state.frameworks[f["framework_id"]] = FrameworkRecord(**f)
        for t in data["tasks"]:
            state.tasks[t["task_id"]] = TaskRecord(
                task_id=t["task_id"],
                framework_id=t["framework_id"],
                spec=spec_from_json(t["spec"]),
                resources=Resources.from_json(t["resources"]),
                r=t["r"],
                consensus=t["consensus"],
                replicas=[
                    ReplicaRecord(
                        assignment=assignment_from_json(rep["assignment"]),
                        state=rep["state"],
                        exit_code=rep["exit_code"],
                    )
                    for rep in t["replicas"]
                ],
                killed=t["killed"],
            )
        return state

    def encode(self) -> bytes:
        return json.dumps(self.to_json(), sort_keys=True, separators=(",", ":")).encode()

    def digest(self) -> str:
        return hashlib.sha256(self.encode()).hexdigest()


# -- validation: the same rules for the leader (before proposing) and for apply ------------


def check_assignment(
    state: ClusterState,
    resources: Resources,
    r: int,
    replica: ReplicaAssignment,
    released: ReplicaAssignment | None = None,
) -> str | None:
    """Why `replica` cannot be placed as given, or None. `released`: the incarnation it
    replaces (its resources and ports count as free)."""
    agent = state.agents.get(replica.agent_id)
    if agent is None or not agent.active:
        return f"agent {replica.agent_id} is not an active agent"
    if replica.host != agent.host or replica.address != agent.address:
        return f"agent {replica.agent_id} is on host {agent.host}, not {replica.host}"
    if not 0 <= replica.controller < state.controllers:
        return f"controller {replica.controller} does not exist ({state.controllers} controllers)"
    used = state.used(agent.agent_id)
    ports_used = state.used_ports(agent.agent_id)
    if released is not None and released.agent_id == agent.agent_id:
        used = used - resources
        ports_used -= {port for _, port in released.ports}
    if not (used + resources).fits_in(agent.capacity):
        return f"agent {agent.agent_id} has no room for {resources} (free {agent.capacity - used})"
    names = tuple(name for name, _ in replica.ports)
    if sorted(names) != sorted(port_names(r)):
        return f"replica {replica.index} needs ports {port_names(r)}, got {names}"
    lo, hi = agent.port_range
    for _, port in replica.ports:
        if not lo <= port <= hi:
            return f"port {port} is outside agent {agent.agent_id}'s range {lo}-{hi}"
        if port in ports_used:
            return f"port {port} is already used on agent {agent.agent_id}"
    if len({port for _, port in replica.ports}) != len(replica.ports):
        return f"replica {replica.index} repeats a port"
    return None


def check_place_task(state: ClusterState, entry: PlaceTask) -> str | None:
    if entry.task_id in state.tasks:
        return f"task {entry.task_id} already exists"
    framework = state.frameworks.get(entry.framework_id)
    if framework is None:
        return f"framework {entry.framework_id} is not registered"
    if problem := check_replica_strength(entry.r, framework.max_r, state.controllers):
        return problem
    if (entry.r > 1) != entry.consensus:
        return "tasks with R > 1 go through consensus, tasks with R = 1 do not"
    if sorted(a.index for a in entry.replicas) != list(range(entry.r)):
        return f"R={entry.r} needs replicas 0..{entry.r - 1}"
    if any(a.incarnation != 0 for a in entry.replicas):
        return "a new task's replicas start at incarnation 0"
    if len({a.host for a in entry.replicas}) != entry.r:
        return "replicas of one task must be on distinct hosts"
    if len({a.controller for a in entry.replicas}) != entry.r:
        return "each replica must be placed by a different controller"
    for a in entry.replicas:
        if problem := check_assignment(state, entry.resources, entry.r, a):
            return problem
    return None


def check_replica_strength(r: int, max_r: int, controllers: int) -> str | None:
    if r < 1:
        return f"R must be at least 1, got {r}"
    if r > controllers:
        return f"R={r} exceeds the number of controllers ({controllers})"
    if r > max_r:
        return f"R={r} exceeds the framework's max R ({max_r})"
    return None


def check_replace(state: ClusterState, entry: ReplaceReplica) -> str | None:
    task = state.tasks.get(entry.task_id)
    if task is None:
        return f"task {entry.task_id} does not exist"
    if task.killed:
        return f"task {entry.task_id} was killed"
    new = entry.replica
    if not 0 <= new.index < task.r:
        return f"task {entry.task_id} has no replica {new.index}"
    old = task.replicas[new.index]
    if old.state not in (PLACED, LOST):
        return f"replica {new.index} of {entry.task_id} has ended ({old.state})"
    if new.incarnation != old.assignment.incarnation + 1:
        return f"stale re-placement (incarnation {new.incarnation}, current {old.assignment.incarnation})"
    if new.host in task.hosts_in_use(except_index=new.index):
        return f"host {new.host} already runs a replica of {entry.task_id}"
    released = old.assignment if old.holds_resources else None
    return check_assignment(state, task.resources, task.r, new, released=released)


def check_entry(state: ClusterState, entry: Entry) -> str | None:
    """Why the entry must be rejected in this state, or None."""
    if isinstance(entry, RegisterAgent):
        lo, hi = entry.port_range
        if not 0 < lo <= hi < 65536:
            return f"invalid port range {lo}-{hi}"
        if entry.capacity.cpus_m < 0 or entry.capacity.mem_mb < 0:
            return "negative capacity"
        old = state.agents.get(entry.agent_id)
        if old is not None and old.host != entry.host and state.placed_on(entry.agent_id):
            return f"agent {entry.agent_id} runs replicas on {old.host}; it cannot move hosts"
        return None
    if isinstance(entry, RemoveAgent):
        agent = state.agents.get(entry.agent_id)
        return None if agent is not None and agent.active else f"no active agent {entry.agent_id}"
    if isinstance(entry, RegisterFramework):
        if (old := state.frameworks.get(entry.framework_id)) is not None:
            same = (old.name, old.max_r) == (entry.name, entry.max_r)
            return None if same else f"framework {entry.framework_id} exists with other settings"
        if entry.max_r < 1 or entry.max_r > state.controllers:
            return f"max R={entry.max_r} must be between 1 and the {state.controllers} controllers"
        return None
    if isinstance(entry, PlaceTask):
        return check_place_task(state, entry)
    if isinstance(entry, ReplaceReplica):
        return check_replace(state, entry)
    if isinstance(entry, EndReplica):
        task = state.tasks.get(entry.task_id)
        if task is None or not 0 <= entry.index < task.r:
            return f"no replica {entry.index} of task {entry.task_id}"
        rep = task.replicas[entry.index]
        if rep.assignment.incarnation != entry.incarnation or rep.state != PLACED:
            return "stale exit report"
        return None if entry.state in ENDED_STATES else f"unknown end state {entry.state}"
    if isinstance(entry, KillTask):
        task = state.tasks.get(entry.task_id)
        return None if task is not None and not task.killed else f"no live task {entry.task_id}"
    return f"unknown entry {type(entry).__name__}"


# -- the state machine -------------------------------------------------------------------


class ControllerStateMachine:
    """One controller's copy of the replicated state; `apply` is its only mutator."""

    def __init__(self, controller_id: int, controllers: int, state: ClusterState | None = None):
        if not 0 <= controller_id < controllers:
            raise ValueError(f"controller id {controller_id} not in 0..{controllers - 1}")
        self.controller_id = controller_id
        self.state = state if state is not None else ClusterState(controllers=controllers)

    @property
    def applied_index(self) -> int:
        return self.state.applied_index

    def apply(self, index: int, raw: Entry | bytes) -> Applied:
        """Apply the entry committed at `index` (the next one). Indices already applied
        (replay after a snapshot) are skipped; a gap is a bug in the caller."""
        if index <= self.state.applied_index:
            return Applied(index, None, False, "already applied")
        if index != self.state.applied_index + 1:
            raise ValueError(f"entry {index} applied after {self.state.applied_index}: gap")
        self.state.applied_index = index
        try:
            entry = raw if isinstance(raw, Entry) else decode(raw)
        except (ValueError, TypeError, KeyError) as exc:
            return Applied(index, None, False, f"undecodable entry: {exc}")
        problem = check_entry(self.state, entry)
        if problem is not None:
            return Applied(index, entry, False, problem)
        return Applied(index, entry, True, actions=tuple(self._mutate(entry)))

    def _mutate(self, entry: Entry) -> Iterable[Action]:
        state, me = self.state, self.controller_id
        if isinstance(entry, RegisterAgent):
            old = state.agents.get(entry.agent_id)
            state.agents[entry.agent_id] = AgentRecord(
                agent_id=entry.agent_id,
                host=entry.host,
                address=entry.address,
                capacity=entry.capacity,
                port_range=entry.port_range,
                generation=old.generation + 1 if old else 1,
                boot=entry.boot,
            )
            if old is not None and old.active and old.boot != entry.boot:
                for _, rep in state.placed_on(entry.agent_id):
                    rep.state = LOST  # the host rebooted: replace now, not at a timeout
        elif isinstance(entry, RemoveAgent):
            state.agents[entry.agent_id].active = False
            for _, rep in state.placed_on(entry.agent_id):
                rep.state = LOST
        elif isinstance(entry, RegisterFramework):
            state.frameworks.setdefault(
                entry.framework_id,
                FrameworkRecord(entry.framework_id, entry.name, entry.max_r),
            )
        elif isinstance(entry, PlaceTask):
            task = TaskRecord(
                task_id=entry.task_id,
                framework_id=entry.framework_id,
                spec=entry.spec,
                resources=entry.resources,
                r=entry.r,
                consensus=entry.consensus,
                replicas=[ReplicaRecord(a) for a in sorted(entry.replicas, key=lambda a: a.index)],
            )
            state.tasks[entry.task_id] = task
            yield from self._launches(task, task.replicas)
        elif isinstance(entry, ReplaceReplica):
            task = state.tasks[entry.task_id]
            old = task.replicas[entry.replica.index]
            if old.holds_resources and old.assignment.controller == me:
                yield Kill(task.task_id, old.assignment)
            task.replicas[entry.replica.index] = ReplicaRecord(entry.replica)
            yield from self._launches(task, [task.replicas[entry.replica.index]])
            if task.r > 1:
                group = task.group()
                for rep in task.replicas:
                    a = rep.assignment
                    if a.index != entry.replica.index and a.controller == me and \
                            rep.holds_resources:
                        yield Reconfigure(task.task_id, task.spec, a, group)
        elif isinstance(entry, EndReplica):
            rep = state.tasks[entry.task_id].replicas[entry.index]
            rep.state, rep.exit_code = entry.state, entry.exit_code
        elif isinstance(entry, KillTask):
            task = state.tasks[entry.task_id]
            task.killed = True
            for rep in task.replicas:
                if rep.holds_resources and rep.assignment.controller == me:
                    yield Kill(task.task_id, rep.assignment)
                if rep.state in (PLACED, LOST):
                    rep.state = "killed"

    def _launches(self, task: TaskRecord, replicas: list[ReplicaRecord]) -> Iterable[Launch]:
        group = task.group() if task.r > 1 else None
        for rep in replicas:
            if rep.assignment.controller == self.controller_id:
                yield Launch(task.task_id, task.spec, task.resources, rep.assignment, group)

    def desired_launches(self) -> list[Launch]:
        """Every replica this controller must keep launched (after replay or takeover)."""
        out = []
        for task, rep in self.state.replicas_of_controller(self.controller_id):
            group = task.group() if task.r > 1 else None
            out.append(Launch(task.task_id, task.spec, task.resources, rep.assignment, group))
        return out

    # -- snapshots (for log truncation) ------------------------------------------------------
    def snapshot(self) -> bytes:
        return self.state.encode()

    @classmethod
    def restore(cls, controller_id: int, data: bytes) -> ControllerStateMachine:
        state = ClusterState.from_json(json.loads(data))
        return cls(controller_id, state.controllers, state)
