"""The overhead experiment's bookkeeping without servers: records of one measured pair
fold into one row per app with the right ratios, an incomplete pair is ignored, and the
figure renders from records alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from analysis.records import ResultRecord
from gaia.experiments.app_overhead import EXPERIMENT_NAME, describe, rows
from paper_figures.app_overhead import FIGURE


def _rec(deployment: str, mode: str, tput: float, latency_us: float, pair: str,
         path: str = "direct") -> ResultRecord:
    rec = ResultRecord(EXPERIMENT_NAME, infra="apus" if deployment == "replicated" else "none",
                       app="redis", throughput=tput,
                       config={"deployment": deployment, "mode": mode, "path": path,
                               "target": 500, "cores": 2, "pair": pair})
    rec.add_latencies_ns("latency", [latency_us * 1000] * 50)
    return rec


def _pair(pair: str = "p1") -> list[ResultRecord]:
    return [_rec("replicated", "saturation", 800, 900, pair),
            _rec("replicated", "fixed", 495, 300, pair),
            _rec("replicated", "fixed", 490, 400, pair, path="front_port"),
            _rec("unreplicated", "saturation", 1000, 500, pair),
            _rec("unreplicated", "fixed", 500, 200, pair)]


def test_a_measured_pair_is_one_row_with_its_ratios():
    incomplete = [r for r in _pair("p0") if r.config["deployment"] == "replicated"]
    (row,) = rows(incomplete + _pair())
    assert row.pair == "p1" and row.target == 500 and row.cores == 2
    assert row.sat_ratio == pytest.approx(0.8)
    assert row.fixed_tput_overhead == pytest.approx(0.01)
    assert row.p50_overhead == pytest.approx(0.5, rel=0.01)
    assert row.front_p50_us == pytest.approx(400, rel=0.01)
    assert "redis" in describe(row) and "2 cores" in describe(row)


def test_the_figure_renders_from_records(tmp_path: Path):
    paths = FIGURE.render(_pair(), tmp_path)
    assert paths and all(p.exists() and p.stat().st_size > 0 for p in paths)
    assert "redis" in FIGURE.measured(_pair())
