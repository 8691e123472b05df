"""Measure an external consensus server (etcd, ZooKeeper) at one replica count.

Clients run in this process and talk to the leader over loopback, so latency includes
one client round trip (~50 µs here) on top of the protocol — there is no other way in.
Kernel share covers the server processes only, over a one-client run of ~2 s.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from gaia.baselines.measure import ProtocolResult, cpu_delta, cpu_run_rounds, cpu_seconds
from gaia.peers.base import PeerCluster
from gaia.peers.etcd import EtcdCluster, grpc_available
from gaia.peers.zookeeper import ZooKeeperEnsemble

CLUSTERS: dict[str, type[PeerCluster]] = {"etcd": EtcdCluster, "zookeeper": ZooKeeperEnsemble}
WARMUP = 200
KEYS = 64  # writes cycle over a small key space, like a log of updates


def timed_puts(client, prefix: str, count: int, payload: bytes) -> np.ndarray:
    samples = np.zeros(count, dtype=np.int64)
    for i in range(count):
        start = time.perf_counter_ns()
        client.put(f"{prefix}{i % KEYS}", payload)
        samples[i] = time.perf_counter_ns() - start
    return samples


def throughput(cluster: PeerCluster, clients: int, total: int, payload: bytes) -> float:
    """Writes/s with `clients` threads, each with its own connection to the leader."""
    conns = [cluster.client() for _ in range(clients)]
    errors: list[Exception] = []

    def work(i: int) -> None:
        try:
            timed_puts(conns[i], f"t{i}-", total // clients, payload)
        except Exception as exc:  # reported, not raised from a thread
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    for conn in conns:
        conn.close()
    if errors:
        raise errors[0]
    return clients * (total // clients) / elapsed


def measure_external(protocol: str, replicas: int, *, clients: int = 8, rounds: int = 2000,
                     payload: int = 64, durability: str = "fsync", storage: str = "tmpfs",
                     transport: str = "tcp", run_dir) -> ProtocolResult:
    result = ProtocolResult(protocol, replicas, clients, "tcp", "fsync", storage,
                            measured_at="client")
    if durability != "fsync":
        result.notes["durability_note"] = f"{protocol} always syncs its log"
    if protocol == "etcd":
        result.notes["client"] = "grpc" if grpc_available() else "json-gateway"
    value = b"x" * payload
    cluster = CLUSTERS[protocol](replicas, run_dir, storage)
    try:
        cluster.start()
        client = cluster.client()
        try:
            timed_puts(client, "warm", WARMUP, value)
            result.latencies_ns = timed_puts(client, "k", rounds, value)
            ops = rounds / (result.latencies_ns.sum() / 1e9)
            pids = list(cluster.pids().values())
            before = cpu_seconds(pids)
            timed_puts(client, "c", cpu_run_rounds(ops, rounds // 4), value)
            result.user_s, result.system_s = cpu_delta(before, cpu_seconds(pids))
        finally:
            client.close()
        result.throughput = throughput(cluster, max(1, clients), rounds, value)
    finally:
        cluster.stop()
    return result
