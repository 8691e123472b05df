"""Figure 3 analogue: consensus latency against the number of replicas, one line per
protocol (APUS, DARE-style, Multi-Paxos, etcd, ZooKeeper, PySyncObj), log scale.

Claim (GAIA proposal, Figure 3): APUS is 32.3x-85.8x faster than traditional Paxos
protocols, faster than DARE, and scales from 3 to 9 replicas. Rendered from the
`consensus_latency` records only (newest per protocol, transport and replica count,
tmpfs storage).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from paper_figures import Figure

ORDER = ("apus", "apus/tcp", "dare", "multipaxos", "etcd", "zookeeper", "pysyncobj")
PEERS = ("etcd", "zookeeper", "pysyncobj", "multipaxos", "dare")


def label(record: Any) -> str:
    protocol = record.config["protocol"]
    return f"{protocol}/tcp" if protocol == "apus" and record.transport == "tcp" else protocol


def consensus_frame(records: list[Any], storage: str = "tmpfs") -> pd.DataFrame:
    """One row per (protocol label, replicas): the newest record that ran."""
    latest: dict[tuple[str, int], Any] = {}
    for rec in records:
        if rec.experiment != "consensus_latency" or rec.metrics.get("skipped"):
            continue
        if rec.config.get("storage", "tmpfs") != storage or "latency" not in rec.histograms:
            continue
        key = (label(rec), int(rec.config["replicas"]))
        if key not in latest or rec.created > latest[key].created:
            latest[key] = rec
    rows = [{"protocol": name, "replicas": n,
             "p50_us": rec.percentile_us("latency", 50), "p99_us": rec.percentile_us("latency", 99),
             "throughput": rec.throughput, "kernel_share": rec.metrics.get("kernel_share"),
             "measured_at": rec.config.get("measured_at", "")}
            for (name, n), rec in latest.items()]
    frame = pd.DataFrame(rows, columns=["protocol", "replicas", "p50_us", "p99_us",
                                        "throughput", "kernel_share", "measured_at"])
    return frame.sort_values(["protocol", "replicas"]).reset_index(drop=True)


def render(records: list[Any], out_dir: Path) -> list[Path]:
    df = consensus_frame(records)
    if df.empty:
        return []
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    colors = plt.get_cmap("tab10")
    names = [p for p in ORDER if p in set(df["protocol"])] + \
        sorted(set(df["protocol"]) - set(ORDER))
    for i, name in enumerate(names):
        g = df[df["protocol"] == name]
        ax.plot(g["replicas"], g["p50_us"], marker="o", color=colors(i), label=f"{name} p50")
        ax.plot(g["replicas"], g["p99_us"], linestyle="--", linewidth=0.8, color=colors(i))
    ax.set_yscale("log")
    ax.set_xticks(sorted(df["replicas"].unique()))
    ax.set(xlabel="replicas", ylabel="latency per entry (µs, log)",
           title="Consensus latency vs replicas (p50 solid, p99 dashed)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.text(0.01, 0.01, "2-CPU machine: above 2 replicas the processes time-share the CPU.\n"
             "APUS, DARE, Multi-Paxos, PySyncObj measured at the leader; etcd, ZooKeeper "
             "from a client.", fontsize=6.5)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "fig3_consensus_latency.png", out_dir / "fig3_consensus_latency.pdf"]
    for path in paths:
        fig.savefig(path, dpi=150)
    plt.close(fig)
    return paths


def ratios(df: pd.DataFrame, base: str = "apus") -> dict[int, dict[str, float]]:
    """peer p50 / base p50 at each replica count where both ran."""
    out: dict[int, dict[str, float]] = {}
    for n, g in df.groupby("replicas"):
        p50 = dict(zip(g["protocol"], g["p50_us"], strict=True))
        if base in p50:
            out[int(n)] = {p: p50[p] / p50[base] for p in PEERS if p in p50}
    return out


def measured(records: list[Any]) -> str:
    df = consensus_frame(records)
    if df.empty:
        return "no consensus_latency records"
    found = ratios(df)
    if not found:
        at3 = df[df["replicas"] == df["replicas"].min()]
        return ("APUS has no record yet; p50 at {} replicas: ".format(int(at3["replicas"].min()))
                + ", ".join(f"{p} {v:,.1f} µs" for p, v in zip(at3["protocol"], at3["p50_us"],
                                                                  strict=True)))
    parts = []
    for n, ratio in sorted(found.items()):
        parts.append(f"{n} replicas: " + ", ".join(f"{p} {r:,.1f}x" for p, r in ratio.items()))
    return "peer p50 / APUS p50 — " + "; ".join(parts) + " (2 CPUs: time-shared above 2)"


FIGURE = Figure(
    name="fig3_consensus_latency",
    title="Consensus latency vs replicas: APUS and every baseline",
    claim="APUS is 32.3x-85.8x faster than traditional Paxos protocols, faster than DARE, "
          "and scales from 3 to 9 replicas",
    experiment="consensus_latency",
    render=render,
    measured=measured,
)
