"""What every replica of a group must agree on, stored once as `group.json` in the run dir.

Why a file: replicas are separate processes started (and restarted) from the command
line; each reads the same spec, so the layout, group id and timing can never differ
between them. The spec is also what `gaia status` and clients read to find segments.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gaia.apus.layout import LayoutConfig, new_group_id
from gaia.apus.logstore import LogConfig
from gaia.apus.messages import Config
from gaia.errors import ConfigError
from gaia.fsutil import load_json

SPEC_FILE = "group.json"
TRANSPORTS = ("shm", "tcp")
DURABILITIES = ("memory", "fsync")


@dataclass
class GroupSpec:
    replicas: list[int]
    group_id: str = field(default_factory=new_group_id)
    transport: str = "shm"
    durability: str = "memory"
    layout: LayoutConfig = field(default_factory=LayoutConfig)
    log: LogConfig = field(default_factory=LogConfig)
    ring_slots: int = 1024
    ring_slot_size: int = 16384
    addresses: dict[int, str] = field(default_factory=dict)  # tcp: id -> "host:port"
    namespaces: dict[int, str] = field(default_factory=dict)  # id -> network namespace
    priorities: dict[int, int] = field(default_factory=dict)  # default 1; 0 never leads
    executing: dict[int, bool] = field(default_factory=dict)  # default True
    tick_us: int = 1000
    election_ticks: int = 20
    heartbeat_ticks: int = 2
    retransmit_ticks: int = 5
    batch_events: int = 64
    pin: str = "none"  # "none", "spread" (replica i on CPU i), a CPU, or "0,1,2"
    spin: str = "auto"  # "auto" (spin when every replica has a core), "spin", "shared",
    # "yield" (spin, then sched_yield; never sleeps)
    timing: bool = False  # per-phase latency histograms inside the hot loop
    ring_dead_ms: int = 500  # producers fail closed when the replica is silent this long

    def __post_init__(self) -> None:
        if self.transport not in TRANSPORTS:
            raise ConfigError(f"unknown transport {self.transport!r}",
                              f"choose one of {', '.join(TRANSPORTS)}")
        if self.durability not in DURABILITIES:
            raise ConfigError(f"unknown durability {self.durability!r}",
                              f"choose one of {', '.join(DURABILITIES)}")
        if not self.replicas or len(set(self.replicas)) != len(self.replicas):
            raise ConfigError("a group needs distinct replica ids", "e.g. --replicas 3")
        if max(self.replicas) >= self.layout.max_members:
            raise ConfigError(
                f"replica id {max(self.replicas)} does not fit max_members "
                f"{self.layout.max_members}", "raise max_members in the layout")
        if self.ring_slot_size - 64 + 24 > self.layout.max_payload:
            raise ConfigError("an input ring event would not fit in one log entry",
                              "keep ring_slot_size - 40 <= layout.max_payload")

    def members(self) -> Config:
        return Config({r: (True, self.executing.get(r, True), self.priorities.get(r, 1))
                       for r in self.replicas})

    def replica_dir(self, run_dir: Path, replica: int) -> Path:
        return Path(run_dir) / f"r{replica}"

    # -- persistence ------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["layout"] = self.layout.to_dict()
        data["log"] = asdict(self.log)
        return data

    def save(self, run_dir: Path) -> Path:
        path = Path(run_dir) / SPEC_FILE
        path.write_text(json.dumps(self.to_dict(), indent=1))
        return path

    @classmethod
    def load(cls, run_dir: Path) -> GroupSpec:
        data = load_json(Path(run_dir) / SPEC_FILE, "no APUS group",
                         "start one with `gaia apus up` or pass its --run-dir")
        data["layout"] = LayoutConfig.from_dict(data["layout"])
        data["log"] = LogConfig(**data["log"])
        for key in ("addresses", "namespaces", "priorities", "executing"):
            data[key] = {int(k): v for k, v in data.get(key, {}).items()}
        return cls(**data)
