"""Parsing YCSB's text report (ours, or the Java YCSB's) into a result record.

Reads every `[NAME], Metric, value` line and ignores everything else (the command line
echo, status lines, `[READ: Count=..., Max=...]` interval summaries, log lines). Values
may be longs, doubles ("146.5", "1000000.0" as older YCSB versions print counts), "NaN"
or "Infinity". Per measurement it keeps Operations, AverageLatency(us), MinLatency(us),
MaxLatency(us), every `<p>PercentileLatency(us)` and the `Return=<STATUS>` counts; JVM
figures ([TOTAL_GC*], [MAX_MEM_USED], ...) go to `other`. When the report carries the
per-value lines of measurement.histogram.verbose ([READ], <us>, <count>), the latency
histogram is rebuilt from them (microsecond resolution, stored in ns); otherwise the
record holds the summary figures only: YCSB's text does not contain the histogram.
Older YCSB versions report latencies in ms (`AverageLatency(ms)`); those are kept under
their own names, never silently rescaled.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any

from analysis.records import ResultRecord, new_histogram

LINE = re.compile(r"^\s*\[([^\]]+)\],\s*([^,]+?)\s*,\s*(\S+)\s*$")
JVM_PREFIXES = (
    "TOTAL_GC",
    "MAX_MEM",
    "MIN_MEM",
    "MAX_THREADS",
    "MIN_THREADS",
    "MAX_SYS",
    "MIN_SYS",
)


def _number(text: str) -> float | int:
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if text in ("NaN", "Infinity", "-Infinity"):
        return float(text.replace("Infinity", "inf"))
    value = float(text)
    return int(value) if value.is_integer() and "E" not in text.upper() else value


@dataclass
class YcsbReport:
    runtime_ms: float | None = None
    throughput: float | None = None
    measurements: dict[str, dict[str, Any]] = field(default_factory=dict)
    per_value_us: dict[str, dict[int, int]] = field(default_factory=dict)
    other: dict[str, dict[str, float]] = field(default_factory=dict)

    def operations(self, name: str) -> int:
        return int(self.measurements.get(name, {}).get("Operations", 0))


def parse_text(text: str) -> YcsbReport:
    report = YcsbReport()
    for line in text.splitlines():
        match = LINE.match(line)
        if not match:
            continue
        name, metric, raw = match.groups()
        try:
            value = _number(raw)
        except ValueError:
            continue
        if name == "OVERALL":
            if metric == "RunTime(ms)":
                report.runtime_ms = value
            elif metric == "Throughput(ops/sec)":
                report.throughput = float(value)
            else:
                report.other.setdefault(name, {})[metric] = value
        elif name.startswith(JVM_PREFIXES):
            report.other.setdefault(name, {})[metric] = value
        elif metric.startswith("Return="):
            entry = report.measurements.setdefault(name, {})
            entry.setdefault("Return", {})[metric[len("Return=") :]] = int(value)
        elif re.fullmatch(r"\d+", metric):
            bucket = report.per_value_us.setdefault(name, {})
            bucket[int(metric)] = bucket.get(int(metric), 0) + int(value)
        else:
            report.measurements.setdefault(name, {})[metric] = value
    return report


def to_record(
    report: YcsbReport,
    *,
    app: str | None,
    infra: str = "none",
    config: dict[str, Any] | None = None,
    source: str = "ycsb-text",
) -> ResultRecord:
    """A ResultRecord from a parsed report (the external YCSB's, or a stored text)."""
    record = ResultRecord(experiment="ycsb", infra=infra, app=app, config=dict(config or {}))
    record.throughput = report.throughput
    record.metrics["run"] = {
        "runtime_ms": report.runtime_ms,
        "throughput": report.throughput,
        "summary": report.measurements,
        # Client.exportMeasurements: throughput = 1000 * operations / RunTime(ms)
        "operations": (
            round(report.throughput * report.runtime_ms / 1000.0)
            if report.throughput is not None
            and report.runtime_ms is not None
            and math.isfinite(report.throughput)
            else None
        ),
    }
    record.metrics["source"] = source
    if report.other:
        record.metrics["jvm"] = report.other
    for name, values in report.per_value_us.items():
        hist = new_histogram()
        for us, count in values.items():
            if count > 0:
                hist.record_value(max(1, us * 1000), count)
        record.add_histogram(name, hist)
    return record
