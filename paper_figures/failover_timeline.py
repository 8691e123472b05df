"""Failover timeline: acknowledged client operations per 100 ms through faults on the
leader (shaded spans; a dashed line where clients were served again), and the
distribution of failover times over every leader fault of the records.

Claim (GAIA proposal / issue 7): a replica failure costs the clients little: failover
p99 <= 50 ms on shm (goal). Rendered from `failover_timeline` records (campaign records
of gaia.faults; experiment gaia/experiments/failover_timeline.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np

from paper_figures import Figure
from paper_figures._common import provenance, save_figure, setup_style

NAME = "failover_timeline"
SHOWN_RUNS = 4
COLORS = {"kill": "tab:red", "pause": "tab:orange", "restart": "tab:purple",
          "partition": "tab:blue", "one-way": "tab:cyan", "loss": "tab:gray",
          "rate": "tab:olive", "delay": "tab:brown"}


def _runs(records: list[Any]) -> list[tuple[Any, dict[str, Any]]]:
    """(record, run summary) of every run that kept its throughput timeline."""
    return [(rec, run) for rec in records for run in rec.metrics.get("runs_detail", [])
            if run.get("throughput")]


def _samples(records: list[Any], field: str) -> list[tuple[str, float]]:
    return [(rec.transport or "?", f[field]) for rec in records
            for run in rec.metrics.get("runs_detail", []) for f in run.get("failovers", [])
            if f.get(field) is not None]


def _timeline(ax: Any, record: Any, run: dict[str, Any]) -> None:
    bucket_s = record.metrics.get("bucket_ms", 100) / 1000
    counts = np.asarray(run["throughput"], dtype=float) / bucket_s
    times = np.arange(len(counts)) * bucket_s
    ax.step(times, counts, where="post", color="black", linewidth=0.9)
    for fault in run.get("faults", []):
        end = fault["end_s"] if fault["end_s"] is not None else times[-1]
        ax.axvspan(fault["start_s"], end, color=COLORS.get(fault["kind"], "grey"), alpha=0.25,
                   label=fault["kind"] + (" (leader)" if fault["hit_leader"] else ""))
    for fo in run.get("failovers", []):
        if fo.get("unavailable_ms") is not None and "start_s" in fo:
            ax.axvline(fo["start_s"] + fo["unavailable_ms"] / 1000, color="black",
                       linestyle="--", linewidth=0.8)
    ax.set_ylabel("ops/s")
    ax.set_title(f"{record.app} on {record.transport}, run {run['index']}: "
                 f"{run.get('verdict', '?')}, {run.get('lost', '?')} lost", fontsize=8,
                 loc="left")
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=False))
    if unique:
        ax.legend(unique.values(), unique.keys(), fontsize=6, loc="upper right")


def _distribution(ax: Any, records: list[Any]) -> None:
    for field, label, style in (("unavailable_ms", "clients served again", "-"),
                                ("election_ms", "new leader named", ":")):
        for transport in sorted({t for t, _ in _samples(records, field)}):
            values = np.sort([v for t, v in _samples(records, field) if t == transport])
            ax.step(values, np.arange(1, len(values) + 1) / len(values), where="post",
                    linestyle=style, label=f"{label} ({transport}, n={len(values)})")
    ax.axvline(50, color="green", linewidth=0.8, label="goal p99 50 ms (shm)")
    ax.set_xscale("log")
    ax.set(xlabel="ms after the fault (log)", ylabel="fraction of leader faults",
           title="Failover time")
    ax.legend(fontsize=6, loc="lower right")


def render(records: list[Any], out_dir: Path) -> list[Path]:
    runs = _runs(records)
    if not runs:
        return []
    setup_style()
    shown = runs[:SHOWN_RUNS]
    fig = plt.figure(figsize=(11, 1.9 * len(shown) + 1))
    grid = fig.add_gridspec(len(shown), 2, width_ratios=(2.2, 1))
    axes = [fig.add_subplot(grid[i, 0]) for i in range(len(shown))]
    for ax, (record, run) in zip(axes, shown, strict=True):
        _timeline(ax, record, run)
    axes[-1].set_xlabel("seconds into the run")
    _distribution(fig.add_subplot(grid[:, 1]), records)
    fig.text(0.01, 0.003, "Shaded: fault held; dashed: first acknowledged operation "
             "invoked after the fault. " + provenance(records), fontsize=6.5)
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    return save_figure(fig, out_dir, NAME)


def _pct(values: list[float], q: float) -> str:
    return f"{np.percentile(values, q):.0f} ms" if values else "-"


def measured(records: list[Any]) -> str:
    parts = []
    for transport in sorted({r.transport or "?" for r in records}):
        mine = [r for r in records if (r.transport or "?") == transport]
        served = [v for _, v in _samples(mine, "unavailable_ms")]
        named = [v for _, v in _samples(mine, "election_ms")]
        runs = sum(r.metrics.get("runs", 0) for r in mine)
        lost = sum(r.metrics.get("lost_acknowledged_writes", 0) for r in mine)
        bad = sum(r.metrics.get("violations", 0) for r in mine)
        parts.append(f"{transport}: failover p50 {_pct(served, 50)} / p99 {_pct(served, 99)} "
                     f"over {len(served)} leader faults (new leader named p50 "
                     f"{_pct(named, 50)} / p99 {_pct(named, 99)}); {runs} runs, {lost} "
                     f"acknowledged writes lost, {bad} linearizability violations")
    return " | ".join(parts) if parts else "no failover_timeline records"


FIGURE = Figure(
    name=NAME,
    title="Throughput through leader faults, and failover times",
    claim="clients barely notice a replica failure: failover p99 <= 50 ms on shm (goal)",
    experiment=NAME,
    render=render,
    measured=measured,
)
