"""Benchmark values across commits, in commit order, for the latency-history plot.

asv keeps one result file per (commit, environment); here each commit gets one point per
benchmark (its newest run), placed by its position in the git history — commit dates
lie when history is rebased, the topological order does not.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from gaia.bench.asvresults import RunResults

DEFAULT_SELECTION = r"track_p50|track_p99"


@dataclass(frozen=True)
class HistoryPoint:
    commit: str
    position: int  # 0 = oldest commit with results
    benchmark: str
    value: float
    unit: str

    @property
    def label(self) -> str:
        return self.commit[:8]


def history_points(
    runs: Sequence[RunResults], commit_order: Sequence[str], selection: str = DEFAULT_SELECTION
) -> list[HistoryPoint]:
    """Points of every selected benchmark with a value. `commit_order`: shas oldest first;
    commits not in it (other branches) follow, ordered by the date of their run."""
    newest: dict[str, RunResults] = {}
    for run in runs:
        if run.commit not in newest or run.date_ms > newest[run.commit].date_ms:
            newest[run.commit] = run
    rank = {sha: i for i, sha in enumerate(commit_order)}
    commits = sorted(newest, key=lambda c: (c not in rank, rank.get(c, 0), newest[c].date_ms))
    pattern = re.compile(selection)
    points = []
    for position, commit in enumerate(commits):
        for name, m in sorted(newest[commit].measurements.items()):
            if m.value is not None and pattern.search(name):
                points.append(HistoryPoint(commit, position, name, m.value, m.unit))
    return points
