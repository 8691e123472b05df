"""YCSB's text report: our writer, the parser, on our output and on YCSB's own format."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.records import ResultRecord, new_histogram
from workloads import properties as P
from workloads.measurements import (
    ERROR,
    NOT_IMPLEMENTED,
    OK,
    Measurements,
    add_values,
    bucket_floor,
    summarize,
)
from workloads.parse import parse_text, to_record
from workloads.progress import StatusLine
from workloads.report import build_record, export_text, java_double, ordinal
from workloads.runner import PhaseResult

# A run report in the format YCSB 0.17 documents and prints (TextMeasurementsExporter with
# HdrHistogram measurements): status lines and JVM figures around the measurement lines,
# counts printed as longs. The numbers are made up for this test.
YCSB_SAMPLE = """\
Command line: -db site.ycsb.db.RedisClient -s -P workloads/workloada -t
YCSB Client 0.17.0
Loading workload...
Starting test.
2024-03-01 10:00:00:000 0 sec: 0 operations; est completion in 0 second
2024-03-01 10:00:01:512 1 sec: 1000 operations; 661.38 current ops/sec; [READ: Count=497, Max=5503, Min=71, Avg=221.3, 90=333, 99=1021, 99.9=5503, 99.99=5503] [UPDATE: Count=503, Max=2811, Min=84, Avg=237.86, 90=350, 99=931, 99.9=2811, 99.99=2811]
[OVERALL], RunTime(ms), 1512
[OVERALL], Throughput(ops/sec), 661.3756613756614
[TOTAL_GCS_PS_Scavenge], Count, 1
[TOTAL_GC_TIME_PS_Scavenge], Time(ms), 7
[TOTAL_GC_TIME_%_PS_Scavenge], Time(%), 0.46296296296296297
[TOTAL_GCs], Count, 1
[TOTAL_GC_TIME], Time(ms), 7
[TOTAL_GC_TIME_%], Time(%), 0.46296296296296297
[READ], Operations, 497
[READ], AverageLatency(us), 221.30784708249497
[READ], MinLatency(us), 71
[READ], MaxLatency(us), 5503
[READ], 95thPercentileLatency(us), 471
[READ], 99thPercentileLatency(us), 1021
[READ], Return=OK, 495
[READ], Return=NOT_FOUND, 2
[CLEANUP], Operations, 1
[CLEANUP], AverageLatency(us), 1304.0
[CLEANUP], MinLatency(us), 1304
[CLEANUP], MaxLatency(us), 1304
[CLEANUP], 95thPercentileLatency(us), 1304
[CLEANUP], 99thPercentileLatency(us), 1304
[UPDATE], Operations, 503
[UPDATE], AverageLatency(us), 237.86083499005965
[UPDATE], MinLatency(us), 84
[UPDATE], MaxLatency(us), 2811
[UPDATE], 95thPercentileLatency(us), 498
[UPDATE], 99thPercentileLatency(us), 931
[UPDATE], Return=OK, 503
[READ-FAILED], Operations, 2
[READ-FAILED], AverageLatency(us), 140.5
[READ-FAILED], MinLatency(us), 133
[READ-FAILED], MaxLatency(us), 148
[READ-FAILED], 95thPercentileLatency(us), 148
[READ-FAILED], 99thPercentileLatency(us), 148
"""

# Older YCSB versions print counts as doubles and the verbose per-value lines.
YCSB_VERBOSE = """\
[OVERALL], RunTime(ms), 2000.0
[OVERALL], Throughput(ops/sec), 1.5E7
[INSERT], Operations, 4.0
[INSERT], AverageLatency(us), 12.5
[INSERT], MinLatency(us), 10.0
[INSERT], MaxLatency(us), 20.0
[INSERT], 95thPercentileLatency(us), 20.0
[INSERT], Return=OK, 4
[INSERT], 10, 2.0
[INSERT], 11, 1.0
[INSERT], 20, 1.0
"""


def test_java_double_and_ordinals():
    assert java_double(688.0) == "688.0"
    assert java_double(146.53653444676408) == "146.53653444676408"
    assert java_double(12345678.9) == "1.23456789E7"
    assert java_double(0.0005) == "5.0E-4"
    assert java_double(float("nan")) == "NaN"
    assert [ordinal(p) for p in (50, 95, 99, 1, 2, 3, 11, 12, 13, 21, 99.9)] == [
        "50th",
        "95th",
        "99th",
        "1st",
        "2nd",
        "3rd",
        "11th",
        "12th",
        "13th",
        "21st",
        "99.9",
    ]


@given(st.lists(st.integers(min_value=1, max_value=3_600_000_000_000), min_size=1, max_size=300))
def test_bulk_recording_equals_per_value_recording(values):
    one, bulk = new_histogram(), new_histogram()
    for v in values:
        one.record_value(v)
    add_values(bulk, np.array(values, dtype=np.int64))
    assert one.encode() == bulk.encode()
    assert all(
        one.get_lowest_equivalent_value(v) == int(b)
        for v, b in zip(values, bucket_floor(np.array(values)), strict=True)
    )


def test_parser_reads_ycsbs_documented_format():
    report = parse_text(YCSB_SAMPLE)
    assert report.runtime_ms == 1512 and report.throughput == 661.3756613756614
    assert report.measurements["READ"]["Operations"] == 497
    assert report.measurements["READ"]["AverageLatency(us)"] == 221.30784708249497
    assert report.measurements["READ"]["99thPercentileLatency(us)"] == 1021
    assert report.measurements["READ"]["Return"] == {"OK": 495, "NOT_FOUND": 2}
    assert report.measurements["READ-FAILED"]["MaxLatency(us)"] == 148
    assert report.other["TOTAL_GCs"]["Count"] == 1
    assert "READ: Count=497" not in str(report.measurements)  # status lines are ignored
    record = to_record(report, app="redis", config={"workload": "a"})
    assert record.throughput == 661.3756613756614 and record.experiment == "ycsb"
    assert record.metrics["run"]["operations"] == 1000
    assert ResultRecord.from_json(record.to_json()).metrics == record.metrics


def test_parser_rebuilds_histograms_from_verbose_lines():
    report = parse_text(YCSB_VERBOSE)
    assert report.measurements["INSERT"]["Operations"] == 4
    assert report.throughput == 1.5e7
    record = to_record(report, app="redis")
    hist = record.histogram("INSERT")
    assert hist.get_total_count() == 4
    assert hist.get_value_at_percentile(50) // 1000 == 10  # ns, from whole microseconds
    assert hist.get_max_value() // 1000 == 20


def _phase(m: Measurements, ops: int, runtime_ms: int) -> PhaseResult:
    return PhaseResult(
        phase="run", measurements=m, runtime_ms=runtime_ms, operations=ops, clients=1
    )


def test_our_report_is_ycsbs_format_and_parses_back():
    m = Measurements()
    for i in range(100):
        m.record("READ", OK, 0, 0, (i + 1) * 10_000)  # 10 us .. 1000 us, from intended 0
    m.record("READ", NOT_IMPLEMENTED, 0, 0, 5_000)
    m.record("UPDATE", OK, 0, 1_000, 51_000)
    m.record("CLEANUP", OK, 0, 0, 2_000, count_status=False)
    config = P.validate({"recordcount": "10", "operationcount": "102"})
    text = export_text(_phase(m, 102, 500), config)
    lines = text.splitlines()
    assert lines[0] == "[OVERALL], RunTime(ms), 500"
    assert lines[1] == "[OVERALL], Throughput(ops/sec), 204.0"
    assert "[READ], Operations, 100" in lines
    assert "[READ], MinLatency(us), 10" in lines
    assert "[READ], MaxLatency(us), 1000" in lines
    assert "[READ], 50thPercentileLatency(us), 500" in lines
    assert "[READ], Return=OK, 100" in lines and "[READ], Return=NOT_IMPLEMENTED, 1" in lines
    assert "[READ-FAILED], Operations, 1" in lines
    parsed = parse_text(text)
    # HdrHistogram's mean uses each bucket's middle value (3 significant digits)
    assert abs(parsed.measurements["UPDATE"]["AverageLatency(us)"] - 50.0) < 0.05
    # intended latency counts from the intended start (0), not the actual one (1000 ns)
    assert abs(parsed.measurements["Intended-UPDATE"]["AverageLatency(us)"] - 51.0) < 0.05
    assert not any(line.startswith("[CLEANUP], Return") for line in lines)
    assert parsed.measurements["READ"]["Return"] == {"OK": 100, "NOT_IMPLEMENTED": 1}
    assert parsed.measurements["Intended-READ"]["Operations"] == 100
    record = build_record(
        _phase(m, 102, 500), text, config, app="redis", infra="none", settings={"threads": 1}
    )
    assert record.histogram("READ").get_total_count() == 100
    assert record.histogram("Intended-UPDATE").get_total_count() == 1
    assert record.metrics["run"]["summary"] == parsed.measurements
    assert record.throughput == 204.0


def test_measurement_interval_op_and_intended():
    m = Measurements()
    m.record("READ", OK, 0, 4_000, 5_000)
    m.record("READ", ERROR, 0, 4_000, 9_000)
    op_only = export_text(
        _phase(m, 2, 10), P.validate({"operationcount": "2", "measurement.interval": "op"})
    )
    assert "Intended-" not in op_only and "[READ], AverageLatency(us), 1.0" in op_only
    intended = export_text(
        _phase(m, 2, 10), P.validate({"operationcount": "2", "measurement.interval": "intended"})
    )
    assert "Intended-" not in intended and "[READ], AverageLatency(us), 5.0" in intended
    assert "[READ-FAILED], AverageLatency(us), 9.0" in intended


@settings(max_examples=25, deadline=None)  # hdrh's own getters are slow
@given(
    st.lists(st.integers(min_value=1, max_value=3_600_000_000_000), min_size=1, max_size=200),
    st.lists(st.floats(min_value=0.01, max_value=100.0), min_size=1, max_size=4),
)
def test_numpy_summary_equals_hdrhistograms_own_getters(values, percentiles):
    hist = new_histogram()
    add_values(hist, np.array(values, dtype=np.int64))
    s = summarize(hist, percentiles)
    assert s.count == hist.get_total_count()
    assert s.mean == pytest.approx(hist.get_mean_value(), rel=1e-12)
    assert (s.min, s.max) == (hist.get_min_value(), hist.get_max_value())
    assert all(s.percentiles[p] == hist.get_value_at_percentile(p) for p in percentiles)


def test_status_line_reports_interval_rate_and_latency():
    progress = np.zeros((2, 4), dtype=np.int64)
    line = StatusLine("run", 100, enabled=False)
    progress[:, 0] = [10, 20]  # ops
    progress[:, 1] = [3_000_000, 3_000_000]  # latency sum, ns
    progress[:, 2] = [10, 20]
    text = line.update(progress)
    assert "30/100 operations" in text and "current latency 200.0 us" in text
