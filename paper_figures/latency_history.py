"""Consensus latency across commits, drawn from asv's stored results (`invoke bench.plot`).

Not a paper figure (it has no FIGURE and reads asv results, not result records): it is the
regression-tracking view of issue 8 — one panel per benchmark (APUS p50/p99, the
ping-pong floor), one point per commit in history order, so a step up names its commit.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from gaia.bench.history import HistoryPoint

STEM = "latency_history"


def render(points: Sequence[HistoryPoint], out_dir: Path, subtitle: str = "") -> list[Path]:
    """Write latency_history.png and .pdf into out_dir; returns their paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns

    if not points:
        raise ValueError("no benchmark values to plot")
    frame = pd.DataFrame(
        {
            "commit": [p.label for p in points],
            "position": [p.position for p in points],
            "benchmark": [f"{p.benchmark.split('.', 1)[-1]} [{p.unit}]" for p in points],
            "value": [p.value for p in points],
        }
    )
    panels = frame["benchmark"].nunique()
    sns.set_theme(style="whitegrid", context="paper")
    grid = sns.relplot(
        data=frame,
        x="position",
        y="value",
        col="benchmark",
        col_wrap=min(panels, 2),
        kind="line",
        marker="o",
        facet_kws={"sharey": False, "sharex": True},
        height=2.8,
        aspect=1.6,
    )
    labels = frame.drop_duplicates("position").sort_values("position")
    for ax in grid.axes.flat:
        ax.set_xticks(list(labels["position"]))
        ax.set_xticklabels(list(labels["commit"]), rotation=45, ha="right", fontsize=7)
        ax.set_ylim(bottom=0)
    grid.set_titles("{col_name}")
    grid.set_axis_labels("commit (oldest → newest)", "")
    title = "Consensus latency across commits"
    # Above the panel titles: ~0.3 in per title line, as a fraction of the figure height.
    lift = 0.3 * (2 if subtitle else 1) / grid.figure.get_figheight()
    grid.figure.suptitle(f"{title}\n{subtitle}" if subtitle else title, y=1.0 + lift)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{STEM}.png", out_dir / f"{STEM}.pdf"]
    for path in paths:
        grid.figure.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(grid.figure)
    return paths
