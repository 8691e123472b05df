"""What one protocol measurement yields, and how its kernel share is taken.

Kernel share = system CPU time / (user + system) summed over the protocol's server
processes (every replica; not the load generator) over the measured run, read from
/proc/<pid>/stat (fields utime, stime; all threads of a process). It tests the GAIA
proposal's observation that most of traditional Paxos's latency growth is in the kernel.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from analysis.records import ResultRecord

EXPERIMENT = "consensus_latency"
_TICKS = os.sysconf("SC_CLK_TCK")
# /proc splits CPU time into user and system by clock ticks (10 ms): the kernel-share run
# must last long enough for the split to mean something, whatever the protocol's speed.
CPU_RUN_SECONDS = 2.0
CPU_RUN_MAX_ROUNDS = 300_000


def cpu_seconds(pids: Iterable[int]) -> dict[int, tuple[float, float]]:
    """(user s, system s) consumed so far by each live pid."""
    out = {}
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[pid] = (int(fields[11]) / _TICKS, int(fields[12]) / _TICKS)  # utime, stime
    return out


def cpu_delta(before: dict[int, tuple[float, float]],
              after: dict[int, tuple[float, float]]) -> tuple[float, float]:
    """User and system seconds spent between two samples by pids present in both."""
    user = sum(after[p][0] - before[p][0] for p in before if p in after)
    system = sum(after[p][1] - before[p][1] for p in before if p in after)
    return user, system


def cpu_run_rounds(one_client_ops_per_s: float, floor: int) -> int:
    """Proposals for a one-client run of about CPU_RUN_SECONDS."""
    return int(min(CPU_RUN_MAX_ROUNDS, max(floor, one_client_ops_per_s * CPU_RUN_SECONDS)))


def percentiles_us(samples_ns: np.ndarray) -> dict[str, float]:
    if samples_ns.size == 0:
        return {}
    p50, p99, p999 = np.percentile(samples_ns, [50, 99, 99.9]) / 1000.0
    return {"p50_us": float(p50), "p99_us": float(p99), "p999_us": float(p999),
            "mean_us": float(samples_ns.mean() / 1000.0)}


@dataclass
class ProtocolResult:
    """One protocol at one replica count: latency with one client, throughput with
    `clients`, CPU split over the one-client run, or why it could not run."""

    protocol: str
    replicas: int
    clients: int = 1
    transport: str = "shm"
    durability: str = "fsync"
    storage: str = "tmpfs"  # where durable data lives: tmpfs or disk
    latencies_ns: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    throughput: float | None = None
    user_s: float = 0.0
    system_s: float = 0.0
    measured_at: str = "leader"  # leader (in-process proposer) or client (over the network)
    skipped: str = ""
    agreement: bool | None = None  # all surviving replicas' logs equal after the runs
    notes: dict[str, Any] = field(default_factory=dict)

    @property
    def kernel_share(self) -> float | None:
        total = self.user_s + self.system_s
        return self.system_s / total if total > 0 else None

    def summary(self) -> dict[str, float]:
        return percentiles_us(self.latencies_ns)

    def to_record(self) -> ResultRecord:
        record = ResultRecord(
            experiment=EXPERIMENT, infra=self.protocol, app="consensus",
            transport=self.transport, durability=self.durability,
            config={"protocol": self.protocol, "replicas": self.replicas,
                    "clients": self.clients, "storage": self.storage,
                    "measured_at": self.measured_at, "cpus": os.cpu_count()},
        )
        if self.latencies_ns.size:
            record.add_latencies_ns("latency", self.latencies_ns)
        record.throughput = self.throughput
        record.metrics.update({
            **self.summary(), "user_s": self.user_s, "system_s": self.system_s,
            "kernel_share": self.kernel_share, "skipped": self.skipped,
            "agreement": self.agreement, "timeshared": self.replicas > (os.cpu_count() or 1),
            **self.notes,
        })
        return record
