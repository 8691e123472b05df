"""What replication costs each server: YCSB A throughput at saturation and p50/p99 latency
at a fixed load, the server alone vs the leader of a 3-replica APUS group (and through
the stable front port), ratios annotated.

Claim (GAIA proposal): replicating Redis under APUS costs 3.22% throughput and 3.31% p50
latency at a fixed load (goal: <= 4%). Rendered from the `app_overhead` records (the
newest complete measured pair per app; experiment gaia/experiments/app_overhead.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from gaia.experiments.app_overhead import Row, describe, rows
from paper_figures import Figure
from paper_figures._common import provenance, save_figure, setup_style

NAME = "app_overhead"


def _frames(found: list[Row]) -> tuple[pd.DataFrame, pd.DataFrame]:
    sat = pd.DataFrame(
        [{"app": r.app, "deployment": d, "ops/s": v} for r in found
         for d, v in (("alone", r.unrep_sat), ("replicated", r.rep_sat))])
    lat = [{"app": r.app, "deployment": d, "percentile": p, "µs": v} for r in found
           for d, p50, p99 in (("alone", r.unrep_p50_us, r.unrep_p99_us),
                               ("replicated", r.rep_p50_us, r.rep_p99_us),
                               ("front port", r.front_p50_us, r.front_p99_us))
           if p50 is not None
           for p, v in (("p50", p50), ("p99", p99))]
    return sat, pd.DataFrame(lat)


def render(records: list[Any], out_dir: Path) -> list[Path]:
    found = rows(records)
    if not found:
        return []
    setup_style()
    sat, lat = _frames(found)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4.2),
                                   gridspec_kw={"width_ratios": [1, 1.6]})
    sns.barplot(data=sat, x="app", y="ops/s", hue="deployment", ax=ax1)
    ax1.set(title="Throughput at saturation (closed loop)", xlabel="", ylabel="ops/s")
    ax1.set_ylim(top=sat["ops/s"].max() * 1.15)
    for i, r in enumerate(found):  # hue dodge: 'replicated' is the right-hand bar
        ax1.annotate(f"×{r.sat_ratio:.2f}", (i + 0.2, r.rep_sat), ha="center", va="bottom",
                     fontsize=8)
    p50 = lat[lat["percentile"] == "p50"]
    sns.barplot(data=p50, x="app", y="µs", hue="deployment", ax=ax2)
    p99 = lat[lat["percentile"] == "p99"]
    sns.stripplot(data=p99, x="app", y="µs", hue="deployment", dodge=True, marker="_",
                  size=18, linewidth=2, ax=ax2, legend=False, palette="dark")
    ax2.set_yscale("log")
    top = lat["µs"].max()
    ax2.set_ylim(bottom=max(1.0, lat["µs"].min() / 3), top=top * 12)
    ax2.set(title="Latency at a fixed open-loop load (bars p50, dashes p99)", xlabel="",
            ylabel="intended latency, µs (log)")
    for i, r in enumerate(found):
        ax2.annotate(f"@{r.target:,} ops/s: p50 {r.p50_overhead:+.0%}, "
                     f"p99 {r.p99_overhead:+.0%}", (i, top * 2), ha="center", va="bottom",
                     fontsize=7)
    ax2.legend(fontsize=7, loc="upper right")
    cores = sorted({r.cores for r in found})
    fig.text(0.01, 0.005, f"{'/'.join(map(str, cores))} cores shared by the leader's server, "
             "3 APUS replicas, 2 backup servers + replayers and the YCSB client. "
             + provenance([r for r in records if r.experiment == "app_overhead"
                           and r.config.get("pair") in {row.pair for row in found}]),
             fontsize=6.5)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return save_figure(fig, out_dir, NAME)


def measured(records: list[Any]) -> str:
    found = rows(records)
    if not found:
        return "no app_overhead records"
    return " | ".join(describe(r) for r in found)


FIGURE = Figure(
    name=NAME,
    title="Replicated vs unreplicated throughput and latency per server",
    claim="replicating Redis costs 3.22% throughput and 3.31% p50 latency at a fixed load "
          "(goal <= 4%)",
    experiment="app_overhead",
    render=render,
    measured=measured,
)
