"""The tripod_overhead summary and figure from stored records (no deployment): the newest
complete run is chosen, ratios come out right, incomplete runs are ignored."""

from __future__ import annotations

from analysis.records import ResultRecord
from gaia.experiments.tripod_overhead import (
    DEPLOYMENTS,
    EXPERIMENT_NAME,
    FAULTS,
    describe,
    summary,
)
from paper_figures.tripod_overhead import FIGURE

TPUT = {"plain": 10_000.0, "tripod-r1": 9_900.0, "tripod-r3": 9_600.0}
P50_US = {"plain": 100, "tripod-r1": 101, "tripod-r3": 104}


def run_records(run_id: str, created: str, faults: tuple[str, ...] = FAULTS) -> list:
    out = []
    for d in DEPLOYMENTS:
        rec = ResultRecord(EXPERIMENT_NAME, created=created, throughput=TPUT[d],
                           config={"part": "overhead", "deployment": d, "run_id": run_id,
                                   "cores": 2})
        rec.add_latencies_ns("latency", [P50_US[d] * 1000] * 99 + [P50_US[d] * 5000])
        out.append(rec)
    metrics = {
        "host-kill-r3": {"downtime_s": 0.4, "lost": 0, "acknowledged": 300},
        "host-kill-r1": {"downtime_s": 6.0, "lost": 150, "acknowledged": 300},
        "controller-kill": {"task_downtime_s": 0.0, "lost": 0, "acknowledged": 300,
                            "new_leader_by_s": 0.8, "scheduled_by_s": 1.5},
    }
    for f in faults:
        rec = ResultRecord(EXPERIMENT_NAME, created=created,
                           config={"part": "fault", "fault": f, "run_id": run_id})
        rec.metrics.update(metrics[f])
        out.append(rec)
    return out


def test_summary_takes_the_newest_complete_run_and_computes_overheads(tmp_path):
    old = run_records("old", "2026-01-01T00:00:00")
    partial = run_records("partial", "2026-12-01T00:00:00", faults=FAULTS[:2])
    new = run_records("new", "2026-06-01T00:00:00")
    s = summary(old + partial + new)
    assert s is not None and s.run_id == "new"
    lost_tput, added_p50 = s.overhead("tripod-r3")
    assert abs(lost_tput - 0.04) < 1e-9
    assert abs(added_p50 - 0.04) < 0.01  # histogram precision: 3 significant digits
    assert s.faults["host-kill-r1"]["lost"] == 150
    text = describe(s)
    assert "lost 0/300" in text and "lost 150/300" in text
    paths = FIGURE.render(old + partial + new, tmp_path)
    assert {p.suffix for p in paths} == {".png", ".pdf"} and all(p.stat().st_size for p in paths)


def test_no_complete_run_renders_nothing(tmp_path):
    partial = run_records("partial", "2026-12-01T00:00:00", faults=FAULTS[:1])
    assert summary(partial) is None
    assert FIGURE.render(partial, tmp_path) == []
    assert "no complete" in FIGURE.measured(partial)
