"""`deployment.json`: how clients and the harness find a deployment's replicas and leader.

Every deployment (APUS group, replicated server, TRIPOD task, VM pair) writes this file in
its run directory and rewrites it (atomically: write + rename) whenever the leader or a
replica's state changes. `gaia status --json` prints it. Leader-aware clients read it and
reconnect to the new leader on failover.

Format (schema 1):
    {"schema": 1, "kind": "apus" | "replicate" | "tripod" | "vm",
     "group_id": "<hex>", "run_dir": "...", "transport": "shm" | "tcp" | "rdma",
     "durability": "memory" | "fsync", "app": "redis" | null,
     "view": 4, "leader": 1,                     # leader = replica id, or null
     "front_port": 7000 | null,                  # stable port forwarding to the leader
     "replicas": [{"id": 0, "role": "leader" | "backup" | "learner" | "standby" | "down",
                   "host": "127.0.0.1", "pid": 1234, "app_port": 6380 | null,
                   "control_port": 9000 | null, "executing": true}, ...],
     "updated": "<iso time>", "extra": {...}}
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gaia.errors import GaiaError
from gaia.fsutil import write_atomically

FILENAME = "deployment.json"
SCHEMA = 1


@dataclass
class ReplicaInfo:
    id: int
    role: str = "backup"
    host: str = "127.0.0.1"
    pid: int | None = None
    app_port: int | None = None
    control_port: int | None = None
    executing: bool = True


@dataclass
class Deployment:
    kind: str
    run_dir: str
    replicas: list[ReplicaInfo] = field(default_factory=list)
    group_id: str = ""
    transport: str = "shm"
    durability: str = "memory"
    app: str | None = None
    view: int = 0
    leader: int | None = None
    front_port: int | None = None
    updated: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    schema: int = SCHEMA

    @property
    def path(self) -> Path:
        return Path(self.run_dir) / FILENAME

    def leader_replica(self) -> ReplicaInfo | None:
        for replica in self.replicas:
            if replica.id == self.leader:
                return replica
        return None

    def leader_endpoint(self) -> tuple[str, int]:
        """(host, app_port) of the current leader's server."""
        replica = self.leader_replica()
        if replica is None or replica.app_port is None:
            raise GaiaError(
                f"deployment {self.run_dir} has no serving leader right now",
                "wait for the view change to finish, or check `gaia status`",
            )
        return replica.host, replica.app_port

    def save(self) -> Path:
        self.updated = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        path = self.path
        return write_atomically(path, json.dumps(asdict(self), indent=1), sync=False)

    @classmethod
    def load(cls, run_dir: str | Path) -> Deployment:
        path = Path(run_dir)
        if path.is_dir():
            path = path / FILENAME
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise GaiaError(
                f"no {FILENAME} in {path.parent}",
                "start a deployment first (e.g. `gaia apus up`) or pass its run directory",
            ) from None
        except json.JSONDecodeError as exc:
            raise GaiaError(f"{path} is not valid JSON ({exc})", "restart the deployment") from None
        replicas = [ReplicaInfo(**r) for r in data.pop("replicas", [])]
        return cls(replicas=replicas, **data)


def wait_for_leader(
    run_dir: str | Path, timeout: float, not_leader: int | None = None, poll: float = 0.01
) -> Deployment:
    """Re-read deployment.json until it names a serving leader other than `not_leader`."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            dep = Deployment.load(run_dir)
            replica = dep.leader_replica()
            if replica is not None and dep.leader != not_leader:
                return dep
        except GaiaError:
            pass
        if time.monotonic() > deadline:
            raise GaiaError(
                f"no new leader in {run_dir} within {timeout:.1f} s",
                "check `gaia status` and the replicas' logs in the run directory",
            )
        time.sleep(poll)
