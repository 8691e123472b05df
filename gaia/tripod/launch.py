"""Running one replica of a task on an agent: an app of the `apps` registry, or a command.

Commands may use placeholders, replaced per replica (placeholders.py). A command counts
as running once started (as Mesos's TASK_RUNNING); an app once it answers its protocol.

Each replica's directory also gets `replica.json` (task, index, incarnation, ports and,
for R > 1, the APUS group configuration from the placement record). A replica of an
R > 1 task runs under the replicated-server layer, joined to its task's APUS group
(group_replica.py); an R = 1 replica is the plain server, as in any scheduler.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gaia import proc
from gaia.errors import GaiaError
from gaia.tripod.entries import APP_PORT, APUS_PORT, TaskSpec
from gaia.tripod.group_replica import (
    GROUP_DIR,
    GroupReplica,
    start_group_replica,
    write_group_files,
)
from gaia.tripod.placeholders import expand

GROUP_START_S = 180.0  # three Python processes with numba code on a loaded machine


def validate_spec(spec: TaskSpec) -> None:
    """Fail early (at submit) on an app the registry does not know."""
    if spec.app is not None:
        import apps

        apps.get(spec.app)


@dataclass
class ReplicaProcess:
    """One incarnation of a replica started by this agent."""

    key: str
    process: proc.Process
    data_dir: Path
    server: Any = None  # apps.base.Server for app tasks

    @property
    def pid(self) -> int:
        return self.process.pid

    def pids(self) -> list[int]:
        """Process groups to kill if an earlier run of the agent left this replica."""
        return [self.pid]

    def exit_code(self) -> int | None:
        return self.process.popen.poll()

    def stop(self, timeout: float = 10.0) -> None:
        if self.server is not None:
            self.server.stop(timeout)
        else:
            self.process.stop(timeout)


def start_replica(
    key: str,
    task_id: str,
    index: int,
    spec: TaskSpec,
    ports: dict[str, int],
    address: str,
    bind: str,
    work_dir: Path,
    info: dict[str, Any],
    timeout: float = 60.0,
    cluster: str = "",
) -> ReplicaProcess | GroupReplica:
    """Start the replica and wait until it serves (blocking; agents call it in a thread).
    Raises GaiaError with the cause when it cannot start."""
    data_dir = replica_dir(work_dir, key)
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "replica.json").write_text(json.dumps(info, indent=1, default=_jsonable))
    values = {
        "port": str(ports[APP_PORT]),
        "apus_port": str(ports.get(APUS_PORT, "")),
        "dir": str(data_dir),
        "address": address,
        "task_id": task_id,
        "index": str(index),
    }
    group = info.get("group")
    if group is not None:
        group = _plain(group)
        write_group_files(data_dir / GROUP_DIR, group, spec, cluster, values)
        member = next(m["member"] for m in group["members"] if m["index"] == index)
        return start_group_replica(key, member, data_dir, max(timeout, GROUP_START_S))
    if spec.app is not None:
        import apps
        from gaia.replicate.servers import replica_args

        server = apps.get(spec.app)(port=ports[APP_PORT], data_dir=data_dir / "data", host=bind,
                                    extra_args=replica_args(spec.app))
        server.start(timeout)
        return ReplicaProcess(key, server.process, data_dir, server)
    argv = expand(spec.command or (), values)
    try:
        process = proc.spawn(f"tripod-{key}", argv, data_dir / "task.log", cwd=data_dir)
    except OSError as exc:
        raise GaiaError(f"cannot run `{argv[0]}`: {exc}", "check the command") from None
    return ReplicaProcess(key, process, data_dir)


def replica_dir(work_dir: Path, key: str) -> Path:
    return work_dir / "replicas" / key.replace("/", "-")


def update_group(work_dir: Path, key: str, group: dict[str, Any], spec: TaskSpec,
                 cluster: str, address: str) -> bool:
    """A running replica learns its group's new configuration (a member moved): rewrite
    its files if this epoch is newer (its APUS replica follows group.json)."""
    data_dir = replica_dir(work_dir, key)
    info = json.loads((data_dir / "replica.json").read_text())
    values = {"port": str(info["ports"][APP_PORT]), "apus_port": str(info["ports"][APUS_PORT]),
              "dir": str(data_dir), "address": address, "task_id": info["task_id"],
              "index": str(info["index"])}
    return write_group_files(data_dir / GROUP_DIR, _plain(group), spec, cluster, values)


def _plain(group: Any) -> dict[str, Any]:
    """The group configuration as JSON data (a GroupConfig or its JSON form)."""
    return json.loads(json.dumps(group, default=_jsonable))


def _jsonable(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    raise TypeError(f"cannot encode {type(value).__name__}")
