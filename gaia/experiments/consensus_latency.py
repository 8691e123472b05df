"""Experiment "consensus_latency": APUS against every baseline, the GAIA proposal's
Figure 3 (issue #6).

Protocols: apus (registered by the APUS runtime), dare and multipaxos (gaia.baselines),
etcd and zookeeper (real servers, gaia.peers) and pysyncobj (PyPI). Each runs at each
replica count: one-client latency (p50/p99), throughput with N clients, and the share
of the servers' CPU time spent in the kernel. Same durability for all: fsync mode with
data on tmpfs (a `disk` variant is stored separately). One record per protocol and
replica count; figures `fig3_consensus_latency` and `kernel_share` read them.
"""

from __future__ import annotations

import io
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from rich.console import Console

from analysis.records import ResultRecord
from analysis.store import save_record
from gaia.baselines.measure import EXPERIMENT as NAME
from gaia.baselines.measure import ProtocolResult
from gaia.errors import ConfigError, GaiaError
from gaia.experiments import Experiment
from gaia.paths import new_run_dir

console = Console(stderr=True)

ALL = ("apus", "dare", "multipaxos", "etcd", "zookeeper", "pysyncobj")
PEERS = ("etcd", "zookeeper", "pysyncobj")  # external peers: ratios are reported against them
Runner = Callable[..., ProtocolResult]


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


# name -> runner(replicas, *, clients, rounds, payload, durability, storage, transport,
# run_dir) -> ProtocolResult. The APUS runtime adds "apus" with `register`.
RUNNERS: dict[str, Runner] = {
    "dare": _leader_driven("dare"),
    "multipaxos": _leader_driven("multipaxos"),
    "pysyncobj": _leader_driven("pysyncobj"),
    "etcd": _external("etcd"),
    "zookeeper": _external("zookeeper"),
}


def register(name: str, runner: Runner) -> None:
    """Add a protocol runner (the APUS runtime registers "apus" this way)."""
    RUNNERS[name] = runner


def register_into(registry: dict[str, Runner]) -> dict[str, Runner]:
    """Copy our runners into another registry (e.g. the latency task's)."""
    for name, runner in RUNNERS.items():
        registry.setdefault(name, runner)
    return registry


def _why_not(protocol: str, transport: str) -> str:
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


def measure(protocol: str, replicas: int, **kw) -> ProtocolResult:
    """One protocol at one replica count; a result with `skipped` set when it cannot run
    or fails (the sweep goes on)."""
    transport = kw.get("transport", "shm")
    reason = _why_not(protocol, transport)
    if not reason:
        try:
            return RUNNERS[protocol](replicas, **kw)
        except GaiaError as exc:
            reason = exc.one_line()
    return ProtocolResult(protocol, replicas, kw.get("clients", 1), transport,
                          kw.get("durability", "fsync"), kw.get("storage", "tmpfs"),
                          skipped=reason)


def sweep(protocols: Iterable[str], replica_counts: Iterable[int], *, clients: int = 8,
          rounds: int = 2000, payload: int = 64, durability: str = "fsync",
          storage: str = "tmpfs", transport: str = "shm",
          progress: Callable[[str], None] | None = None) -> list[ProtocolResult]:
    """Every protocol at every replica count, in one run; records saved as it goes."""
    protocols = list(protocols)
    unknown = [p for p in protocols if p not in ALL]
    if unknown:
        raise ConfigError(f"unknown protocol(s) {', '.join(unknown)}",
                          f"choose from {', '.join(ALL)}")
    results = []
    for replicas in replica_counts:
        for protocol in protocols:
            if progress:
                progress(f"{protocol} x{replicas}")
            started = time.monotonic()
            result = measure(protocol, replicas, clients=clients, rounds=rounds,
                             payload=payload, durability=durability, storage=storage,
                             transport=transport, run_dir=new_run_dir(f"latency-{protocol}"))
            result.notes["seconds"] = round(time.monotonic() - started, 1)
            save_record(result.to_record())
            results.append(result)
    return results


# ---- reporting ----------------------------------------------------------------------

def _p50(result: ProtocolResult) -> float | None:
    return result.summary().get("p50_us") if not result.skipped else None


def ratio_lines(results: list[ProtocolResult], base: str = "apus") -> list[str]:
    """'at N replicas: APUS p50 x µs; etcd 123x, ...' for every replica count."""
    lines = []
    for replicas in sorted({r.replicas for r in results}):
        at = {r.protocol + ("" if r.protocol != base else f"/{r.transport}"): r
              for r in results if r.replicas == replicas}
        bases = [k for k in at if k.startswith(base) and _p50(at[k])]
        for key in bases:
            ref = _p50(at[key])
            parts = [f"{name} {_p50(r) / ref:,.1f}x" for name, r in at.items()
                     if not name.startswith(base) and _p50(r)]
            lines.append(f"{replicas} replicas: {key} p50 {ref:,.2f} µs; peer/{key} ratio: "
                         + (", ".join(parts) or "no peer ran"))
    return lines


def report(results: list[ProtocolResult]) -> str:
    """The table, the ratios, what could not run and why, and the CPU caveat."""
    from rich.table import Table

    table = Table(title="consensus latency (one client) and throughput")
    for column in ("protocol", "replicas", "p50 µs", "p99 µs", "ops/s (N clients)",
                   "kernel share", "agree"):
        table.add_column(column)
    skipped = []
    for r in results:
        if r.skipped:
            skipped.append(f"- {r.protocol} x{r.replicas}: {r.skipped}")
            continue
        s = r.summary()
        share = f"{r.kernel_share:.0%}" if r.kernel_share is not None else "-"
        table.add_row(f"{r.protocol}/{r.transport}", str(r.replicas), f"{s['p50_us']:,.2f}",
                      f"{s['p99_us']:,.2f}", f"{r.throughput or 0:,.0f}", share,
                      {True: "yes", False: "NO", None: "-"}[r.agreement])
    buffer = Console(file=io.StringIO(), width=110)
    buffer.print(table)
    out = [buffer.file.getvalue()]
    if any(r.protocol == "apus" and not r.skipped for r in results):
        out += ratio_lines(results)
    elif any(r.protocol == "dare" and not r.skipped for r in results):
        out.append("APUS did not run; ratios against the DARE-style baseline (the other "
                   "one-sided-write protocol) instead:")
        out += ratio_lines(results, base="dare")
    if skipped:
        out += ["could not run:", *skipped]
    cpus = os.cpu_count() or 1
    if any(r.replicas > cpus for r in results):
        out.append(f"note: this machine has {cpus} CPUs, so replica counts above {cpus} "
                   "time-share the CPU (and so does the load generator); latencies at those "
                   "counts include scheduling delays.")
    return "\n".join(out)


def run(full: bool) -> list[Path]:
    """`invoke reproduce`: every protocol at 3/5/7/9 replicas (quick: fewer rounds)."""
    from gaia.paths import RESULTS_DIR

    before = set((RESULTS_DIR / NAME).glob("*.json"))
    with console.status("consensus latency") as status:
        results = sweep(ALL, (3, 5, 7, 9), rounds=5000 if full else 1000,
                        progress=lambda what: status.update(f"consensus latency: {what}"))
    console.print(report(results))
    return sorted(set((RESULTS_DIR / NAME).glob("*.json")) - before)


def latest(records: Iterable[ResultRecord], storage: str = "tmpfs") -> dict:
    """The newest record per (protocol, transport, replicas) that ran, for the figures."""
    chosen: dict[tuple[str, str, int], ResultRecord] = {}
    for record in records:
        if record.experiment != NAME or record.metrics.get("skipped"):
            continue
        if record.config.get("storage", "tmpfs") != storage or "latency" not in record.histograms:
            continue
        key = (record.config["protocol"], record.transport or "", int(record.config["replicas"]))
        if key not in chosen or record.created > chosen[key].created:
            chosen[key] = record
    return chosen


EXPERIMENT = Experiment(
    name=NAME,
    description="consensus latency vs replicas: APUS, DARE-style, Multi-Paxos, etcd, "
                "ZooKeeper, PySyncObj; kernel share",
    run=run,
    figures=("fig3_consensus_latency", "kernel_share"),
    quick_minutes=15.0,
)


def main(argv: list[str] | None = None) -> int:
    """`python -m gaia.experiments.consensus_latency --protocols ... --replicas 3,5,7,9`:
    the sweep without invoke (the `latency` task calls `sweep` and `report` the same way)."""
    import argparse

    from gaia.errors import report as print_error

    parser = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    parser.add_argument("--protocols", default=",".join(ALL))
    parser.add_argument("--replicas", default="3,5,7,9")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2000)
    parser.add_argument("--payload", type=int, default=64)
    parser.add_argument("--transport", choices=("shm", "tcp"), default="shm")
    parser.add_argument("--storage", choices=("tmpfs", "disk"), default="tmpfs")
    args = parser.parse_args(argv)
    try:
        counts = [int(n) for n in args.replicas.split(",") if n]
        with console.status("consensus latency") as status:
            results = sweep(args.protocols.split(","), counts, clients=args.clients,
                            rounds=args.rounds, payload=args.payload, storage=args.storage,
                            transport=args.transport,
                            progress=lambda what: status.update(f"consensus latency: {what}"))
    except (GaiaError, ValueError) as exc:
        print_error(exc if isinstance(exc, GaiaError) else ConfigError(str(exc), "see --help"))
        return 2
    print(report(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
