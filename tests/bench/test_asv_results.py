"""Reading asv's result files and ordering them into a latency history."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gaia.bench.asvresults import (
    load_history,
    load_run,
    parse_result_doc,
    result_file_for,
)
from gaia.bench.history import history_points
from gaia.errors import GaiaError
from tests.bench.asvdata import BENCHMARKS, result_doc, time_row, track_row

P50 = "bench_apus.ApusConsensus.track_p50"
LOOP = "bench_pollloop.PingPongThreads.time_round_trips"


def test_time_track_failed_and_parameterized_rows():
    param_row = [[0.1, None], [["1", "2"], ["'a'"]], "v", 0, 1.0]
    doc = result_doc(
        "a" * 40,
        {
            LOOP: time_row([0.003, 0.001, 0.002]),
            P50: track_row(4.5),
            "bench_apus.ApusConsensus.track_throughput": track_row(None),
            "bench_x.time_param": param_row,
        },
    )
    found = parse_result_doc(doc, BENCHMARKS)
    assert found[LOOP].value == 0.002 and found[LOOP].samples == (0.003, 0.001, 0.002)
    assert found[LOOP].unit == "seconds"
    assert found[P50].value == 4.5 and found[P50].samples == () and found[P50].unit == "µs"
    assert found["bench_apus.ApusConsensus.track_throughput"].value is None
    assert found["bench_apus.ApusConsensus.track_throughput"].higher_is_better
    assert found["bench_x.time_param(1, 'a')"].value == 0.1
    assert found["bench_x.time_param(2, 'a')"].value is None


def test_nan_means_failed():
    doc = result_doc("a" * 40, {P50: [[float("nan")], [], "v", 0, 1.0]})
    assert parse_result_doc(doc, BENCHMARKS)[P50].value is None


def test_a_file_that_is_not_asv_results_is_refused():
    with pytest.raises(ValueError, match="result_columns"):
        parse_result_doc({"results": {}}, BENCHMARKS)


def _write_run(results: Path, commit: str, date: int, p50: float, env: str = "e") -> Path:
    path = results / "box" / f"{commit[:8]}-{env}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result_doc(commit, {P50: track_row(p50)}, date=date)))
    return path


def test_files_are_found_per_commit_and_loaded_with_units(tmp_path: Path):
    (tmp_path / "benchmarks.json").write_text(json.dumps(BENCHMARKS))
    path = _write_run(tmp_path, "1" * 40, 10, 3.0)
    (tmp_path / "box" / "machine.json").write_text("{}")
    assert result_file_for(tmp_path, "1" * 40, "box") == path
    assert result_file_for(tmp_path, "2" * 40, "box") is None
    run = load_run(path, BENCHMARKS)
    assert (run.commit, run.machine, run.date_ms) == ("1" * 40, "box", 10)
    assert [r.commit for r in load_history(tmp_path)] == ["1" * 40]


def test_a_truncated_result_file_is_a_one_line_error(tmp_path: Path):
    path = tmp_path / "box" / "11111111-e.json"
    path.parent.mkdir()
    path.write_text('{"commit_hash": ')
    with pytest.raises(GaiaError, match="cannot read asv results"):
        load_run(path, BENCHMARKS)


def test_history_follows_git_order_and_keeps_the_newest_run_per_commit(tmp_path: Path):
    old, mid, new, stray = "a" * 40, "b" * 40, "c" * 40, "d" * 40
    _write_run(tmp_path, new, date=1, p50=5.0)  # dated first, newest in history
    _write_run(tmp_path, old, date=3, p50=3.0)
    _write_run(tmp_path, mid, date=2, p50=9.0, env="e1")
    _write_run(tmp_path, mid, date=4, p50=4.0, env="e2")  # rerun: this one counts
    _write_run(tmp_path, stray, date=9, p50=6.0)  # not in the history: goes last
    (tmp_path / "benchmarks.json").write_text(json.dumps(BENCHMARKS))
    points = history_points(load_history(tmp_path), [old, mid, new])
    assert [(p.commit, p.position, p.value) for p in points] == [
        (old, 0, 3.0), (mid, 1, 4.0), (new, 2, 5.0), (stray, 3, 6.0),
    ]  # fmt: skip
    assert points[0].label == "aaaaaaaa" and points[0].unit == "µs"
    assert history_points(load_history(tmp_path), [old], selection="throughput") == []
