"""Measure one leader-driven protocol (multipaxos, dare, pysyncobj) at one replica count.

The load generator runs inside the leader's process (the protocols' own closed loop), so
latency is propose->commit at the leader, as for APUS. CPU of every replica process is
sampled from /proc around a second one-client run of ~2 s (kernel share); then a run with
`clients` outstanding proposals gives throughput; finally the replicas stop and their log
digests are compared (agreement).
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

from gaia.baselines.cluster import BaselineCluster
from gaia.baselines.measure import ProtocolResult, cpu_delta, cpu_run_rounds, cpu_seconds
from gaia.peers.base import data_root

WARMUP = 200


def storage_dir(storage: str, run_dir: Path) -> Path:
    """Where durable logs go: tmpfs for the comparison, the run directory's disk else."""
    if storage == "tmpfs":
        return data_root("tmpfs")
    path = Path(run_dir) / f"data-{uuid.uuid4().hex[:6]}"
    path.mkdir(parents=True)
    return path


def measure_leader_driven(protocol: str, replicas: int, *, clients: int = 8,
                          rounds: int = 5000, payload: int = 64, durability: str = "fsync",
                          storage: str = "tmpfs", transport: str = "shm",
                          run_dir: Path) -> ProtocolResult:
    native = {"dare": "shm", "multipaxos": "tcp", "pysyncobj": "tcp"}[protocol]
    result = ProtocolResult(protocol, replicas, clients, native, durability, storage,
                            measured_at="leader")
    if transport != native:
        result.notes["transport_note"] = f"{protocol} always uses {native}"
    data_dir = storage_dir(storage, run_dir) if durability == "fsync" else None
    cluster = BaselineCluster(protocol, replicas, run_dir, durability=durability,
                              data_dir=data_dir)
    try:
        cluster.start()
        cluster.run(WARMUP, 1, payload)
        one = cluster.run(rounds, 1, payload)
        result.latencies_ns = one.samples_ns
        pids = list(cluster.pids().values())
        before = cpu_seconds(pids)
        cpu_run = cluster.run(cpu_run_rounds(one.throughput, rounds), 1, payload)
        result.user_s, result.system_s = cpu_delta(before, cpu_seconds(pids))
        result.notes["cpu_run_seconds"] = cpu_run.elapsed_ns / 1e9
        result.notes["one_client_throughput"] = one.throughput
        if clients > 1:
            result.throughput = cluster.run(rounds, clients, payload).throughput
        else:
            result.throughput = one.throughput
        states = cluster.stop()
        result.agreement = len({(s["last"], s["digest"]) for s in states.values()}) == 1 \
            and len(states) == replicas
    finally:
        cluster.close()
        if data_dir is not None:
            shutil.rmtree(data_dir, ignore_errors=True)
    return result
