"""Kernel share: the fraction of each protocol's server CPU time spent in the kernel,
per replica count (system / (user + system) from /proc/<pid>/stat over a ~2 s run).

Claim (GAIA proposal): 36.5%-63.7% of traditional Paxos's latency growth is in the OS
kernel. We chart where the CPU time goes; whichever way it falls is reported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import seaborn as sns

from paper_figures import Figure
from paper_figures.fig3_consensus_latency import ORDER, consensus_frame


def shares(records: list[Any]):
    """One row per (series, replicas): APUS's two measurement points share one CPU run."""
    df = consensus_frame(records).dropna(subset=["kernel_share"])
    return df.drop_duplicates(subset=["protocol", "replicas"]).reset_index(drop=True)


def render(records: list[Any], out_dir: Path) -> list[Path]:
    df = shares(records)
    if df.empty:
        return []
    df = df.assign(percent=df["kernel_share"] * 100)
    order = [p for p in ORDER if p in set(df["protocol"])] + \
        sorted(set(df["protocol"]) - set(ORDER))
    sns.set_theme(style="whitegrid")
    fig, ax = plt.subplots(figsize=(8, 4.2))
    sns.barplot(data=df, x="protocol", y="percent", hue="replicas", order=order, ax=ax,
                palette="viridis")
    ax.set(ylabel="system / (user + system) CPU, %", xlabel="", ylim=(0, 100),
           title="Share of the protocols' CPU time spent in the kernel")
    ax.legend(title="replicas", fontsize=8)
    fig.tight_layout()
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "kernel_share.png", out_dir / "kernel_share.pdf"]
    for path in paths:
        fig.savefig(path, dpi=150)
    plt.close(fig)
    return paths


def measured(records: list[Any]) -> str:
    df = shares(records)
    if df.empty:
        return "no kernel-share measurements"
    parts = []
    for protocol, g in df.groupby("protocol"):
        text = ", ".join(f"{int(n)}: {s:.0%}" for n, s in zip(g["replicas"], g["kernel_share"],
                                                                strict=True))
        parts.append(f"{protocol} ({text})")
    return "kernel share by replicas — " + "; ".join(parts)


FIGURE = Figure(
    name="kernel_share",
    title="Share of consensus CPU time in the kernel",
    claim="36.5%-63.7% of the latency growth of traditional Paxos is in the OS kernel",
    experiment="consensus_latency",
    render=render,
    measured=measured,
)
