"""Experiment "consensus_latency": APUS against every baseline, the GAIA proposal's
Figure 3 (issue #6).

Protocols: apus (gaia.apus.bench), dare and multipaxos (gaia.baselines), etcd and
zookeeper (real servers, gaia.peers) and pysyncobj (PyPI). Each runs at each replica
count: one-client latency (p50/p99), throughput with N clients, and the share of the
servers' CPU time spent in the kernel. Same durability for all: fsync mode with data on
tmpfs (a `disk` variant is stored separately). One record per protocol, replica count
and measurement point; figures `fig3_consensus_latency` and `kernel_share` read them.

Where latency is measured matters, so every record says it (`config.measured_at`):
`leader` — proposals generated inside the leader process, timed propose->commit there
(DARE-style, Multi-Paxos, PySyncObj, and APUS's leader-side loop); `client` — a separate
client process timing a request to the leader and back (etcd and ZooKeeper, which offer
nothing else, and APUS's client-observed number). Ratios are taken between numbers
measured the same way; a ratio across the two is marked.
"""

from __future__ import annotations

import io
import os
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from rich.console import Console

from analysis.store import save_record
from gaia.baselines.measure import EXPERIMENT as NAME
from gaia.baselines.measure import ProtocolResult
from gaia.errors import ConfigError, GaiaError
from gaia.experiments import Experiment
from gaia.paths import new_run_dir

console = Console(stderr=True)

ALL = ("apus", "dare", "multipaxos", "etcd", "zookeeper", "pysyncobj")
EXTERNAL = ("etcd", "zookeeper", "pysyncobj")  # servers we start but did not write
PEERS = ("dare", "multipaxos", "pysyncobj", "etcd", "zookeeper")  # ratio columns
GOALS = {"etcd": 50.0, "zookeeper": 50.0, "multipaxos": 20.0}  # issue #6, at 3 replicas
TRANSPORTS = ("shm", "tcp")
# name -> runner(replicas, *, clients, rounds, payload, durability, storage, transport,
# run_dir) -> ProtocolResult or a list of them (APUS gives one per measurement point).
Runner = Callable[..., ProtocolResult | list[ProtocolResult]]


def _apus(replicas: int, **kw) -> list[ProtocolResult]:
    from gaia.apus.bench import sweep_runner

    return sweep_runner(replicas, **kw)


def _leader_driven(protocol: str) -> Runner:
    def run(replicas: int, **kw) -> ProtocolResult:
        from gaia.baselines.runner import measure_leader_driven

        return measure_leader_driven(protocol, replicas, **kw)

    return run


def _external(protocol: str) -> Runner:
    def run(replicas: int, **kw) -> ProtocolResult:
        from gaia.peers.runner import measure_external

        return measure_external(protocol, replicas, **kw)

    return run


RUNNERS: dict[str, Runner] = {
    "apus": _apus,
    "dare": _leader_driven("dare"),
    "multipaxos": _leader_driven("multipaxos"),
    "pysyncobj": _leader_driven("pysyncobj"),
    "etcd": _external("etcd"),
    "zookeeper": _external("zookeeper"),
}


def register(name: str, runner: Runner) -> None:
    """Add or replace a protocol runner."""
    RUNNERS[name] = runner


def _why_not(protocol: str) -> str:
    """Why a protocol cannot run here ('' when it can)."""
    import shutil

    if protocol not in RUNNERS:
        return f"{protocol} has no runner registered (its module did not load)"
    if protocol == "etcd" and shutil.which("etcd") is None:
        return "etcd is not installed (Debian package etcd-server)"
    if protocol == "zookeeper" and not (shutil.which("java")
                                        and Path("/usr/share/java/zookeeper.jar").exists()):
        return "ZooKeeper is not installed (Debian packages zookeeper, default-jre-headless)"
    if protocol == "pysyncobj":
        try:
            import pysyncobj  # noqa: F401
        except ImportError:
            return "pysyncobj is not installed (pip install pysyncobj)"
    return ""


def measure(protocol: str, replicas: int, **kw) -> list[ProtocolResult]:
    """One protocol at one replica count; a result with `skipped` set when it cannot run
    or fails (the sweep goes on)."""
    reason = _why_not(protocol)
    if not reason:
        try:
            got = RUNNERS[protocol](replicas, **kw)
            return got if isinstance(got, list) else [got]
        except GaiaError as exc:
            reason = exc.one_line()
    return [ProtocolResult(protocol, replicas, kw.get("clients", 1), kw.get("transport", "shm"),
                           kw.get("durability", "fsync"), kw.get("storage", "tmpfs"),
                           skipped=reason)]


@dataclass(frozen=True)
class Plan:
    """Which points a sweep measures."""

    protocols: tuple[str, ...]
    replicas: tuple[int, ...]
    transports: tuple[str, ...] = ("shm",)  # APUS runs once per transport
    external_replicas: tuple[int, ...] | None = None  # None: every count in `replicas`

    def points(self) -> list[tuple[str, int, str]]:
        """(protocol, replicas, transport) in the order they run (by replica count)."""
        out = []
        for n in self.replicas:
            for protocol in self.protocols:
                if protocol in EXTERNAL and self.external_replicas is not None \
                        and n not in self.external_replicas:
                    continue
                for transport in (self.transports if protocol == "apus" else
                                  self.transports[:1]):
                    out.append((protocol, n, transport))
        return out


def check_plan(plan: Plan) -> None:
    unknown = [p for p in plan.protocols if p not in ALL]
    if unknown:
        raise ConfigError(f"unknown protocol(s) {', '.join(unknown)}",
                          f"choose from {', '.join(ALL)}")
    bad = [t for t in plan.transports if t not in TRANSPORTS]
    if bad or not plan.transports:
        raise ConfigError(f"unknown transport(s) {', '.join(bad) or '(none)'}",
                          "use shm, tcp or shm,tcp")
    if not plan.replicas or min(plan.replicas) < 1:
        raise ConfigError("replica counts must be positive", "e.g. --replicas 3,5,7,9")


def sweep(plan: Plan, *, clients: int = 8, rounds: int = 2000, payload: int = 64,
          durability: str = "fsync", storage: str = "tmpfs",
          apus_options: dict[str, Any] | None = None, notes: Iterable[str] = (),
          progress: Callable[[str], None] | None = None) -> tuple[list[ProtocolResult],
                                                                 list[Path]]:
    """Every point of the plan in one run; one record saved per result as it goes
    (`notes`: lines every record carries into the report). Returns the results and the
    record paths."""
    notes = list(notes)
    check_plan(plan)
    results, paths = [], []
    for protocol, replicas, transport in plan.points():
        if progress:
            progress(f"{protocol}{'/' + transport if protocol == 'apus' else ''} x{replicas}")
        extra = dict(apus_options or {}) if protocol == "apus" else {}
        started = time.monotonic()
        run_dir = new_run_dir(f"latency-{protocol}")
        got = measure(protocol, replicas, clients=clients, rounds=rounds, payload=payload,
                      durability=durability, storage=storage, transport=transport,
                      run_dir=run_dir, **extra)
        shutil.rmtree(run_dir, ignore_errors=True)  # measured: nothing left to inspect
        for result in got:
            result.notes["seconds"] = round(time.monotonic() - started, 1)
            result.notes["notes"] = [*notes, *([timeshare_note([replicas])]
                                                if timeshare_note([replicas]) else [])]
            paths.append(save_record(result.to_record()))
            results.append(result)
    return results, paths


# ---- the numbers behind the report and the figures ----------------------------------

FRAME_COLUMNS = ["protocol", "measured_at", "replicas", "p50_us", "p99_us", "throughput",
                 "kernel_share", "transport"]


def label(protocol: str, transport: str | None) -> str:
    """Series name: APUS carries its transport (apus, apus/tcp); the others have one."""
    return f"{protocol}/tcp" if protocol == "apus" and transport == "tcp" else protocol


def frame_from_results(results: Iterable[ProtocolResult]) -> pd.DataFrame:
    rows = []
    for r in results:
        if r.skipped or not r.latencies_ns.size:
            continue
        s = r.summary()
        rows.append([label(r.protocol, r.transport), r.measured_at, r.replicas, s["p50_us"],
                     s["p99_us"], r.throughput, r.kernel_share, r.transport])
    return pd.DataFrame(rows, columns=FRAME_COLUMNS)


def frame_from_records(records: Iterable[Any], storage: str = "tmpfs") -> pd.DataFrame:
    """One row per (series, measured_at, replicas): the newest record that ran."""
    latest: dict[tuple[str, str, int], Any] = {}
    for rec in records:
        if rec.experiment != NAME or rec.metrics.get("skipped"):
            continue
        if rec.config.get("storage", "tmpfs") != storage or "latency" not in rec.histograms:
            continue
        key = (label(rec.config["protocol"], rec.transport), rec.config.get("measured_at", ""),
               int(rec.config["replicas"]))
        if key not in latest or rec.created > latest[key].created:
            latest[key] = rec
    rows = [[name, at, n, rec.percentile_us("latency", 50), rec.percentile_us("latency", 99),
             rec.throughput, rec.metrics.get("kernel_share"), rec.transport]
            for (name, at, n), rec in latest.items()]
    frame = pd.DataFrame(rows, columns=FRAME_COLUMNS)
    return frame.sort_values(["protocol", "measured_at", "replicas"]).reset_index(drop=True)


def ratio_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per replica count and APUS measurement (series x measured_at): its p50
    and peer p50 / APUS p50 for every peer that ran, with `<peer>_same` telling whether
    the peer was measured the same way (leader vs client) as that APUS row."""
    rows = []
    apus = frame[frame["protocol"].str.startswith("apus")]
    for _, a in apus.sort_values(["replicas", "protocol", "measured_at"]).iterrows():
        at = frame[(frame["replicas"] == a["replicas"])
                   & ~frame["protocol"].str.startswith("apus")]
        row: dict[str, Any] = {"replicas": int(a["replicas"]), "apus": a["protocol"],
                               "measured_at": a["measured_at"], "apus_p50_us": a["p50_us"]}
        for _, peer in at.iterrows():
            row[peer["protocol"]] = peer["p50_us"] / a["p50_us"]
            row[f"{peer['protocol']}_same"] = peer["measured_at"] == a["measured_at"]
        rows.append(row)
    return pd.DataFrame(rows)


def format_ratios(table: pd.DataFrame) -> list[str]:
    """The ratio table as text: 'x' same measurement point, 'x*' across points."""
    if table.empty:
        return []
    peers = [p for p in PEERS if p in table.columns]
    head = f"{'replicas':>8}  {'APUS (measured at)':<22}{'p50 µs':>9}" + \
        "".join(f"{p:>12}" for p in peers)
    lines = ["peer p50 / APUS p50 ('*': peer measured at the other point — leader-side vs "
             "client-observed — not like for like):", head]
    for _, row in table.iterrows():
        cells = []
        for p in peers:
            value = row.get(p)
            if value is None or pd.isna(value):
                cells.append(f"{'-':>12}")
            else:
                cells.append(f"{value:,.1f}x{'' if row[f'{p}_same'] else '*'}".rjust(12))
        lines.append(f"{row['replicas']:>8}  {row['apus'] + ' (' + row['measured_at'] + ')':<22}"
                     f"{row['apus_p50_us']:>9,.2f}" + "".join(cells))
    return lines


def goal_lines(table: pd.DataFrame, replicas: int = 3) -> list[str]:
    """Issue #6's goals at 3 replicas, against APUS/shm measured like each peer."""
    if table.empty:
        return []
    rows = table[(table["replicas"] == replicas) & (table["apus"] == "apus")]
    out = []
    for peer, goal in GOALS.items():
        for _, row in rows.iterrows():
            if peer in row and not pd.isna(row[peer]) and row[f"{peer}_same"]:
                verdict = "met" if row[peer] >= goal else "NOT met"
                out.append(f"goal >= {goal:.0f}x vs {peer} at {replicas} replicas "
                           f"({row['measured_at']}-side both): {row[peer]:,.1f}x — {verdict}")
    return out


def timeshare_note(replica_counts: Iterable[int]) -> str:
    cpus = os.cpu_count() or 1
    if not any(n > cpus for n in replica_counts):
        return ""
    return (f"note: this machine has {cpus} CPUs, so above {cpus} replicas the replicas (and "
            "the load generator) time-share the CPU: a poller waiting for a peer must hand "
            "it the CPU first, so latencies at those counts include scheduling delays.")


def render_table(table: Any) -> str:
    """A rich table as plain text (for reports and tests)."""
    buffer = Console(file=io.StringIO(), width=130)
    buffer.print(table)
    return buffer.file.getvalue()


def report(results: list[ProtocolResult]) -> str:
    """The table, the ratios, the goals, what could not run and why, the CPU caveat."""
    from rich.table import Table

    table = Table(title="consensus latency (one client) and throughput")
    for column in ("protocol", "measured at", "replicas", "p50 µs", "p99 µs",
                   "ops/s (N clients)", "kernel share", "agree"):
        table.add_column(column)
    skipped = []
    for r in results:
        if r.skipped:
            skipped.append(f"- {r.protocol} x{r.replicas}: {r.skipped}")
            continue
        s = r.summary()
        share = f"{r.kernel_share:.0%}" if r.kernel_share is not None else "-"
        table.add_row(f"{r.protocol}/{r.transport}", r.measured_at, str(r.replicas),
                      f"{s['p50_us']:,.2f}", f"{s['p99_us']:,.2f}", f"{r.throughput or 0:,.0f}",
                      share, {True: "yes", False: "NO", None: "-"}[r.agreement])
    out = [render_table(table)]
    ratios = ratio_table(frame_from_results(results))
    if ratios.empty:
        out.append("APUS did not run: no ratios.")
    out += format_ratios(ratios) + goal_lines(ratios)
    if skipped:
        out += ["could not run:", *skipped]
    note = timeshare_note(r.replicas for r in results)
    if note:
        out.append(note)
    return "\n".join(out)


# ---- invoke reproduce -------------------------------------------------------------

QUICK = Plan(ALL, (3, 5), transports=("shm", "tcp"), external_replicas=(3,))
FULL = Plan(ALL, (3, 5, 7, 9), transports=("shm", "tcp"))
QUICK_NOTE = ("quick mode: every protocol at 3 replicas, APUS (shm and tcp), DARE-style and "
              "Multi-Paxos also at 5; 500 proposals per point; `invoke reproduce --full` or "
              "`invoke latency --replicas 3,5,7,9` for the whole sweep")


def run(full: bool) -> list[Path]:
    """`invoke reproduce`: the sweep (quick: 3 and 5 replicas, external peers at 3)."""
    plan = FULL if full else QUICK
    with console.status("consensus latency") as status:
        results, paths = sweep(plan, rounds=5000 if full else 500,
                               notes=[] if full else [QUICK_NOTE],
                               progress=lambda what: status.update(f"consensus latency: {what}"))
    console.print(report(results))
    return paths


EXPERIMENT = Experiment(
    name=NAME,
    description="consensus latency vs replicas: APUS, DARE-style, Multi-Paxos, etcd, "
                "ZooKeeper, PySyncObj; kernel share",
    run=run,
    figures=("fig3_consensus_latency", "kernel_share"),
    quick_minutes=1.5,
)


def main(argv: list[str] | None = None) -> int:
    """`python -m gaia.experiments.consensus_latency --protocols ... --replicas 3,5,7,9`:
    the sweep without invoke (the `latency` task does the same, plus figures)."""
    import argparse

    from gaia.errors import report as print_error

    parser = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    parser.add_argument("--protocols", default=",".join(ALL))
    parser.add_argument("--replicas", default="3,5,7,9")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--payload", type=int, default=64)
    parser.add_argument("--transport", default="shm", help="APUS: shm, tcp or shm,tcp")
    parser.add_argument("--storage", choices=("tmpfs", "disk"), default="tmpfs")
    args = parser.parse_args(argv)
    try:
        plan = Plan(tuple(p for p in args.protocols.split(",") if p),
                    tuple(int(n) for n in args.replicas.split(",") if n),
                    tuple(t for t in args.transport.split(",") if t))
        with console.status("consensus latency") as status:
            results, _ = sweep(plan, clients=args.clients, rounds=args.rounds,
                               payload=args.payload, storage=args.storage,
                               progress=lambda what: status.update(f"consensus latency: {what}"))
    except (GaiaError, ValueError) as exc:
        print_error(exc if isinstance(exc, GaiaError) else ConfigError(str(exc), "see --help"))
        return 2
    print(report(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
