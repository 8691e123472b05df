"""`invoke latency`: consensus latency per protocol and replica count (one client, with a
per-phase breakdown where the protocol exposes one), throughput under many proposers, and
the shared-memory ping-pong floor measured in the same run.

Other protocols plug in through `PROTOCOLS` (name -> runner taking LatencyParams and
returning ResultRecords); the loop below never changes for them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from invoke import task

from gaia.errors import ConfigError, friendly

Runner = Callable[..., list]


def _apus(params):
    from gaia.apus.bench import run_apus

    return run_apus(params)


PROTOCOLS: dict[str, Runner] = {"apus": _apus}


def _ints(text: str, what: str) -> list[int]:
    try:
        values = [int(v) for v in str(text).split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--{what} {text!r} is not a list of numbers", "e.g. 3,5,7,9") from None
    if not values or min(values) < 1:
        raise ConfigError(f"--{what} needs positive numbers", "e.g. 3,5,7,9")
    return values


@task(help={
    "protocols": "comma-separated: " + ", ".join(PROTOCOLS),
    "replicas": "replica counts, e.g. 3,5,7,9",
    "clients": "concurrent proposers in the throughput run",
    "transport": "shm or tcp",
    "durability": "memory or fsync",
    "ops": "one-client proposals measured per configuration",
    "seconds": "length of the throughput run",
    "pin": "none, spread, a CPU or a list (replica i on CPU i)",
    "spin": "auto, spin or shared (the replicas' backoff)",
    "save": "store result records under results/latency",
})
@friendly
def latency(c, protocols="apus", replicas="3", clients=32, transport="shm",
            durability="memory", ops=20000, seconds=3.0, pin="none", spin="auto", save=True):
    """Consensus latency (p50/p99/p99.9) with phases, throughput, and the ping-pong floor."""
    from rich.console import Console
    from rich.table import Table

    from analysis.store import save_record
    from gaia.apus.bench import LatencyParams

    names = [p.strip() for p in protocols.split(",") if p.strip()]
    unknown = [n for n in names if n not in PROTOCOLS]
    if unknown:
        raise ConfigError(f"unknown protocol(s) {', '.join(unknown)}",
                          f"choose from {', '.join(PROTOCOLS)}")
    base = LatencyParams(clients=int(clients), transport=transport, durability=durability,
                         ops=int(ops), seconds=float(seconds), pin=str(pin), spin=spin)
    table = Table(title=f"consensus latency ({transport}, {durability})")
    for col in ("protocol", "replicas", "p50 µs", "p99 µs", "p99.9 µs", "floor p50 µs",
                "quorum-wait p50 µs", "ops/s", "record"):
        table.add_column(col)
    console = Console()
    for name in names:
        for n in _ints(replicas, "replicas"):
            console.print(f"[bold]{name}[/] with {n} replicas ...")
            for rec in PROTOCOLS[name](replace(base, replicas=n)):
                path = save_record(rec) if save else None
                m = rec.metrics
                quorum = (f"{rec.percentile_us('phase_quorum_wait', 50):.2f}"
                          if "phase_quorum_wait" in rec.histograms else "-")
                table.add_row(name, str(n), f"{m['p50_us']:.2f}", f"{m['p99_us']:.2f}",
                              f"{m['p999_us']:.2f}", f"{m.get('floor_p50_us', 0):.2f}",
                              quorum, f"{rec.throughput or 0:,.0f}",
                              path.name if path else "-")
    console.print(table)


TASKS = [latency]
