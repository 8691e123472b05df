"""Running one replica of a task on an agent: an app of the `apps` registry, or a command.

Commands may use placeholders, replaced per replica: {port} (the app port), {apus_port},
{dir} (a fresh directory for the replica), {address} (the agent's address), {task_id},
{index}. Other braces are left alone (shell code keeps working). A command counts as
running once started (as Mesos's TASK_RUNNING); an app once it answers its protocol.

Each replica's directory also gets `replica.json` (task, index, incarnation, ports and,
for R > 1, the APUS group configuration from the placement record): the hook through
which the replicated-server layer will join the replica to its group.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from gaia import proc
from gaia.errors import GaiaError
from gaia.tripod.entries import APP_PORT, APUS_PORT, TaskSpec

_PLACEHOLDER = re.compile(r"\{(port|apus_port|dir|address|task_id|index)\}")


def validate_spec(spec: TaskSpec) -> None:
    """Fail early (at submit) on an app the registry does not know."""
    if spec.app is not None:
        import apps

        apps.get(spec.app)


def expand(command: tuple[str, ...], values: dict[str, str]) -> list[str]:
    return [_PLACEHOLDER.sub(lambda m: values[m.group(1)], part) for part in command]


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
) -> ReplicaProcess:
    """Start the replica and wait until it serves (blocking; agents call it in a thread).
    Raises GaiaError with the cause when it cannot start."""
    data_dir = work_dir / "replicas" / key.replace("/", "-")
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "replica.json").write_text(json.dumps(info, indent=1, default=_jsonable))
    if spec.app is not None:
        import apps

        server = apps.get(spec.app)(port=ports[APP_PORT], data_dir=data_dir / "data", host=bind)
        server.start(timeout)
        return ReplicaProcess(key, server.process, data_dir, server)
    values = {
        "port": str(ports[APP_PORT]),
        "apus_port": str(ports.get(APUS_PORT, "")),
        "dir": str(data_dir),
        "address": address,
        "task_id": task_id,
        "index": str(index),
    }
    argv = expand(spec.command or (), values)
    try:
        process = proc.spawn(f"tripod-{key}", argv, data_dir / "task.log", cwd=data_dir)
    except OSError as exc:
        raise GaiaError(f"cannot run `{argv[0]}`: {exc}", "check the command") from None
    return ReplicaProcess(key, process, data_dir)


def _jsonable(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    raise TypeError(f"cannot encode {type(value).__name__}")
