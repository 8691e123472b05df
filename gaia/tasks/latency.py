"""`invoke latency`: consensus latency of APUS and every baseline in one run (issues #3, #6).

Every protocol at every replica count: one-client latency (p50/p99), throughput with N
clients, the kernel share of the servers' CPU, APUS measured both at the leader and from
a client (each peer is compared with the APUS number measured the way the peer was),
APUS's per-phase breakdown and the ping-pong floor of the same run, the peer/APUS ratios;
then Figure 3 and the kernel-share chart from the records just stored. The sweep itself
is gaia.experiments.consensus_latency (also `invoke reproduce`).
"""

from __future__ import annotations

import os
import time

from invoke import task

from gaia.errors import ConfigError, friendly


def _ints(text: str, what: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in str(text).split(",") if v.strip())
    except ValueError:
        raise ConfigError(f"--{what} {text!r} is not a list of numbers", "e.g. 3,5,7,9") from None
    if not values or min(values) < 1:
        raise ConfigError(f"--{what} needs positive numbers", "e.g. 3,5,7,9")
    return values


def _names(text: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in str(text).split(",") if p.strip())


def apus_detail(results: list) -> str:
    """APUS's own lines: both measurement points, p99.9, the floor, the leader's phases."""
    from rich.table import Table

    from gaia.experiments.consensus_latency import render_table

    table = Table(title="APUS detail (phases: median µs inside the leader's hot loop)")
    phases = ("persist", "send", "quorum_wait", "commit_notify", "leader_total")
    for col in ("transport", "replicas", "measured at", "p50 µs", "p99.9 µs", "floor p50 µs",
                *phases):
        table.add_column(col.replace("_", " "))
    for r in results:
        if r.protocol != "apus" or r.skipped:
            continue
        got = r.notes.get("phases_p50_us", {})
        table.add_row(r.transport, str(r.replicas), r.measured_at,
                      f"{r.summary()['p50_us']:,.2f}", f"{r.summary()['p999_us']:,.1f}",
                      f"{r.notes.get('floor_p50_us', float('nan')):,.2f}",
                      *(f"{got[p]:,.2f}" if p in got else "-" for p in phases))
    return render_table(table)


@task(help={
    "protocols": "comma-separated: apus, dare, multipaxos, etcd, zookeeper, pysyncobj",
    "replicas": "replica counts, e.g. 3,5,7,9",
    "clients": "concurrent proposers in the throughput run",
    "transport": "APUS's transport: shm, tcp, or shm,tcp for both (the others have one)",
    "durability": "fsync (the comparison's setting) or memory",
    "storage": "where fsync'ed data lives: tmpfs (the comparison) or disk",
    "rounds": "one-client proposals measured per protocol and replica count",
    "payload": "bytes per proposal",
    "pin": "APUS replicas' pinning: none, spread, a CPU or a list (replica i on CPU i)",
    "spin": "APUS replicas' backoff: auto, spin or shared",
    "figures": "render Figure 3 and the kernel-share chart afterwards",
})
@friendly
def latency(c, protocols="apus", replicas="3", clients=8, transport="shm",
            durability="fsync", storage="tmpfs", rounds=2000, payload=64, pin="none",
            spin="auto", figures=True):
    """Consensus latency of APUS and the baselines: table, ratios, kernel share, figures."""
    from rich.console import Console

    from analysis.store import load_records
    from gaia.experiments import consensus_latency as cl
    from gaia.paths import FIGURES_OUT_DIR

    if durability not in ("fsync", "memory") or storage not in ("tmpfs", "disk"):
        raise ConfigError(f"durability {durability!r} / storage {storage!r}",
                          "use --durability fsync|memory and --storage tmpfs|disk")
    plan = cl.Plan(_names(protocols), _ints(replicas, "replicas"), _names(transport))
    cl.check_plan(plan)
    os.environ.setdefault("GAIA_RUN_GROUP", time.strftime("latency-%Y%m%dT%H%M%S"))
    console = Console()
    with console.status("consensus latency") as status:
        results, paths = cl.sweep(
            plan, clients=int(clients), rounds=int(rounds), payload=int(payload),
            durability=durability, storage=storage,
            apus_options={"pin": str(pin), "spin": str(spin)},
            progress=lambda what: status.update(f"consensus latency: {what}"))
    console.print(f"[bold]durability {durability}, data on {storage}; "
                  f"{len(paths)} records under results/{cl.NAME}/[/]")
    console.print(cl.report(results))
    if any(r.protocol == "apus" and not r.skipped for r in results):
        console.print(apus_detail(results))
    if figures and paths:
        from paper_figures import fig3_consensus_latency, kernel_share

        records = [r for r in load_records(experiment=cl.NAME)
                   if str(r.run_group) == os.environ["GAIA_RUN_GROUP"]]
        for figure in (fig3_consensus_latency.FIGURE, kernel_share.FIGURE):
            for path in figure.render(records, FIGURES_OUT_DIR):
                console.print(f"figure: {path}")


TASKS = [latency]
