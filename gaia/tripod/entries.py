"""The consensus entries: every scheduling decision TRIPOD makes, as bytes in a DecisionLog.

An entry carries the whole decision (which agent, which controller, which ports), never
something a controller would have to recompute: replaying the log must reproduce the
placements exactly, whatever the replaying controller's local view of the cluster is.
This is the proposal's S4 ("the leader carries the assignment in its consensus request").

Encoding: one JSON object per entry, `{"type": "<name>", ...fields}`, UTF-8, keys
sorted, so equal decisions are equal bytes.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any, ClassVar

from gaia.errors import ConfigError
from gaia.tripod.resources import Resources

# Ports a replica needs: "app" for the server itself; R > 1 replicas also get "apus",
# the port of their APUS replica (the group of replicas is wired from these), and
# "checkpoint", where its guard serves server checkpoints to a peer that restarts on
# another host after the log was compacted.
APP_PORT = "app"
APUS_PORT = "apus"
CHECKPOINT_PORT = "checkpoint"


def port_names(r: int) -> tuple[str, ...]:
    return (APP_PORT,) if r == 1 else (APP_PORT, APUS_PORT, CHECKPOINT_PORT)


@dataclass(frozen=True)
class TaskSpec:
    """What to run: an app of the `apps` registry, or a command with {port}/{dir}/{address}."""

    app: str | None = None
    command: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if (self.app is None) == (self.command is None):
            raise ConfigError(
                "a task runs either an app or a command, not both and not neither",
                "pass --app NAME or `-- CMD ARGS`",
            )
        if self.command is not None and not self.command:
            raise ConfigError("the task's command is empty", "pass `-- CMD ARGS`")

    def describe(self) -> str:
        return self.app if self.app is not None else " ".join(self.command or ())


@dataclass(frozen=True)
class ReplicaAssignment:
    """One replica's placement: S4's "which controller places it on which agent"."""

    index: int
    incarnation: int  # 0 at first placement, +1 at each re-placement
    controller: int
    agent_id: str
    host: str  # host identity: replicas of a task never share one
    address: str  # where the replica's ports are reachable
    ports: tuple[tuple[str, int], ...] = ()

    def port(self, name: str) -> int:
        return dict(self.ports)[name]


def replica_key(task_id: str, index: int, incarnation: int) -> str:
    """Unique name of one incarnation of a replica (agents run processes by it)."""
    return f"{task_id}/{index}/{incarnation}"


@dataclass(frozen=True)
class Entry:
    TYPE: ClassVar[str] = ""


@dataclass(frozen=True)
class RegisterAgent(Entry):
    """An agent joined (or rejoined, or changed capacity, or restarted): S1's first
    report. A new `boot` of an active agent means its host rebooted: what it ran is gone."""

    TYPE: ClassVar[str] = "register_agent"
    agent_id: str
    host: str
    address: str
    capacity: Resources
    port_range: tuple[int, int]
    boot: str = ""


@dataclass(frozen=True)
class RemoveAgent(Entry):
    """The leader declared an agent lost; its replicas must be placed elsewhere."""

    TYPE: ClassVar[str] = "remove_agent"
    agent_id: str
    reason: str = ""


@dataclass(frozen=True)
class RegisterFramework(Entry):
    TYPE: ClassVar[str] = "register_framework"
    framework_id: str
    name: str
    max_r: int


@dataclass(frozen=True)
class PlaceTask(Entry):
    """A task and the placement of all its replicas. `consensus` is False for R = 1: the
    leader launched it before proposing (S3) and the entry only records the fact."""

    TYPE: ClassVar[str] = "place_task"
    task_id: str
    framework_id: str
    spec: TaskSpec
    resources: Resources  # per replica
    r: int
    replicas: tuple[ReplicaAssignment, ...]
    consensus: bool = True


@dataclass(frozen=True)
class ReplaceReplica(Entry):
    """A replica whose agent died (or never launched it) placed elsewhere: a new entry."""

    TYPE: ClassVar[str] = "replace_replica"
    task_id: str
    replica: ReplicaAssignment
    reason: str = ""


@dataclass(frozen=True)
class EndReplica(Entry):
    """An incarnation of a replica exited (finished, failed) on its agent."""

    TYPE: ClassVar[str] = "end_replica"
    task_id: str
    index: int
    incarnation: int
    state: str
    exit_code: int | None = None


@dataclass(frozen=True)
class KillTask(Entry):
    TYPE: ClassVar[str] = "kill_task"
    task_id: str
    reason: str = ""


ENTRY_TYPES: dict[str, type[Entry]] = {
    cls.TYPE: cls
    for cls in (
        RegisterAgent,
        RemoveAgent,
        RegisterFramework,
        PlaceTask,
        ReplaceReplica,
        EndReplica,
        KillTask,
    )
}

# Fields holding nested values (everything else is a JSON scalar, list -> tuple).
_NESTED: dict[str, Any] = {
    "capacity": Resources.from_json,
    "resources": Resources.from_json,
    "spec": lambda d: TaskSpec(
        app=d.get("app"), command=tuple(d["command"]) if d.get("command") else None
    ),
    "replica": lambda d: assignment_from_json(d),
    "replicas": lambda items: tuple(assignment_from_json(d) for d in items),
    "port_range": lambda pair: (int(pair[0]), int(pair[1])),
}


def assignment_from_json(data: dict[str, Any]) -> ReplicaAssignment:
    fields = dict(data)
    fields["ports"] = tuple((str(name), int(port)) for name, port in fields.get("ports", ()))
    return ReplicaAssignment(**fields)


def to_json(value: Any) -> Any:
    """Plain JSON data for any entry or nested value (dataclass -> dict, tuple -> list)."""
    if isinstance(value, Resources):
        return value.to_json()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_json(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (tuple, list)):
        return [to_json(v) for v in value]
    return value


def encode(entry: Entry) -> bytes:
    data = to_json(entry)
    data["type"] = entry.TYPE
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def decode(raw: bytes | str | dict[str, Any]) -> Entry:
    data = dict(raw) if isinstance(raw, dict) else json.loads(raw)
    cls = ENTRY_TYPES.get(data.pop("type", ""))
    if cls is None:
        raise ValueError(f"unknown TRIPOD entry: {raw!r}")
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name not in data:
            continue
        value = data[f.name]
        if f.name in _NESTED:
            value = _NESTED[f.name](value)
        kwargs[f.name] = value
    return cls(**kwargs)


def spec_from_json(data: dict[str, Any]) -> TaskSpec:
    return _NESTED["spec"](data)


__all__ = [
    "APP_PORT",
    "APUS_PORT",
    "CHECKPOINT_PORT",
    "ENTRY_TYPES",
    "EndReplica",
    "Entry",
    "KillTask",
    "PlaceTask",
    "RegisterAgent",
    "RegisterFramework",
    "RemoveAgent",
    "ReplaceReplica",
    "ReplicaAssignment",
    "TaskSpec",
    "decode",
    "encode",
    "port_names",
    "replica_key",
    "spec_from_json",
]
