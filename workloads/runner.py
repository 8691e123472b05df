"""Running one YCSB phase (load or run) with N client threads, optionally in P processes.

As site.ycsb.Client: the operations are split over the clients (Client.initDb), the
target rate too (target / clients per client), every client gets its own binding
connection and its own measurements, and the phase's RunTime spans from starting the
clients to the last one finishing (cleanup included). Throughput = operations / RunTime.

Threads share the Python interpreter (the GIL serialises their Python work; a client
mostly waits on its socket, which releases it). `procs > 1` spreads the clients round
robin over that many processes for real parallelism (forked when this process has no
other thread, spawned otherwise); the counters YCSB's threads share (load key sequence,
acknowledged insert counter) live in shared memory, so the workload is the same either
way. Connections are opened before the clock starts; an unreachable server aborts the
phase with one line.
"""

from __future__ import annotations

import multiprocessing
import queue
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gaia.errors import GaiaError
from workloads.ackcounter import SharedState
from workloads.bindings import binding_class, open_binding
from workloads.bindings.endpoint import Endpoint
from workloads.client import ClientPlan, MeasuredDB, drive, split_operations
from workloads.core import CoreWorkload
from workloads.measurements import Measurements
from workloads.progress import StatusLine
from workloads.properties import WorkloadConfig, validate
from workloads.writelog import WriteRecorder

S_STOP = 5  # slot in the shared counters: 1 = stop now (interrupt)
POLL_S = 0.25


@dataclass
class PhaseSpec:
    binding: str
    endpoint: Endpoint
    config: WorkloadConfig
    load: bool
    clients: int = 1  # YCSB's threadcount: client threads in all, over `procs` processes
    procs: int = 1
    record_writes: Path | None = None

    @property
    def phase(self) -> str:
        return "load" if self.load else "run"


@dataclass
class PhaseResult:
    phase: str
    measurements: Measurements
    runtime_ms: int
    operations: int
    clients: int
    failover_gaps_s: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass
class _ClientOutcome:
    ops: int = 0
    measurements: Any = None
    gaps: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    crash: str | None = None
    finished: float = 0.0  # time.monotonic() after the client's cleanup


def _measurements(config: WorkloadConfig) -> Measurements:
    return Measurements(
        report_each_error=config.reportlatencyforeacherror,
        tracked_errors=set(config.latencytrackederrors),
    )


def _plans(spec: PhaseSpec, clients: int) -> list[ClientPlan]:
    cfg = spec.config
    total = cfg.load_opcount if spec.load else cfg.operationcount
    per_ms = cfg.target / clients / 1000.0 if cfg.target > 0 else -1.0
    deadline = time.monotonic() + cfg.maxexecutiontime if cfg.maxexecutiontime else 0.0
    spin = (cfg.get("spin.sleep") or "false").lower() == "true"
    return [
        ClientPlan(i, n, per_ms, spec.load, deadline, spin)
        for i, n in enumerate(split_operations(total, clients))
    ]


def _open_clients(
    spec: PhaseSpec, ids: list[int], shared: SharedState
) -> list[tuple[CoreWorkload, MeasuredDB]]:
    clients = []
    try:
        for i in ids:
            recorder = WriteRecorder(spec.record_writes, client=i) if spec.record_writes else None
            db = open_binding(spec.binding, spec.endpoint, spec.config.props, recorder)
            workload = CoreWorkload(spec.config, shared.counters, shared.window, i)
            clients.append((workload, MeasuredDB(db, _measurements(spec.config))))
    except BaseException:
        for _, mdb in clients:
            mdb.db.cleanup()
        raise
    return clients


def _client_body(
    plan: ClientPlan,
    workload: CoreWorkload,
    mdb: MeasuredDB,
    shared: SharedState,
    out: _ClientOutcome,
) -> None:
    counters = shared.counters
    try:
        out.ops = drive(plan, workload, mdb, shared.progress, lambda: counters[S_STOP] != 0)
    except Exception:
        out.crash = traceback.format_exc(limit=5)
    finally:
        try:
            mdb.cleanup()
        except Exception:
            pass
        out.measurements = mdb.measurements
        out.gaps = list(mdb.db.failover_gaps)
        out.errors = list(mdb.db.errors)
        out.finished = time.monotonic()


def _start_threads(
    plans: list[ClientPlan], clients: list[tuple[CoreWorkload, MeasuredDB]], shared: SharedState
) -> tuple[list[threading.Thread], list[_ClientOutcome]]:
    outcomes = [_ClientOutcome() for _ in clients]
    threads = []
    for plan, (workload, mdb), out in zip(plans, clients, outcomes, strict=True):
        t = threading.Thread(
            target=_client_body,
            args=(plan, workload, mdb, shared, out),
            name=f"ycsb-client-{plan.client_id}",
            daemon=True,
        )
        threads.append(t)
    for t in threads:
        t.start()
    return threads, outcomes


def _monitor(status: StatusLine, shared: SharedState, alive: Any) -> None:
    try:
        while alive(POLL_S):
            status.update(shared.progress)
    except KeyboardInterrupt:
        shared.counters[S_STOP] = 1
        raise
    status.update(shared.progress)


def _join_some(threads: list[threading.Thread], wait: float) -> bool:
    """Wait up to `wait` s for the clients; True while any is still running."""
    deadline = time.monotonic() + wait
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    return any(t.is_alive() for t in threads)


def _collect(spec: PhaseSpec, outcomes: list[_ClientOutcome], started: float) -> PhaseResult:
    # Client.main: RunTime is from starting the clients to the last one done (cleanup too)
    ended = max((o.finished for o in outcomes), default=time.monotonic())
    runtime_ms = int((ended - started) * 1000)
    crashes = [o.crash for o in outcomes if o.crash]
    if crashes:
        raise GaiaError(
            f"a YCSB client failed: {crashes[0].strip().splitlines()[-1]}",
            "see the traceback above; this is a bug in GAIA's YCSB port",
        )
    merged = _measurements(spec.config)
    for o in outcomes:
        merged.merge(o.measurements)
    return PhaseResult(
        phase=spec.phase,
        measurements=merged,
        runtime_ms=runtime_ms,
        operations=sum(o.ops for o in outcomes),
        clients=len(outcomes),
        failover_gaps_s=[g for o in outcomes for g in o.gaps],
        errors=[e for o in outcomes for e in o.errors][:20],
    )


def _prepare(spec: PhaseSpec) -> None:
    if spec.load:
        db = open_binding(spec.binding, spec.endpoint, spec.config.props)
        try:
            db.prepare_load(spec.config.table, spec.config.fieldnames)
        finally:
            db.cleanup()
    else:
        binding_class(spec.binding)  # an unknown binding fails before anything starts


def run_phase(spec: PhaseSpec, show_status: bool | None = None) -> PhaseResult:
    """Run one phase to completion and return its merged measurements."""
    clients = max(1, spec.clients)
    total = spec.config.load_opcount if spec.load else spec.config.operationcount
    if total and clients > total:
        clients = total  # Client.initDb: never more threads than operations
    plans = _plans(spec, clients)
    shared = SharedState.create(clients, spec.config.insertstart, spec.config.recordcount)
    _prepare(spec)
    show = spec.config.status if show_status is None else show_status
    if spec.procs > 1 and clients > 1:
        return _run_processes(spec, plans, shared, show)
    opened = _open_clients(spec, [p.client_id for p in plans], shared)
    with StatusLine(spec.phase, total, enabled=show) as status:
        started = time.monotonic()
        threads, outcomes = _start_threads(plans, opened, shared)
        try:
            _monitor(status, shared, lambda wait: _join_some(threads, wait))
        finally:
            shared.counters[S_STOP] = int(any(t.is_alive() for t in threads))
            for t in threads:
                t.join()
    return _collect(spec, outcomes, started)


# -- client processes ----------------------------------------------------------------------


def _process_main(
    spec_data: dict, plans: list[ClientPlan], shared: SharedState, start: Any, results: Any
) -> None:
    """Entry point of one client process: open connections, report ready, wait, run."""
    try:
        spec = PhaseSpec(config=validate(spec_data.pop("props")), **spec_data)
        opened = _open_clients(spec, [p.client_id for p in plans], shared)
    except GaiaError as exc:
        results.put(("error", exc.problem, exc.fix))
        return
    except Exception as exc:
        results.put(("error", f"{type(exc).__name__}: {exc}", ""))
        return
    results.put(("ready", None, None))
    start.wait()
    threads, outcomes = _start_threads(plans, opened, shared)
    for t in threads:
        t.join()
    for o in outcomes:
        o.measurements = o.measurements.to_wire()
    results.put(("done", outcomes, None))


def _start_method() -> str:
    """fork when this process has no other thread (fast: no re-import, compiled kernels
    inherited, nothing locked by another thread), spawn otherwise (always safe)."""
    return "fork" if threading.active_count() == 1 else "spawn"


def _run_processes(
    spec: PhaseSpec, plans: list[ClientPlan], shared: SharedState, show: bool
) -> PhaseResult:
    ctx = multiprocessing.get_context(_start_method())
    start = ctx.Event()
    results = ctx.Queue()
    per_proc = [plans[i :: spec.procs] for i in range(spec.procs)]  # round robin
    per_proc = [p for p in per_proc if p]
    spec_data = {
        "binding": spec.binding,
        "endpoint": spec.endpoint,
        "load": spec.load,
        "clients": spec.clients,
        "procs": spec.procs,
        "record_writes": spec.record_writes,
        "props": dict(spec.config.props),
    }
    procs = [
        ctx.Process(
            target=_process_main, args=(dict(spec_data), chunk, shared, start, results), daemon=True
        )
        for chunk in per_proc
    ]
    for p in procs:
        p.start()
    try:
        _await_ready(len(procs), results, procs)
        total = spec.config.load_opcount if spec.load else spec.config.operationcount
        outcomes: list[_ClientOutcome] = []
        with StatusLine(spec.phase, total, enabled=show) as status:
            started = time.monotonic()
            start.set()
            done = 0
            while done < len(procs):
                status.update(shared.progress)
                try:
                    kind, payload, _ = results.get(timeout=POLL_S)
                except queue.Empty:
                    if not any(p.is_alive() for p in procs):
                        raise GaiaError(
                            "a YCSB client process died", "see its output above"
                        ) from None
                    continue
                if kind == "done":
                    done += 1
                    outcomes.extend(payload)
        for o in outcomes:
            o.measurements = Measurements.from_wire(o.measurements)
        return _collect(spec, outcomes, started)
    finally:
        shared.counters[S_STOP] = 1
        for p in procs:
            p.join(timeout=10)
            if p.is_alive():
                p.kill()
                p.join()


def _await_ready(count: int, results: Any, procs: list, timeout: float = 120.0) -> None:
    ready = 0
    deadline = time.monotonic() + timeout
    while ready < count:
        try:
            kind, problem, fix = results.get(timeout=POLL_S)
        except queue.Empty:
            if any(p.exitcode not in (None, 0) for p in procs):
                raise GaiaError(
                    "a YCSB client process exited while starting", "see its traceback above"
                ) from None
            if time.monotonic() > deadline:
                raise GaiaError(
                    f"YCSB client processes did not start within {timeout:.0f} s",
                    "check the machine's load, or use threads only",
                ) from None
            continue
        if kind == "error":
            raise GaiaError(problem, fix)
        ready += 1
