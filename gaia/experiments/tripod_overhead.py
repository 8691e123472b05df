"""Experiment "tripod_overhead": Redis as a TRIPOD task with R = 3 vs R = 1 vs plain Redis,
and what a host or controller failure costs each (issue 9, the GAIA proposal's TRIPOD
evaluation).

Part 1, overhead: YCSB workload A (closed loop) against plain Redis (no scheduler), the
R = 1 task (the plain server placed by TRIPOD: what Mesos/Marathon would run) and the
R = 3 task (an APUS group on three distinct hosts; clients at its serving replica,
followed through the task's deployment.json). The GAIA proposal reports 3.22%
throughput / 3.31% response-time overhead for R = 3 (goal <= 4%).

Part 2, faults, with a sequential writer (gaia.tripod.write_probe):
  host-kill R=3    the host of the serving replica dies; the group keeps serving
                   (downtime = the failover) with every acknowledged write;
  host-kill R=1    the task's host dies; TRIPOD restarts it elsewhere, empty: downtime =
                   detection + re-placement + start, and the acknowledged writes are lost;
  controller-kill  the leading controller dies while the R = 3 task takes writes; another
                   controller leads and a new task is scheduled (scheduling gap measured).

Everything (3 controllers, 5 agents in network namespaces, servers, APUS replicas,
replayers, the YCSB client) shares this machine's cores; records carry the core count.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from rich.console import Console

from analysis.records import ResultRecord, new_histogram
from analysis.store import save_record
from gaia.experiments import Experiment

EXPERIMENT_NAME = "tripod_overhead"
console = Console(stderr=True)
DEPLOYMENTS = ("plain", "tripod-r1", "tripod-r3")
FAULTS = ("host-kill-r3", "host-kill-r1", "controller-kill")


@dataclass(frozen=True)
class TripodExpConfig:
    records: int = 500
    ops: int = 3000
    threads: int = 4
    agents: int = 5  # two host kills must leave three distinct live hosts for R = 3
    probe_writes: int = 150  # before the fault, and again once it is done


QUICK = TripodExpConfig()
FULL = TripodExpConfig(records=5000, ops=30000, threads=8, probe_writes=1000)


# ---------------------------------------------------------------- overhead (YCSB)
def _ycsb(cfg: TripodExpConfig, deployment: str, run_id: str, *, port: int = 0,
          run_dir: Path | None = None, details: dict[str, Any] | None = None) -> ResultRecord:
    from workloads.ycsb import YcsbOptions, run_ycsb

    opts = YcsbOptions(app="redis", workload="a", infra="none", port=port, run_dir=run_dir,
                       records=cfg.records, ops=cfg.ops, threads=cfg.threads, load=True,
                       run=True, save=False, status=False)
    with open(os.devnull, "w") as quiet:
        outcome = run_ycsb(opts, out=quiet)
    ycsb = outcome.record
    merged = new_histogram()
    for op in ("READ", "UPDATE"):
        if op in ycsb.histograms:
            merged.add(ycsb.histogram(op))
    rec = replace(ycsb, experiment=EXPERIMENT_NAME,
                  infra="none" if deployment == "plain" else "tripod", app="redis",
                  transport=None if deployment != "tripod-r3" else "tcp",
                  durability=None if deployment != "tripod-r3" else "memory",
                  record_id="", created="")
    rec.config = {**ycsb.config, "part": "overhead", "deployment": deployment,
                  "run_id": run_id, "cores": os.cpu_count(), **(details or {})}
    rec.add_histogram("latency", merged)
    rec.metrics["errors"] = len(ycsb.metrics.get("run", {}).get("errors", []))
    return rec


def measure_plain(cfg: TripodExpConfig, run_id: str) -> ResultRecord:
    import apps
    from gaia.replicate.servers import replica_args

    server = apps.get("redis")(port=0, extra_args=replica_args("redis"))
    server.start(timeout=60)
    try:
        return _ycsb(cfg, "plain", run_id, port=server.port)
    finally:
        server.stop()
        server.cleanup()


# ---------------------------------------------------------------- faults
def _fault_record(fault: str, run_id: str, metrics: dict[str, Any]) -> ResultRecord:
    rec = ResultRecord(experiment=EXPERIMENT_NAME, infra="tripod", app="redis",
                       transport="tcp", durability="memory",
                       config={"part": "fault", "fault": fault, "run_id": run_id,
                               "cores": os.cpu_count()})
    rec.metrics.update(metrics)
    return rec


def host_kill(cluster: Any, task_id: str, r: int, cfg: TripodExpConfig, run_id: str
              ) -> ResultRecord:
    from gaia.deployment import Deployment
    from gaia.tripod.replicas import placed_replicas, task_dir, wait_whole
    from gaia.tripod.write_probe import probe_fault

    tdir = task_dir(cluster, task_id)
    leader = Deployment.load(tdir).leader
    victim = next(p.agent_id for p in placed_replicas(cluster, task_id) if p.index == leader)
    result = probe_fault(tdir, lambda: cluster.kill_host(victim), cfg.probe_writes,
                        cfg.probe_writes, prefix=f"hk{r}")
    whole = wait_whole(cluster, task_id, r, not_on=victim)
    moved = [p.agent_id for p in whole if p.index == leader]
    return _fault_record(f"host-kill-r{r}", run_id, {
        "victim": victim, "replaced_on": moved[0] if moved else None,
        "downtime_s": round(result.downtime_s or 0.0, 3),
        "acknowledged": len(result.acknowledged), "acknowledged_before": cfg.probe_writes,
        "lost": result.lost, "failed_attempts": result.failed_attempts})


def controller_kill(cluster: Any, fw: Any, task_id: str, cfg: TripodExpConfig, run_id: str
                    ) -> ResultRecord:
    """The leading controller dies while the R = 3 task takes writes; then the same
    framework (its offers hold the resources, as in Mesos) schedules a new task."""
    from gaia.tripod.entries import TaskSpec
    from gaia.tripod.replicas import task_dir, wait_until
    from gaia.tripod.resources import Resources
    from gaia.tripod.write_probe import probe_fault

    old = cluster.query()["leader"]
    killed_at: list[float] = []

    def kill() -> None:
        killed_at.append(time.monotonic())
        cluster.kill_controller(old)

    result = probe_fault(task_dir(cluster, task_id), kill, cfg.probe_writes,
                         cfg.probe_writes, prefix="ck")
    view = wait_until(lambda: (v := cluster.query()) and v["leading"] and v["leader"] != old
                      and v, 60, "a new leading controller")
    leading_s = time.monotonic() - killed_at[0]
    fw.submit(TaskSpec(app="redis"), r=1, resources=Resources.of(0.1, 64),
              task_id="after-failover", timeout=120)
    scheduled_s = time.monotonic() - killed_at[0]
    fw.kill("after-failover")
    return _fault_record("controller-kill", run_id, {
        "victim": f"controller-{old}", "new_leader": view["leader"],
        "new_leader_by_s": round(leading_s, 3), "scheduled_by_s": round(scheduled_s, 3),
        "task_downtime_s": round(result.downtime_s or 0.0, 3),
        "acknowledged": len(result.acknowledged), "lost": result.lost})


# ---------------------------------------------------------------- the run
def run_config(cfg: TripodExpConfig) -> list[Path]:
    from gaia.paths import new_run_dir
    from gaia.tripod.deploy import TripodCluster, TripodOptions
    from gaia.tripod.entries import TaskSpec
    from gaia.tripod.framework import Framework
    from gaia.tripod.replicas import serving, task_dir
    from gaia.tripod.resources import Resources

    run_id = os.urandom(6).hex()
    records: list[ResultRecord] = []
    with console.status("tripod_overhead: plain Redis") as status:
        records.append(measure_plain(cfg, run_id))
        status.update(f"tripod_overhead: TRIPOD up ({cfg.agents} agents)")
        options = TripodOptions(agents=cfg.agents, cpus=1, mem_mb=2048)
        with (TripodCluster(new_run_dir("tripod"), options).start(timeout=180) as cluster,
              Framework.from_run_dir(cluster.run_dir, "exp", max_r=3).connect() as fw):
            for r in (1, 3):
                status.update(f"tripod_overhead: Redis R={r}")
                fw.submit(TaskSpec(app="redis"), r=r, resources=Resources.of(0.1, 256),
                          task_id=f"redis-r{r}", timeout=240)
                serving(cluster, f"redis-r{r}", timeout=120)
                records.append(_ycsb(cfg, f"tripod-r{r}", run_id,
                                     run_dir=task_dir(cluster, f"redis-r{r}"),
                                     details={"r": r, "agents": cfg.agents}))
            status.update("tripod_overhead: kill the host of the R=3 serving replica")
            records.append(host_kill(cluster, "redis-r3", 3, cfg, run_id))
            status.update("tripod_overhead: kill the host of the R=1 task")
            records.append(host_kill(cluster, "redis-r1", 1, cfg, run_id))
            status.update("tripod_overhead: kill the leading controller")
            records.append(controller_kill(cluster, fw, "redis-r3", cfg, run_id))
    saved = [save_record(rec) for rec in records]
    console.print(describe(summary(records)))
    return saved


def run(full: bool) -> list[Path]:
    return run_config(FULL if full else QUICK)


# ---------------------------------------------------------------- summaries
@dataclass(frozen=True)
class Summary:
    run_id: str
    throughput: dict[str, float]  # deployment -> ops/s
    p50_us: dict[str, float]
    p99_us: dict[str, float]
    faults: dict[str, dict[str, Any]]  # fault -> metrics
    cores: int

    def overhead(self, deployment: str, base: str = "plain") -> tuple[float, float]:
        """(throughput lost, p50 added) as fractions of `base`."""
        return (1 - self.throughput[deployment] / self.throughput[base],
                self.p50_us[deployment] / self.p50_us[base] - 1)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summary(records: list[Any]) -> Summary | None:
    """The newest run that has all three deployments and all three faults."""
    runs: dict[str, list[Any]] = {}
    for rec in records:
        if rec.experiment == EXPERIMENT_NAME and "run_id" in rec.config:
            runs.setdefault(rec.config["run_id"], []).append(rec)
    complete = []
    for run_id, recs in runs.items():
        over = {r.config["deployment"]: r for r in recs if r.config.get("part") == "overhead"}
        faults = {r.config["fault"]: r for r in recs if r.config.get("part") == "fault"}
        if set(over) >= set(DEPLOYMENTS) and set(faults) >= set(FAULTS):
            newest = max(r.created for r in recs)
            complete.append((newest, run_id, over, faults))
    if not complete:
        return None
    _, run_id, over, faults = max(complete, key=lambda c: c[0])
    return Summary(
        run_id=run_id,
        throughput={d: over[d].throughput for d in DEPLOYMENTS},
        p50_us={d: over[d].percentile_us("latency", 50) for d in DEPLOYMENTS},
        p99_us={d: over[d].percentile_us("latency", 99) for d in DEPLOYMENTS},
        faults={f: dict(faults[f].metrics) for f in FAULTS},
        cores=int(over["plain"].config.get("cores") or 0),
    )


def describe(s: Summary | None) -> str:
    if s is None:
        return "no complete tripod_overhead run"
    t3, l3 = s.overhead("tripod-r3")
    t1, l1 = s.overhead("tripod-r1")
    h3, h1, ck = (s.faults[f] for f in FAULTS)
    return (f"YCSB A: R=3 {s.throughput['tripod-r3']:,.0f} ops/s vs plain "
            f"{s.throughput['plain']:,.0f} (throughput {-t3:+.1%}, p50 {l3:+.1%}); R=1 "
            f"throughput {-t1:+.1%}, p50 {l1:+.1%}. Host kill: R=3 down "
            f"{h3['downtime_s']:.2f} s, lost {h3['lost']}/{h3['acknowledged']}; R=1 down "
            f"{h1['downtime_s']:.2f} s, lost {h1['lost']}/{h1['acknowledged']}. Leading "
            f"controller killed: new leader after {ck['new_leader_by_s']:.2f} s, a new task "
            f"scheduled after {ck['scheduled_by_s']:.2f} s, R=3 task lost {ck['lost']} "
            f"writes; {s.cores} cores shared by everything")


EXPERIMENT = Experiment(
    name=EXPERIMENT_NAME,
    description="Redis R=3 vs R=1 under TRIPOD vs plain: YCSB overhead; host and "
                "controller kills (downtime, lost keys)",
    run=run,
    figures=("tripod_overhead",),
    quick_minutes=1.0,
)
