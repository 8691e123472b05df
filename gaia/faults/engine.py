"""One run of a campaign: workload + seeded faults, then heal and judge.

A run: fresh keys; the clients start; the run's seeded schedule is played by the
nemesis (each fault applied, held, undone; the deployment's supervisor restarts replicas
that went down on their own); a quiet tail; the clients stop. Then the deployment is
healed (every replica back and caught up) and judged:

1. the leader's value of every key is read and appended to the history (a read that
   follows every operation of the run);
2. linearizability of the whole history (per key, REGISTER model, time budget);
3. acknowledged writes lost: every key read back from every replica's own server;
4. state digests of every replica (equal after healing);
5. failover: for each fault that hit the leader, the time until clients got an
   operation acknowledged again, and until a new leader was named.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gaia.checker.history import Operation, Recorder, save_history
from gaia.checker.linearizability import REGISTER, check
from gaia.cluster.nemesis import Fault, Nemesis
from gaia.cluster.schedule import LEADER, ScheduledFault, generate, play
from gaia.errors import GaiaError
from gaia.faults import analysis
from gaia.faults.clients import RegisterClient, connector
from gaia.faults.options import CampaignOptions
from gaia.faults.systems import System
from gaia.faults.workload import Mix, Workload

BUCKET_NS = 100_000_000
SUPERVISE_EVERY_S = 0.5
FINAL = "final"


class CampaignNemesis(Nemesis):
    """The nemesis of one system: notes who led when each fault began, and after each
    undo lets the deployment's supervisor bring back replicas that went down."""

    def __init__(self, system: System, healthy_timeout_s: float = 120.0,
                 stop: threading.Event | None = None) -> None:
        super().__init__(system.nodes(), system.transport)
        self.system = system
        self.healthy_timeout_s = healthy_timeout_s
        self.stop = stop or threading.Event()  # set: the campaign is being interrupted
        self.leaders: dict[int, str | None] = {}
        self.waited_s = 0.0  # time spent waiting for full health before faults

    def wait_healthy(self) -> None:
        """One failure at a time: the next fault waits until the last one healed. The
        supervisor keeps looking meanwhile: a resumed leader finds itself deposed (and
        goes down) only some time after the undo that ran the supervisor."""
        began = last_look = time.monotonic()
        while not self.system.healthy():
            if time.monotonic() - last_look > SUPERVISE_EVERY_S:
                last_look = time.monotonic()
                self.system.supervise({name for f in self.active for name in f.targets})
            if self.stop.is_set():
                raise GaiaError("the campaign was interrupted", "")
            if time.monotonic() - began > self.healthy_timeout_s:
                raise GaiaError(f"the deployment was not healthy within "
                                f"{self.healthy_timeout_s:.0f} s, so the fault was skipped",
                                "see the harness and agent logs of the deployment")
            time.sleep(0.05)
        self.waited_s += time.monotonic() - began

    def apply(self, kind: str, targets: Any, **params: Any) -> Fault:
        self.wait_healthy()
        leader = self.system.leader()
        began = time.monotonic_ns()
        fault = super().apply(kind, targets, **params)
        fault.started_ns = began  # `restart` records itself only after the relaunch
        self.leaders[id(fault)] = leader
        undo = fault.undo_action

        def undo_then_supervise() -> None:
            if self.stop.is_set():
                return  # interrupted: everything is about to be torn down, no relaunch
            undo()
            busy = {name for f in self.active if f is not fault for name in f.targets}
            self.system.supervise(busy)

        fault.undo_action = undo_then_supervise
        return fault

    def spans(self) -> list[analysis.FaultSpan]:
        return [analysis.FaultSpan(f.kind, f.targets, f.started_ns, f.healed_ns,
                                   self.leaders.get(id(f)), f.detail) for f in self.log]


def resolver(system: System) -> Any:
    def resolve(target: str) -> str:
        if target != LEADER:
            return target
        deadline = time.monotonic() + 120.0
        while system.leader() is None and time.monotonic() < deadline:
            time.sleep(0.01)  # between faults a failover may still be under way
        leader = system.leader()
        return leader if leader is not None else system.nodes()[0].name

    return resolve


@dataclass
class RunResult:
    index: int
    seed: int
    started_ns: int = 0
    ended_ns: int = 0
    schedule: list[dict[str, Any]] = field(default_factory=list)
    faults: list[dict[str, Any]] = field(default_factory=list)
    fault_errors: list[str] = field(default_factory=list)
    ops: dict[str, int] = field(default_factory=dict)
    verdict: str = "unknown"  # ok | illegal | unknown (linearizability)
    witness: str = ""
    lost: int = 0
    lost_examples: list[str] = field(default_factory=list)
    replicas_checked: list[str] = field(default_factory=list)
    digests: dict[str, str] = field(default_factory=dict)
    failovers: list[dict[str, Any]] = field(default_factory=list)
    restarted: list[str] = field(default_factory=list)
    waited_s: float = 0.0  # waiting for full health before faults
    phases_s: dict[str, float] = field(default_factory=dict)  # where the run's time went
    throughput: list[int] = field(default_factory=list)  # ok ops per BUCKET_NS
    error: str = ""
    history: str = ""

    @property
    def digests_equal(self) -> bool:
        return len(set(self.digests.values())) == 1

    @property
    def clean(self) -> bool:
        return (not self.error and self.verdict == "ok" and self.lost == 0
                and self.digests_equal)

    def summary(self) -> dict[str, Any]:
        data = asdict(self)
        data["digests_equal"] = self.digests_equal
        return data

    def line(self) -> str:
        kinds = ",".join(f["kind"] + ("*" if f["hit_leader"] else "") for f in self.faults)
        fo = [f"{f['unavailable_ms']:.0f}" for f in self.failovers
              if f["unavailable_ms"] is not None]
        text = (f"run {self.index}: faults [{kinds or '-'}] ops {self.ops.get('ok', 0)} ok / "
                f"{self.ops.get('unknown', 0)} unknown; linearizable {self.verdict}; lost "
                f"{self.lost}; digests {'equal' if self.digests_equal else 'DIFFER'}"
                f" on {len(self.digests)}; failover ms [{', '.join(fo) or '-'}]")
        return text + (f"; ERROR {self.error}" if self.error else "")


class Phases:
    """Seconds spent in each step of a run, for the record (where did the time go?)."""

    def __init__(self, into: dict[str, float], since_ns: int) -> None:
        self.into, self.last = into, since_ns

    def mark(self, name: str) -> None:
        now = time.monotonic_ns()
        self.into[name] = round((now - self.last) / 1e9, 3)
        self.last = now


def schedule_for(options: CampaignOptions, system: System, seed: int) -> list[ScheduledFault]:
    return generate(seed, options.run_s, options.nemesis, [n.name for n in system.nodes()],
                    fault_s=options.fault_s, gap_s=options.gap_s,
                    leader_share=options.leader_share)


def _judge(result: RunResult, history: list[Operation], finals: dict[str, dict[str, Any]],
           options: CampaignOptions) -> None:
    verdict = check(history, REGISTER, budget_s=options.check_budget_s)
    result.verdict = verdict.verdict
    if verdict.witness is not None:
        result.witness = verdict.witness.describe()
    elif verdict.verdict == "unknown":
        result.witness = verdict.summary()
    lost = [lw for replica, values in finals.items()
            for lw in analysis.lost_writes(history, values, replica)]
    result.lost = len(lost)
    result.lost_examples = [lw.describe() for lw in lost[:5]]
    result.replicas_checked = sorted(finals)


def _final_reads(system: System, keys: list[str], recorder: Recorder,
                 connect: Any) -> dict[str, dict[str, Any]]:
    """The leader's values as recorded reads, then every replica's own values."""
    where = system.leader_endpoint()
    assert where is not None, "healed deployments have a leader"
    client: RegisterClient = connect(*where)
    try:
        for key in keys:
            with recorder.op(FINAL, "read", key) as op:
                op.ok(client.read(key))
    finally:
        client.close()
    return system.replica_reads(keys, connect)


def read_digests(finals: dict[str, dict[str, Any]]) -> dict[str, str]:
    """A digest of the values read back per replica (for systems without app digests)."""
    return {name: hashlib.sha256(json.dumps(sorted(values.items())).encode()).hexdigest()
            for name, values in finals.items()}


def _save_connections(workload: Workload, system: System, path: Path) -> None:
    """Which server each client process talked to, for reading a failed run's history."""
    lines = []
    for at_ns, process, where in workload.connections():
        host, _, port = where.rpartition(":")
        lines.append(json.dumps({"at_ns": at_ns, "process": process, "endpoint": where,
                                 "replica": system.replica_at(host, int(port))}))
    path.write_text("".join(line + "\n" for line in lines))


RECOVERY_WAIT_S = 30.0


def _await_recovery(recorder: Recorder, nemesis: CampaignNemesis, stop: threading.Event,
                    limit_s: float = RECOVERY_WAIT_S) -> None:
    """Keep the clients going until one of their operations invoked after the last fault
    on the leader succeeded (so its failover is measured), at most `limit_s`."""
    spans = [s for s in nemesis.spans() if s.hit_leader]
    if not spans:
        return
    last = spans[-1].start_ns
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline and not stop.is_set():
        if analysis.recovery_ns(recorder.history(), last) is not None:
            return
        stop.wait(0.05)


def run_once(system: System, options: CampaignOptions, index: int, history_dir: Path,
             stop: threading.Event | None = None, result: RunResult | None = None
             ) -> RunResult:
    """One run against a deployed, healthy system (see the module docstring). `result`
    is filled as the run goes, so a caller keeps what happened before an exception."""
    seed = options.run_seed(index)
    result = result if result is not None else RunResult(index, seed)
    schedule = schedule_for(options, system, seed)
    result.schedule = [{"at_s": s.at_s, "kind": s.kind, "targets": list(s.targets),
                        "duration_s": s.duration_s} for s in schedule]
    keys = [f"f{index}-{seed % 10_000}-k{i}" for i in range(options.keys)]
    recorder = Recorder()
    connect = connector(options.app, max(options.op_timeout, system.min_op_timeout))
    workload = Workload(keys, options.clients, Mix(options.read_share, options.cas_share),
                        seed, connect, system.leader_endpoint, recorder)
    stop = stop or threading.Event()
    nemesis = CampaignNemesis(system, options.healthy_timeout_s, stop)
    result.started_ns = time.monotonic_ns()
    workload.start()
    try:
        timeline = play(nemesis, schedule, resolve=resolver(system), stop=stop)
        result.fault_errors = timeline.errors
        tail_end = max(result.started_ns / 1e9 + options.run_s,
                       time.monotonic() + options.tail_s)
        stop.wait(max(0.0, tail_end - time.monotonic()))
        _await_recovery(recorder, nemesis, stop)
    finally:
        workload.stop()
        nemesis.heal()
    result.ended_ns = time.monotonic_ns()
    result.waited_s = round(nemesis.waited_s, 3)
    spans = nemesis.spans()
    result.faults = [{"kind": s.kind, "targets": list(s.targets), "detail": s.detail,
                      "leader": s.leader, "hit_leader": s.hit_leader,
                      "start_s": round((s.start_ns - result.started_ns) / 1e9, 4),
                      "end_s": None if s.end_ns is None
                      else round((s.end_ns - result.started_ns) / 1e9, 4)} for s in spans]
    history = recorder.history()
    result.ops = analysis.outcome_counts(history)  # kept if healing breaks the run
    result.throughput = analysis.throughput(history, result.started_ns, result.ended_ns,
                                            BUCKET_NS)
    result.failovers = [
        {**f.as_dict(), "start_s": round((f.start_ns - result.started_ns) / 1e9, 4)}
        for f in analysis.failovers(history, spans, system.leader_changes())]
    clock = Phases(result.phases_s, result.started_ns)
    clock.mark("workload")
    result.restarted = system.recover()
    clock.mark("recover")
    finals = _final_reads(system, keys, recorder,
                          connector(options.app, max(30.0, system.min_op_timeout)))
    clock.mark("final_reads")
    history = recorder.history()
    result.ops = analysis.outcome_counts(op for op in history if op.process != FINAL)
    path = history_dir / f"run-{index:04d}.history.jsonl"
    save_history(history, path)
    _save_connections(workload, system, path.with_name(f"run-{index:04d}.connections.jsonl"))
    result.history = str(path)
    _judge(result, history, finals, options)
    clock.mark("check")
    result.digests = system.digests() or read_digests(finals)
    clock.mark("digests")
    return result
