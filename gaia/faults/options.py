"""What a fault campaign is asked to do, checked before anything starts.

Every refusal names its reason and the fix: network faults on the shm transport (there
are no packets to drop), fault kinds an infrastructure cannot inject, unknown apps.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from gaia.cluster.nemesis import (
    FAULT_KINDS,
    NETWORK_FAULTS,
    PROCESS_FAULTS,
    NetworkFaultUnsupportedError,
)
from gaia.errors import ConfigError

DEFAULT_KINDS = PROCESS_FAULTS
TRANSPORTS = ("shm", "tcp")


@dataclass
class CampaignOptions:
    runs: int = 10
    seed: int = 1
    app: str = "redis"
    infra: str = "apus"
    nemesis: tuple[str, ...] = DEFAULT_KINDS
    transport: str = "shm"
    replicas: int = 3
    durability: str = "memory"  # memory | fsync (the APUS log)
    first: int = 0  # index of the first run (replay run i of seed S: --first i --runs 1)
    run_s: float = 6.0  # faults start within this window; the workload runs through it
    tail_s: float = 1.0  # quiet time after the last fault healed, before the checks
    fault_s: tuple[float, float] = (0.5, 1.5)  # how long each fault is held
    gap_s: tuple[float, float] = (0.5, 1.5)  # quiet time between faults
    leader_share: float = 0.6  # share of process faults aimed at the current leader
    clients: int = 4
    keys: int = 24  # per run (fresh keys every run keep histories independent)
    read_share: float = 0.4
    cas_share: float = 0.2
    op_timeout: float = 1.0
    election_ms: int | None = None  # None: the infrastructure's default
    check_budget_s: float = 30.0  # linearizability search per run
    healthy_timeout_s: float = 120.0  # wait this long for full health before each fault
    fresh: bool = False  # a new deployment for every run (default: one, healed between)
    # a new deployment after this many runs (0: never): a restarted replica replays the
    # whole committed log, so a deployment's log must not grow without bound
    redeploy_every: int = 10
    timelines: int = 20  # runs whose throughput timeline goes into the record
    experiment: str = "faults"
    extra: dict[str, Any] = field(default_factory=dict)

    def validate(self, supported: Sequence[str] = FAULT_KINDS) -> CampaignOptions:
        from gaia.faults.clients import APPS

        if self.runs < 1 or self.first < 0:
            raise ConfigError(f"--runs {self.runs} / --first {self.first}",
                              "use --runs >= 1 and --first >= 0")
        if self.app not in APPS:
            raise ConfigError(f"unknown app {self.app!r}", f"choose one of {', '.join(APPS)}")
        if self.transport not in TRANSPORTS:
            raise ConfigError(f"unknown transport {self.transport!r}",
                              f"choose one of {', '.join(TRANSPORTS)}")
        unknown = [k for k in self.nemesis if k not in FAULT_KINDS]
        if unknown or not self.nemesis:
            raise ConfigError(f"unknown nemesis kinds {unknown or list(self.nemesis)}",
                              f"choose among {', '.join(FAULT_KINDS)}")
        network = [k for k in self.nemesis if k in NETWORK_FAULTS]
        if network and self.transport == "shm":
            raise NetworkFaultUnsupportedError(
                network[0], "the shm transport shares memory between replicas on one host:"
                " no packets cross a network, so partitions and loss would change nothing")
        refused = [k for k in self.nemesis if k not in supported]
        if refused:
            raise ConfigError(f"--infra {self.infra} cannot inject {', '.join(refused)}",
                              f"choose among {', '.join(supported)}")
        if self.durability not in ("memory", "fsync"):
            raise ConfigError(f"unknown durability {self.durability!r}", "use memory or fsync")
        if not 1 <= self.replicas <= 9:
            raise ConfigError(f"--replicas {self.replicas}", "use 1 to 9 replicas (3 is usual)")
        if self.clients < 1 or self.keys < 1:
            raise ConfigError("a campaign needs at least one client and one key",
                              "raise --clients / --keys")
        if self.run_s < self.gap_s[1] + self.fault_s[1]:
            raise ConfigError(f"runs of {self.run_s} s may hold no fault at all",
                              f"use --run-s >= {self.gap_s[1] + self.fault_s[1]:g}")
        if not 0 <= self.read_share + self.cas_share <= 1:
            raise ConfigError("read and cas shares add up to more than 1", "lower them")
        return self

    def run_seed(self, index: int) -> int:
        """The seed of run `index`: a function of the campaign seed and the index only,
        so one run of a campaign is replayed alone with --first/--runs 1."""
        return random.Random(f"gaia-faults-{self.seed}-{index}").getrandbits(48)

    def indices(self) -> range:
        return range(self.first, self.first + self.runs)

    def to_config(self) -> dict[str, Any]:
        data = asdict(self)
        data["nemesis"] = ",".join(self.nemesis)
        data["fault_s"] = list(self.fault_s)
        data["gap_s"] = list(self.gap_s)
        return data


def parse_kinds(text: str) -> tuple[str, ...]:
    """`kill,pause` -> ("kill", "pause"); `one_way` is accepted for `one-way`."""
    kinds = tuple(k.strip().replace("_", "-") for k in text.split(",") if k.strip())
    if not kinds:
        raise ConfigError("--nemesis is empty", f"choose among {', '.join(FAULT_KINDS)}")
    return kinds
