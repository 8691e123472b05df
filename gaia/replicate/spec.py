"""What a replicated deployment is, stored once as `replicate.json` in its run dir.

Why a file: the agents, the APUS replicas and the supervisor are separate processes that
are started (and restarted) from the command line; each reads this spec, so ports, the
app and the group can never differ between them.

Layout of a run dir:
    replicate.json     this spec
    deployment.json    who leads, every replica's app port (gaia.deployment)
    apus/              the APUS group (group.json, r<N>/ with replica.log, status.json)
    r<N>/              agent.log, agent.json, agent.sock, data/ (the server's data dir)
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gaia.errors import ConfigError
from gaia.fsutil import load_json, write_atomically

SPEC_FILE = "replicate.json"
APPS = ("redis", "memcached", "mariadb", "mongodb")
TRANSPORTS = ("shm", "tcp")
PLACEHOLDERS = ("{port}", "{dir}")


@dataclass
class ReplicateSpec:
    replicas: list[int]
    app: str | None = None  # one of APPS, or None with `command`
    command: list[str] | None = None  # generic server: argv with {port} and {dir}
    transport: str = "shm"
    durability: str = "memory"
    app_ports: dict[int, int] = field(default_factory=dict)
    hosts: dict[int, str] = field(default_factory=dict)  # where each server listens
    # where each replica's guard serves checkpoints (empty: any free port, found through
    # the agents' status files; TRIPOD fixes them, its replicas' files are on other hosts)
    checkpoint_ports: dict[int, int] = field(default_factory=dict)
    namespaces: dict[int, str] = field(default_factory=dict)  # tcp mode: id -> netns
    front_port: int | None = None
    serialize: bool | None = None  # the shim's leader gate (None: the app's default)
    server_args: dict[str, Any] = field(default_factory=dict)  # kwargs of the apps Server
    election_ms: int = 300  # 2 shared cores: shorter ones elect on scheduling hiccups
    ring_dead_ms: int = 1000  # the shim fails closed when the replica is silent this long
    server_timeout: float = 90.0
    checkpoint_every: int = 0  # backups' guards checkpoint every N entries (0: on request)
    group_id: str = ""  # the APUS group's id (set when the group is created)

    def __post_init__(self) -> None:
        if (self.app is None) == (self.command is None):
            raise ConfigError("a deployment needs either --app or a command after --",
                              "e.g. `gaia replicate --app redis` or `gaia replicate -- "
                              "redis-server --port {port} --dir {dir}`")
        if self.app is not None and self.app not in APPS:
            raise ConfigError(f"unknown app {self.app!r}", f"use one of {', '.join(APPS)}, "
                              "or the generic form `-- CMD ARGS`")
        if self.command is not None:
            if not self.command:
                raise ConfigError("the command after -- is empty", "name a server command")
            if not any("{port}" in arg for arg in self.command):
                raise ConfigError(
                    "the server command has no {port} placeholder, so every replica would "
                    "listen on the same port", "put {port} where the command takes its port")
        if self.transport not in TRANSPORTS:
            raise ConfigError(f"unknown transport {self.transport!r}",
                              f"use one of {', '.join(TRANSPORTS)}")
        if not 1 <= len(self.replicas) <= 9 or len(set(self.replicas)) != len(self.replicas):
            raise ConfigError(f"--replicas {len(self.replicas)} is outside 1..9",
                              "use e.g. --replicas 3")

    @property
    def name(self) -> str:
        """The app's name, or the generic command's program name."""
        return self.app or Path(self.command[0]).name  # type: ignore[index]

    def server_command(self, port: int, data_dir: Path) -> list[str]:
        """The generic command with its placeholders filled in."""
        assert self.command is not None
        return [arg.replace("{port}", str(port)).replace("{dir}", str(data_dir))
                for arg in self.command]

    # -- paths ----------------------------------------------------------------------
    @staticmethod
    def apus_dir(run_dir: Path) -> Path:
        return Path(run_dir) / "apus"

    @staticmethod
    def replica_dir(run_dir: Path, replica: int) -> Path:
        return Path(run_dir) / f"r{replica}"

    # -- persistence ----------------------------------------------------------------
    def save(self, run_dir: Path) -> Path:
        return write_atomically(Path(run_dir) / SPEC_FILE, json.dumps(asdict(self), indent=1),
                                sync=False)

    @classmethod
    def load(cls, run_dir: Path) -> ReplicateSpec:
        data = load_json(Path(run_dir) / SPEC_FILE, "no replicated deployment",
                         "start one with `gaia replicate` or pass its --run-dir")
        for key in ("app_ports", "hosts", "namespaces", "checkpoint_ports"):
            data[key] = {int(k): v for k, v in data.get(key, {}).items()}
        return cls(**data)
