"""Experiment "app_overhead": what replication costs an unmodified server (issue 5 item 7).

Per app, YCSB workload A against (a) the server alone and (b) the leader of a 3-replica
APUS group (shim + replayers + real servers), at saturation (closed loop, several client
threads in two processes) and at a fixed open-loop load below saturation (half the
replicated saturation throughput measured in the same run, YCSB `target`; latencies are
YCSB's intended latencies, so queueing behind a slow operation counts). The replicated
group is also measured through the stable front port at the fixed load (one extra hop).
Both configurations run the same server settings (deterministic=True plus
servers.replica_args). The GAIA proposal's goal: <= 4% throughput and p50 overhead at the
fixed load (it reports 3.22% / 3.31% for Redis).

All processes — the leader's server, the APUS replicas, the backups' servers and
replayers, and the YCSB client — share this machine's cores (2 here); records carry the
core count and the figure says so. One record per (app, deployment, mode).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from rich.console import Console

from analysis.records import ResultRecord, new_histogram
from analysis.store import save_record
from gaia.experiments import Experiment

EXPERIMENT_NAME = "app_overhead"
console = Console(stderr=True)
Progress = Callable[[str], None]


@dataclass(frozen=True)
class OverheadConfig:
    apps: tuple[str, ...] = ("redis",)
    replicas: int = 3
    records: int = 1000
    saturation_ops: int = 4000
    saturation_threads: int = 8
    saturation_procs: int = 2
    fixed_seconds: float = 8.0
    fixed_threads: int = 4
    fixed_share: float = 0.5  # fixed load = this share of the replicated saturation
    front_port: bool = True
    transport: str = "shm"


QUICK = OverheadConfig()
FULL = OverheadConfig(apps=("redis", "memcached", "mariadb", "mongodb"), records=5000,
                      saturation_ops=20000, fixed_seconds=20.0)


@dataclass(frozen=True)
class Measurement:
    deployment: str  # "unreplicated" | "replicated"
    mode: str  # "saturation" | "fixed"
    path: str = "direct"  # "direct" | "front_port"
    target: int = 0


# ---------------------------------------------------------------- running YCSB
def _ycsb(app: str, cfg: OverheadConfig, what: Measurement, *, port: int = 0,
          run_dir: Path | None = None, load: bool, props: dict[str, str]) -> ResultRecord:
    from workloads.ycsb import YcsbOptions, run_ycsb

    fixed = what.mode == "fixed"
    ops = int(what.target * cfg.fixed_seconds) if fixed else cfg.saturation_ops
    opts = YcsbOptions(
        app=app, workload="a", infra="none", port=port, run_dir=run_dir, records=cfg.records,
        ops=max(ops, 1), threads=cfg.fixed_threads if fixed else cfg.saturation_threads,
        procs=1 if fixed else cfg.saturation_procs, target=what.target if fixed else None,
        load=load, run=True, save=False, status=False,
        overrides=[f"{k}={v}" for k, v in props.items()])
    with open(os.devnull, "w") as quiet:
        outcome = run_ycsb(opts, out=quiet)
    return _record(outcome.record, app, cfg, what)


def _record(ycsb: ResultRecord, app: str, cfg: OverheadConfig, what: Measurement
            ) -> ResultRecord:
    """The YCSB record re-labelled, with one merged 'latency' histogram (intended
    latencies in the open loop)."""
    prefix = "Intended-" if what.mode == "fixed" else ""
    merged = new_histogram()
    for op in ("READ", "UPDATE"):
        name = prefix + op
        if name in ycsb.histograms:
            merged.add(ycsb.histogram(name))
    rec = replace(ycsb, experiment=EXPERIMENT_NAME,
                  infra="apus" if what.deployment == "replicated" else "none", app=app,
                  transport=cfg.transport if what.deployment == "replicated" else None,
                  durability="memory" if what.deployment == "replicated" else None,
                  record_id="", created="")  # fresh id and time
    rec.config = {**ycsb.config, **asdict(what), "replicas": cfg.replicas
                  if what.deployment == "replicated" else 1, "cores": os.cpu_count(),
                  "latency_basis": "intended" if prefix else "measured",
                  "sharing": "server(s), APUS replicas, replayers and the YCSB client share "
                             f"{os.cpu_count()} cores"}
    rec.add_histogram("latency", merged)
    rec.metrics["errors"] = len(ycsb.metrics.get("run", {}).get("errors", []))
    return rec


def _props(app: str, host: str, port: int) -> dict[str, str]:
    from gaia.replicate.ycsb_infra import binding_props

    return binding_props(app, host, port)


# ---------------------------------------------------------------- one app
def measure_replicated(app: str, cfg: OverheadConfig, progress: Progress) -> list[ResultRecord]:
    from gaia.replicate.group import ReplicatedGroup

    out = []
    group = ReplicatedGroup.of(app, cfg.replicas, transport=cfg.transport,
                               front_port=0 if cfg.front_port else None)
    with group:
        props = _props(app, *group.current.leader_endpoint())
        progress(f"{app} replicated: saturation")
        sat = _ycsb(app, cfg, Measurement("replicated", "saturation"), run_dir=group.run_dir,
                    load=True, props=props)
        out.append(sat)
        target = max(1, int((sat.throughput or 1) * cfg.fixed_share))
        progress(f"{app} replicated: fixed load {target} ops/s")
        out.append(_ycsb(app, cfg, Measurement("replicated", "fixed", target=target),
                         run_dir=group.run_dir, load=False, props=props))
        if group.forwarder is not None:
            progress(f"{app} replicated through the front port: fixed load {target} ops/s")
            out.append(_ycsb(app, cfg, Measurement("replicated", "fixed", "front_port", target),
                             port=group.forwarder.port, load=False,
                             props=_props(app, "127.0.0.1", group.forwarder.port)))
        for rec in out:
            rec.metrics["leader_changes"] = len(group.changes) - 1
            rec.metrics["replica_failures"] = group.failures()
    group.remove()
    return out


def measure_unreplicated(app: str, cfg: OverheadConfig, target: int, progress: Progress
                         ) -> list[ResultRecord]:
    import apps
    from gaia.replicate.servers import replica_args

    server = apps.get(app)(port=0, deterministic=True, extra_args=replica_args(app))
    server.start(timeout=90)
    try:
        props = _props(app, server.host, server.port)
        progress(f"{app} unreplicated: saturation")
        sat = _ycsb(app, cfg, Measurement("unreplicated", "saturation"), port=server.port,
                    load=True, props=props)
        progress(f"{app} unreplicated: fixed load {target} ops/s")
        fixed = _ycsb(app, cfg, Measurement("unreplicated", "fixed", target=target),
                      port=server.port, load=False, props=props)
        return [sat, fixed]
    finally:
        server.stop()
        server.cleanup()


def measure_app(app: str, cfg: OverheadConfig, progress: Progress) -> list[ResultRecord]:
    """Replicated first (its saturation sets the fixed load), then the server alone at
    the same fixed load; never both at once (they would share the cores)."""
    replicated = measure_replicated(app, cfg, progress)
    target = next(r.config["target"] for r in replicated if r.config["mode"] == "fixed")
    records = replicated + measure_unreplicated(app, cfg, target, progress)
    group = os.urandom(6).hex()
    for rec in records:
        rec.config["pair"] = group  # the records measured together (ratios use these)
    return records


# ---------------------------------------------------------------- summaries
@dataclass(frozen=True)
class Row:
    """One app's numbers from one measured pair."""

    app: str
    cores: int
    target: int
    unrep_sat: float
    rep_sat: float
    unrep_p50_us: float
    rep_p50_us: float
    unrep_p99_us: float
    rep_p99_us: float
    unrep_fixed_tput: float
    rep_fixed_tput: float
    front_p50_us: float | None = None
    front_p99_us: float | None = None
    pair: str = ""

    @property
    def sat_ratio(self) -> float:
        return self.rep_sat / self.unrep_sat

    @property
    def fixed_tput_overhead(self) -> float:
        """Throughput lost at the fixed load (fraction; 0 when both reach the target)."""
        return 1 - self.rep_fixed_tput / self.unrep_fixed_tput

    @property
    def p50_overhead(self) -> float:
        return self.rep_p50_us / self.unrep_p50_us - 1

    @property
    def p99_overhead(self) -> float:
        return self.rep_p99_us / self.unrep_p99_us - 1


def _key(rec: ResultRecord) -> tuple[str, str, str]:
    c = rec.config
    return c.get("deployment", ""), c.get("mode", ""), c.get("path", "direct")


def rows(records: list[Any]) -> list[Row]:
    """The newest complete pair per app."""
    pairs: dict[str, dict[str, Any]] = {}
    for rec in records:
        if rec.experiment != EXPERIMENT_NAME or "pair" not in rec.config:
            continue
        pairs.setdefault(rec.config["pair"], {})[_key(rec)] = rec
    newest: dict[str, dict[tuple, Any]] = {}
    for found in pairs.values():
        need = {("replicated", "saturation", "direct"), ("replicated", "fixed", "direct"),
                ("unreplicated", "saturation", "direct"), ("unreplicated", "fixed", "direct")}
        if not need <= set(found):
            continue
        any_rec = next(iter(found.values()))
        app = any_rec.app
        if app not in newest or any_rec.created > next(iter(newest[app].values())).created:
            newest[app] = found
    out = []
    for app, f in sorted(newest.items()):
        rs, rf = f["replicated", "saturation", "direct"], f["replicated", "fixed", "direct"]
        us, uf = f["unreplicated", "saturation", "direct"], f["unreplicated", "fixed", "direct"]
        front = f.get(("replicated", "fixed", "front_port"))
        out.append(Row(
            app=app, cores=int(rf.config.get("cores") or 0), target=int(rf.config["target"]),
            unrep_sat=us.throughput, rep_sat=rs.throughput,
            unrep_p50_us=uf.percentile_us("latency", 50), rep_p50_us=rf.percentile_us("latency", 50),
            unrep_p99_us=uf.percentile_us("latency", 99), rep_p99_us=rf.percentile_us("latency", 99),
            unrep_fixed_tput=uf.throughput, rep_fixed_tput=rf.throughput,
            front_p50_us=front.percentile_us("latency", 50) if front else None,
            front_p99_us=front.percentile_us("latency", 99) if front else None,
            pair=rf.config["pair"]))
    return out


def describe(row: Row) -> str:
    front = (f"; front port p50 {row.front_p50_us:,.0f} µs "
             f"(x{row.front_p50_us / row.rep_p50_us:.2f} of direct)" if row.front_p50_us else "")
    return (f"{row.app}: saturation {row.rep_sat:,.0f} vs {row.unrep_sat:,.0f} ops/s "
            f"(replicated/alone {row.sat_ratio:.2f}); at {row.target:,} ops/s: throughput "
            f"overhead {row.fixed_tput_overhead:+.1%}, p50 {row.rep_p50_us:,.0f} vs "
            f"{row.unrep_p50_us:,.0f} µs ({row.p50_overhead:+.0%}), p99 {row.rep_p99_us:,.0f} "
            f"vs {row.unrep_p99_us:,.0f} µs ({row.p99_overhead:+.0%}){front}; {row.cores} cores "
            "shared by servers, replicas and client")


# ---------------------------------------------------------------- the experiment
def run_config(cfg: OverheadConfig) -> list[Path]:
    saved = []
    with console.status("app_overhead") as status:
        for app in cfg.apps:
            records = measure_app(app, cfg, status.update)
            saved += [save_record(rec) for rec in records]
            (row,) = [r for r in rows(records) if r.app == app]
            console.print(describe(row))
    return saved


def run(full: bool) -> list[Path]:
    return run_config(FULL if full else QUICK)


EXPERIMENT = Experiment(
    name=EXPERIMENT_NAME,
    description="replicated vs unreplicated YCSB A throughput and p50/p99 per server",
    run=run,
    figures=("app_overhead",),
    quick_minutes=1.0,
)
