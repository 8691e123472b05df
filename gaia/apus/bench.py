"""APUS's latency benchmark: one-client consensus latency with a per-phase breakdown from
inside the hot loop, throughput with batching under many proposers, and the bare
shared-memory ping-pong of the same run as the floor.

The client is a numba loop in this process writing into the leader's input ring (the
same path the shim takes) and spinning on its slot until committed; the leader records
when each entry was taken (L1), persisted (L2), written to the backups (L3), seen on a
majority and its producers woken, into histograms in a shared stats segment.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import asdict, dataclass

import numpy as np
from numba import njit

from analysis.records import ResultRecord, new_histogram
from gaia.apus import fastpath as fp
from gaia.apus.layout import LayoutConfig
from gaia.apus.ringio import ring_name
from gaia.apus.runtime.group import start_group, stop_group
from gaia.apus.runtime.segments import stats_segment
from gaia.apus.runtime.spec import GroupSpec
from gaia.apus.runtime.status import live_deployment
from gaia.errors import GaiaError
from gaia.intercept import ring_layout as RL
from gaia.intercept.ring import Ring, nb_await, nb_produce
from gaia.lowlevel.syscalls import now_ns
from gaia.paths import new_run_dir

PHASES = {fp.PH_PERSIST: "phase_persist", fp.PH_SEND: "phase_send",
          fp.PH_QUORUM: "phase_quorum_wait", fp.PH_NOTIFY: "phase_commit_notify",
          fp.PH_COMMIT: "phase_leader_total"}


@dataclass
class LatencyParams:
    replicas: int = 3
    clients: int = 32  # concurrent proposers for the throughput run
    transport: str = "shm"
    durability: str = "memory"
    ops: int = 20_000  # one-client proposals measured
    warmup: int = 2_000
    seconds: float = 3.0  # throughput run
    payload: int = 64
    pin: str = "none"
    spin: str = "auto"
    floor_rounds: int = 50_000
    client_spin_ns: int = 0  # then it sleeps on the commit futex; 0: 1 ms when every
    # process has a core, else 20 µs (a spinning client starves the replicas)


@njit(nogil=True)
def _one_client(seg: np.ndarray, payload: np.ndarray, n: int, out: np.ndarray,
                spin_ns: int, pid: int) -> int:
    for i in range(n):
        start = now_ns()
        ticket = nb_produce(seg, RL.EV_RAW, 0, np.uint64(0), payload, pid)
        if ticket < 0:
            return i
        status, _ = nb_await(seg, np.uint64(ticket), spin_ns, 5_000_000_000)
        out[i] = now_ns() - start
        if status != RL.ST_COMMITTED:
            return i
    return n


@njit(nogil=True)
def _closed_loop(seg: np.ndarray, payload: np.ndarray, until_ns: int, done: np.ndarray,
                 k: int, pid: int) -> None:
    while now_ns() < until_ns:
        ticket = nb_produce(seg, RL.EV_RAW, 0, np.uint64(k), payload, pid)
        if ticket < 0:
            return
        status, _ = nb_await(seg, np.uint64(ticket), 20_000, 5_000_000_000)
        if status != RL.ST_COMMITTED:
            return
        done[k] += 1


def _bucket_histogram(counts: np.ndarray):
    hist = new_histogram()
    for b in np.nonzero(counts)[0]:
        hist.record_value(max(1, fp.bucket_value(int(b))), int(counts[b]))
    return hist


def run_apus(p: LatencyParams) -> list[ResultRecord]:
    """One group of `p.replicas` replicas: latency, phases, throughput, floor."""
    from gaia.apus.transport import pingpong

    spec = GroupSpec(replicas=list(range(p.replicas)), transport=p.transport,
                     durability=p.durability, layout=LayoutConfig(max_members=p.replicas),
                     timing=True, pin=p.pin, spin=p.spin, election_ticks=1000,
                     ring_dead_ms=2000)
    if p.transport == "tcp":
        from gaia.net import free_ports

        spec.addresses = {r: f"127.0.0.1:{port}" for r, port in
                          zip(spec.replicas, free_ports(p.replicas), strict=True)}
    run_dir, _ = start_group(spec, new_run_dir("latency-apus"), wait=300)
    try:
        leader = live_deployment(run_dir).leader
        if leader is None:
            raise GaiaError("the benchmark group lost its leader", f"see {run_dir}")
        ring = Ring.open(ring_name(spec.group_id, leader))
        stats = stats_segment(spec.group_id, leader)
        payload = np.frombuffer(os.urandom(p.payload), dtype=np.uint8)
        samples = np.zeros(p.ops + p.warmup, dtype=np.int64)
        spin = p.client_spin_ns or (1_000_000 if p.replicas + 1 <= (os.cpu_count() or 1)
                                    else 20_000)
        _one_client(ring.seg, payload, p.warmup, samples, spin, os.getpid())
        stats.hist[:] = 0
        done = _one_client(ring.seg, payload, p.ops, samples, spin, os.getpid())
        if done < p.ops:
            raise GaiaError(f"only {done} of {p.ops} proposals committed",
                            f"see the replicas' logs in {run_dir}")
        phases = stats.hist.copy()
        stats.hist[:] = 0
        ops_per_s = _throughput(ring, payload, p.clients, p.seconds)
        batches = stats.hist[fp.PH_BATCH].copy()
        ring.close()
        stats.close()
    finally:
        stop_group(run_dir)
    floor = pingpong.run_shm(p.floor_rounds, pinned=p.pin != "none") \
        if p.transport == "shm" else pingpong.run_tcp(p.floor_rounds // 5)
    return [_record(p, samples[: p.ops], phases, batches, ops_per_s, floor)]


def _throughput(ring: Ring, payload: np.ndarray, clients: int, seconds: float) -> float:
    done = np.zeros(clients, dtype=np.int64)
    _closed_loop(ring.seg, payload, 0, done, 0, os.getpid())  # compile before the clock runs
    until = now_ns() + int(seconds * 1e9)
    threads = [threading.Thread(target=_closed_loop, args=(ring.seg, payload, until, done, k,
                                                           os.getpid()), daemon=True)
               for k in range(clients)]
    start = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return float(done.sum()) / max(1e-9, time.monotonic() - start)


def _record(p: LatencyParams, samples: np.ndarray, phases: np.ndarray, batches: np.ndarray,
            ops_per_s: float, floor: np.ndarray) -> ResultRecord:
    config = {**asdict(p), "pinning": p.pin != "none", "cpus": os.cpu_count()}
    rec = ResultRecord("latency", infra="apus", transport=p.transport,
                       durability=p.durability, config=config)
    lat = rec.add_latencies_ns("latency", samples)
    for phase, name in PHASES.items():
        rec.add_histogram(name, _bucket_histogram(phases[phase]))
    rec.add_latencies_ns("pingpong_rtt", floor)
    rec.add_histogram("batch_events", _bucket_histogram(batches))
    rec.throughput = ops_per_s
    floor_p50 = float(np.percentile(floor, 50))
    rec.metrics = {
        "p50_us": lat.get_value_at_percentile(50) / 1e3,
        "p99_us": lat.get_value_at_percentile(99) / 1e3,
        "p999_us": lat.get_value_at_percentile(99.9) / 1e3,
        "floor_p50_us": floor_p50 / 1e3,
        "p50_over_floor": lat.get_value_at_percentile(50) / max(1.0, floor_p50),
        "ops_per_s": ops_per_s,
        "mean_batch": float((np.arange(batches.size) * batches).sum() / max(1, batches.sum())),
        "note": "2 shared cores, other work running" if (os.cpu_count() or 1) <= 2 else "",
    }
    return rec
