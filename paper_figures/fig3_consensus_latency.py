"""Figure 3 analogue: consensus latency against the number of replicas, one line per
protocol and measurement point (APUS leader-side and client-observed, over shm and tcp;
DARE-style, Multi-Paxos, PySyncObj at the leader; etcd, ZooKeeper from a client), log
scale.

Claim (GAIA proposal, Figure 3): APUS is 32.3x-85.8x faster than traditional Paxos
protocols, faster than DARE, and scales from 3 to 9 replicas. Rendered from the
`consensus_latency` records only (newest per protocol, transport and replica count,
tmpfs storage); the numbers and ratios come from gaia.experiments.consensus_latency.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from gaia.experiments.consensus_latency import (
    PEERS,
    format_ratios,
    frame_from_records,
    goal_lines,
    ratio_table,
)
from paper_figures import Figure

ORDER = ("apus", "apus/tcp", "dare", "multipaxos", "pysyncobj", "etcd", "zookeeper")
STYLE = {"leader": "-", "client": ":"}  # line style of p50 by measurement point


def consensus_frame(records: list[Any], storage: str = "tmpfs") -> pd.DataFrame:
    """One row per (series, measured_at, replicas): the newest record that ran."""
    return frame_from_records(records, storage)


def render(records: list[Any], out_dir: Path) -> list[Path]:
    df = consensus_frame(records)
    if df.empty:
        return []
    fig, ax = plt.subplots(figsize=(8, 5))
    colors = plt.get_cmap("tab10")
    names = [p for p in ORDER if p in set(df["protocol"])] + \
        sorted(set(df["protocol"]) - set(ORDER))
    for i, name in enumerate(names):
        for at, g in df[df["protocol"] == name].groupby("measured_at"):
            g = g.sort_values("replicas")
            ax.plot(g["replicas"], g["p50_us"], marker="o", color=colors(i),
                    linestyle=STYLE.get(at, "-"), label=f"{name} ({at}) p50")
            ax.plot(g["replicas"], g["p99_us"], linestyle="--", linewidth=0.6, alpha=0.6,
                    color=colors(i))
    ax.set_yscale("log")
    ax.set_xticks(sorted(df["replicas"].unique()))
    ax.set(xlabel="replicas", ylabel="latency per entry (µs, log)",
           title="Consensus latency vs replicas (p50 marked; p99 thin dashed)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, ncol=2)
    cpus = max((int(r.config.get("cpus") or 1) for r in records), default=1)
    fig.text(0.01, 0.01,
             f"{cpus}-CPU machine: above {cpus} replicas the processes time-share the CPU. "
             "(leader): proposals made and timed inside the leader;\n(client, dotted): timed "
             "by a separate client process. Same durability for all: fsync, data on tmpfs.",
             fontsize=6.5)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "fig3_consensus_latency.png", out_dir / "fig3_consensus_latency.pdf"]
    for path in paths:
        fig.savefig(path, dpi=150)
    plt.close(fig)
    return paths


def ratios(df: pd.DataFrame) -> pd.DataFrame:
    """peer p50 / APUS p50 per replica count and APUS measurement (see ratio_table)."""
    return ratio_table(df)


def measured(records: list[Any]) -> str:
    df = consensus_frame(records)
    if df.empty:
        return "no consensus_latency records"
    table = ratios(df)
    if table.empty:
        at3 = df[df["replicas"] == df["replicas"].min()]
        return (f"APUS has no record yet; p50 at {int(at3['replicas'].min())} replicas: "
                + ", ".join(f"{p} ({a}) {v:,.1f} µs" for p, a, v in
                            zip(at3["protocol"], at3["measured_at"], at3["p50_us"],
                                strict=True)))
    parts = []
    for _, row in table.iterrows():
        same = [f"{p} {row[p]:,.1f}x" for p in PEERS if p in row and not pd.isna(row[p])
                and row[f"{p}_same"]]
        if same:
            parts.append(f"{row['replicas']} replicas, {row['apus']} ({row['measured_at']}) "
                         f"{row['apus_p50_us']:,.2f} µs: " + ", ".join(same))
    lines = ["peer p50 / APUS p50, each peer against APUS measured the same way — "
             + "; ".join(parts) + ". " + " ".join(goal_lines(table))]
    lines += ["", "```", *format_ratios(table), "```"]
    return "\n".join(lines)


FIGURE = Figure(
    name="fig3_consensus_latency",
    title="Consensus latency vs replicas: APUS and every baseline",
    claim="APUS is 32.3x-85.8x faster than traditional Paxos protocols, faster than DARE, "
          "and scales from 3 to 9 replicas",
    experiment="consensus_latency",
    render=render,
    measured=measured,
)
