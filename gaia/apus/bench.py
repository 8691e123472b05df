"""APUS's latency benchmark, measured two ways, with the bare ping-pong of the same run.

- client-observed (`latency`): a numba client in this process writes into the leader's
  input ring (the path the shim takes) and waits on its slot until committed; this
  includes waking the client, a process on another CPU.
- leader-side (`latency_leader`): the leader's own poll thread proposes into its ring and
  polls until the entry commits (runtime/selfdrive.py) — how the DARE-style and
  Multi-Paxos baselines are measured (`measured_at="leader"`), so ratios against them
  compare like with like.

Also: the leader's per-phase histograms (L1 take -> L2 persisted -> L3 written -> quorum
seen -> producers woken), throughput with `clients` concurrent proposers (batching), the
replicas' user/system CPU over a ~2 s leader-side run (kernel share), and the shm
ping-pong floor. `run_apus` makes one `latency` record (invoke latency, asv);
`sweep_runner` gives the consensus_latency experiment one ProtocolResult per
measurement point.

Options tried on this 2-vCPU machine (3 replicas, shm, memory durability, other helpers
loading both CPUs; p50 µs, one run each, so read them as rough):
see `OPTIONS_TRIED` below and the issue-6 report.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
from numba import njit

from analysis.records import ResultRecord, new_histogram
from gaia.apus import fastpath as fp
from gaia.apus.layout import LayoutConfig
from gaia.apus.ringio import ring_name
from gaia.apus.runtime.group import start_group, stop_group
from gaia.apus.runtime.segments import stats_segment
from gaia.apus.runtime.selfdrive import leader_loop
from gaia.apus.runtime.spec import GroupSpec
from gaia.apus.runtime.status import live_deployment, read_statuses
from gaia.apus.transport.pinning import cpu_for, pin_thread, unpin_thread
from gaia.errors import GaiaError
from gaia.intercept import ring_layout as RL
from gaia.intercept.ring import Ring, nb_await, nb_produce
from gaia.lowlevel.syscalls import now_ns
from gaia.paths import new_run_dir

PHASES = {fp.PH_PERSIST: "phase_persist", fp.PH_SEND: "phase_send",
          fp.PH_QUORUM: "phase_quorum_wait", fp.PH_NOTIFY: "phase_commit_notify",
          fp.PH_COMMIT: "phase_leader_total"}
LEADER_PREFIX = "leader_"  # histograms of the leader-side run: leader_phase_*, ...
CPU_RUN_SECONDS = 2.0  # /proc splits CPU time in 10 ms ticks: run long enough
NO_CPU = -1


@dataclass
class LatencyParams:
    replicas: int = 3
    clients: int = 8  # concurrent proposers for the throughput run
    transport: str = "shm"
    durability: str = "memory"
    storage: str = "tmpfs"  # fsync mode: the replicas' files on tmpfs or disk
    ops: int = 20_000  # client-observed proposals measured
    leader_ops: int = 20_000  # leader-side proposals measured (0: skip)
    warmup: int = 2_000
    seconds: float = 2.0  # throughput run
    payload: int = 64
    pin: str = "none"  # replicas' pinning (none, spread, a CPU, a list)
    client_cpu: int = NO_CPU  # pin the measuring client to this CPU
    spin: str = "auto"
    floor_rounds: int = 20_000
    client_spin_ns: int = 0  # client spins this long, then sleeps on the commit futex;
    # 0: 1 ms when every process has a core, else 20 µs (a spinning client starves us)
    cpu_run: bool = True  # measure the replicas' user/system CPU (kernel share)


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


def phase_p50s(hist: np.ndarray) -> dict[str, float]:
    """Median of each phase histogram in µs (bucket midpoints), phases that ran."""
    out = {}
    for phase, name in PHASES.items():
        counts = hist[phase]
        total = int(counts.sum())
        if total:
            bucket = int(np.searchsorted(np.cumsum(counts), (total + 1) // 2))
            out[name.removeprefix("phase_")] = fp.bucket_value(bucket) / 1e3
    return out


def _p(samples: np.ndarray, pct: float) -> float:
    return float(np.percentile(samples, pct)) / 1e3 if samples.size else float("nan")


@dataclass
class ApusRun:
    """Everything one group measured (ns unless named otherwise)."""

    params: LatencyParams
    client_ns: np.ndarray
    leader_ns: np.ndarray
    phases: np.ndarray  # hot-loop histograms of the client run [PH_LEN, buckets]
    leader_phases: np.ndarray  # ... of the leader-side run
    batches: np.ndarray  # events per entry in the throughput run
    ops_per_s: float
    floor_ns: np.ndarray
    user_s: float = 0.0
    system_s: float = 0.0
    notes: dict = field(default_factory=dict)

    @property
    def kernel_share(self) -> float | None:
        total = self.user_s + self.system_s
        return self.system_s / total if total > 0 else None

    def record(self) -> ResultRecord:
        """The `latency` record (one per run: invoke latency's detail, asv)."""
        p = self.params
        config = {**asdict(p), "pinning": p.pin != "none", "cpus": os.cpu_count()}
        rec = ResultRecord("latency", infra="apus", transport=p.transport,
                           durability=p.durability, config=config)
        rec.add_latencies_ns("latency", self.client_ns)
        if self.leader_ns.size:
            rec.add_latencies_ns("latency_leader", self.leader_ns)
        for phase, name in PHASES.items():
            rec.add_histogram(name, _bucket_histogram(self.phases[phase]))
            if self.leader_ns.size:
                rec.add_histogram(LEADER_PREFIX + name,
                                  _bucket_histogram(self.leader_phases[phase]))
        rec.add_latencies_ns("pingpong_rtt", self.floor_ns)
        rec.add_histogram("batch_events", _bucket_histogram(self.batches))
        rec.throughput = self.ops_per_s
        counts = self.batches
        rec.metrics = {
            "p50_us": _p(self.client_ns, 50), "p99_us": _p(self.client_ns, 99),
            "p999_us": _p(self.client_ns, 99.9),
            "leader_p50_us": _p(self.leader_ns, 50), "leader_p99_us": _p(self.leader_ns, 99),
            "leader_p999_us": _p(self.leader_ns, 99.9),
            "floor_p50_us": _p(self.floor_ns, 50), "floor_p99_us": _p(self.floor_ns, 99),
            "p50_over_floor": _p(self.client_ns, 50) / max(1e-3, _p(self.floor_ns, 50)),
            "ops_per_s": self.ops_per_s,
            "mean_batch": float((np.arange(counts.size) * counts).sum() / max(1, counts.sum())),
            "user_s": self.user_s, "system_s": self.system_s,
            "kernel_share": self.kernel_share, **self.notes,
            "note": "2 shared cores, other work running" if (os.cpu_count() or 1) <= 2 else "",
        }
        return rec

    def protocol_results(self, clients: int, storage: str) -> list:
        """One consensus_latency result per measurement point (leader-side first)."""
        from gaia.baselines.measure import ProtocolResult

        p = self.params
        common = {"notes": {"floor_p50_us": _p(self.floor_ns, 50), **self.notes},
                  "throughput": self.ops_per_s, "user_s": self.user_s,
                  "system_s": self.system_s}
        out = []
        for at, samples, phases in (("leader", self.leader_ns, self.leader_phases),
                                    ("client", self.client_ns, self.phases)):
            if samples.size:
                result = ProtocolResult("apus", p.replicas, clients, p.transport,
                                        p.durability, storage, latencies_ns=samples,
                                        measured_at=at, **common)
                result.notes = {**result.notes, "phases_p50_us": phase_p50s(phases)}
                out.append(result)
        return out


def _group_spec(p: LatencyParams) -> GroupSpec:
    spec = GroupSpec(replicas=list(range(p.replicas)), transport=p.transport,
                     durability=p.durability, layout=LayoutConfig(max_members=p.replicas),
                     timing=True, pin=p.pin, spin=p.spin, election_ticks=1000,
                     ring_dead_ms=2000, priorities={0: 2})  # replica 0 leads (pinning)
    if p.transport == "tcp":
        from gaia.net import free_ports

        spec.addresses = {r: f"127.0.0.1:{port}" for r, port in
                          zip(spec.replicas, free_ports(p.replicas), strict=True)}
    return spec


def _run_dir(p: LatencyParams) -> Path:
    """Where the group lives; fsync on tmpfs puts it (and so the logs) under /dev/shm."""
    if p.durability == "fsync" and p.storage == "tmpfs":
        from gaia.peers.base import data_root

        return data_root("tmpfs")
    return new_run_dir("latency-apus")


def client_spin(p: LatencyParams) -> int:
    if p.client_spin_ns:
        return p.client_spin_ns
    return 1_000_000 if p.replicas + 1 <= (os.cpu_count() or 1) else 20_000


def measure(p: LatencyParams) -> ApusRun:
    """Start a group of `p.replicas`, measure it both ways, stop it; then the floor."""
    from gaia.apus.transport import pingpong
    from gaia.baselines.measure import cpu_delta, cpu_seconds

    spec = _group_spec(p)
    run_dir = _run_dir(p)
    start_group(spec, run_dir, wait=300)
    failed = True
    try:
        leader = live_deployment(run_dir).leader
        if leader is None:
            raise GaiaError("the benchmark group lost its leader", f"see {run_dir}")
        pids = [s.pid for s in read_statuses(run_dir, spec).values()]
        ring = Ring.open(ring_name(spec.group_id, leader))
        stats = stats_segment(spec.group_id, leader)
        leader_dir = spec.replica_dir(run_dir, leader)
        payload = np.frombuffer(os.urandom(p.payload), dtype=np.uint8)
        client = np.zeros(p.ops + p.warmup, dtype=np.int64)
        spin = client_spin(p)
        pin_thread(None if p.client_cpu == NO_CPU else cpu_for(0, p.client_cpu))
        try:
            _one_client(ring.seg, payload, p.warmup, client, spin, os.getpid())
            stats.hist[:] = 0
            done = _one_client(ring.seg, payload, p.ops, client, spin, os.getpid())
        finally:
            unpin_thread()
        if done < p.ops:
            raise GaiaError(f"only {done} of {p.ops} proposals committed",
                            f"see the replicas' logs in {run_dir}")
        phases = stats.hist.copy()
        leader_ns = np.zeros(0, dtype=np.int64)
        leader_phases = np.zeros_like(phases)
        if p.leader_ops:
            leader_loop(stats.control, leader_dir, p.warmup, p.payload)
            stats.hist[:] = 0
            leader_ns = leader_loop(stats.control, leader_dir, p.leader_ops, p.payload)
            leader_phases = stats.hist.copy()
            if live_deployment(run_dir).leader != leader:
                raise GaiaError("the leader changed during the benchmark",
                                f"the machine may be overloaded; see {run_dir}")
        user = system = 0.0
        if p.cpu_run:
            base = leader_ns if leader_ns.size else client[: p.ops]
            rounds = int(min(300_000, max(1000, CPU_RUN_SECONDS * 1e9 / max(1, base.mean()))))
            before = cpu_seconds(pids)
            if leader_ns.size:
                leader_loop(stats.control, leader_dir, rounds, p.payload)
            else:
                _one_client(ring.seg, payload, rounds, np.zeros(rounds, np.int64), spin,
                            os.getpid())
            user, system = cpu_delta(before, cpu_seconds(pids))
        stats.hist[:] = 0
        ops_per_s = _throughput(ring, payload, p.clients, p.seconds)
        batches = stats.hist[fp.PH_BATCH].copy()
        ring.close()
        stats.close()
        failed = False
    finally:
        stop_group(run_dir)
        if not failed:  # a failed run keeps its replicas' logs for the error's "see"
            shutil.rmtree(run_dir, ignore_errors=True)
    floor = pingpong.run_shm(p.floor_rounds, pinned=p.pin != "none") \
        if p.transport == "shm" else pingpong.run_tcp(max(1000, p.floor_rounds // 5))
    return ApusRun(p, client[: p.ops], leader_ns, phases, leader_phases, batches, ops_per_s,
                   floor, user, system, {"client_spin_ns": spin})


def run_apus(p: LatencyParams) -> list[ResultRecord]:
    """One group of `p.replicas` replicas: latency both ways, phases, throughput, floor."""
    return [measure(p).record()]


def sweep_runner(replicas: int, *, clients: int = 8, rounds: int = 2000, payload: int = 64,
                 durability: str = "fsync", storage: str = "tmpfs", transport: str = "shm",
                 run_dir: Path | None = None, **options) -> list:
    """The consensus_latency experiment's runner: leader-side and client-observed
    results of one group (`options`: more LatencyParams fields, e.g. pin)."""
    p = LatencyParams(replicas=replicas, clients=clients, transport=transport,
                      durability=durability, storage=storage, ops=rounds, leader_ops=rounds,
                      warmup=max(200, rounds // 10), payload=payload,
                      floor_rounds=max(2000, rounds * 2), **options)
    return measure(p).protocol_results(clients, storage)


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
