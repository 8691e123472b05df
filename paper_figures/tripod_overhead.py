"""TRIPOD: Redis with R = 3 vs R = 1 vs plain Redis — YCSB A throughput and latency, and
what killing a replica's host or the leading controller costs.

Claim (GAIA proposal): replicating a task with R = 3 under TRIPOD costs 3.22% throughput
and 3.31% response time; when a host dies the R = 3 task keeps serving with its state,
while an R = 1 task (as Marathon restarts mr-redis) is restarted elsewhere without it.
Rendered from the newest complete `tripod_overhead` run (gaia/experiments/tripod_overhead.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from gaia.experiments.tripod_overhead import DEPLOYMENTS, EXPERIMENT_NAME, describe, summary
from paper_figures import Figure
from paper_figures._common import provenance, save_figure, setup_style

NAME = "tripod_overhead"
LABELS = {"plain": "plain Redis", "tripod-r1": "TRIPOD R=1", "tripod-r3": "TRIPOD R=3"}


def render(records: list[Any], out_dir: Path) -> list[Path]:
    s = summary(records)
    if s is None:
        return []
    setup_style()
    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(13, 4.2))
    names = [LABELS[d] for d in DEPLOYMENTS]
    tput = [s.throughput[d] for d in DEPLOYMENTS]
    ax1.bar(names, tput, color=["#888", "#4c72b0", "#55a868"])
    for i, d in enumerate(DEPLOYMENTS[1:], start=1):
        lost, _ = s.overhead(d)
        ax1.annotate(f"{-lost:+.1%}", (i, tput[i]), ha="center", va="bottom", fontsize=8)
    ax1.set(title="YCSB A throughput (closed loop)", ylabel="ops/s")
    width = 0.38
    xs = range(len(DEPLOYMENTS))
    ax2.bar([x - width / 2 for x in xs], [s.p50_us[d] for d in DEPLOYMENTS], width,
            label="p50")
    ax2.bar([x + width / 2 for x in xs], [s.p99_us[d] for d in DEPLOYMENTS], width,
            label="p99")
    ax2.set_xticks(list(xs), names)
    ax2.set_yscale("log")
    ax2.set(title="Response time", ylabel="µs (log)")
    ax2.legend(fontsize=8)
    h3, h1, ck = s.faults["host-kill-r3"], s.faults["host-kill-r1"], s.faults["controller-kill"]
    bars = ["host kill\nR=3", "host kill\nR=1", "controller\nkill (R=3)"]
    down = [h3["downtime_s"], h1["downtime_s"], ck["task_downtime_s"]]
    lost = [(h3["lost"], h3["acknowledged"]), (h1["lost"], h1["acknowledged"]),
            (ck["lost"], ck["acknowledged"])]
    ax3.bar(bars, down, color=["#55a868", "#c44e52", "#8172b2"])
    for i, (n, of) in enumerate(lost):
        ax3.annotate(f"lost {n}/{of}", (i, down[i]), ha="center", va="bottom", fontsize=8)
    ax3.set(title="Writes unavailable after the fault", ylabel="downtime, s")
    ax3.set_ylim(top=max(down) * 1.25 + 0.1)
    fig.text(0.01, 0.005, f"Leading controller killed: new leader in {ck['new_leader_by_s']:.2f}"
             f" s, next task scheduled in {ck['scheduled_by_s']:.2f} s. {s.cores} cores shared "
             "by 3 controllers, 5 agents, servers, APUS replicas and the client. "
             + provenance([r for r in records if r.experiment == EXPERIMENT_NAME
                           and r.config.get("run_id") == s.run_id]), fontsize=6.5)
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    return save_figure(fig, out_dir, NAME)


def measured(records: list[Any]) -> str:
    return describe(summary(records))


FIGURE = Figure(
    name=NAME,
    title="TRIPOD: Redis R=3 vs R=1 vs plain; host and controller kills",
    claim="R=3 under TRIPOD costs 3.22% throughput / 3.31% response time (goal <= 4%); "
          "a host kill keeps the R=3 task's state, an R=1 task restarts without it",
    experiment=EXPERIMENT_NAME,
    render=render,
    measured=measured,
)
