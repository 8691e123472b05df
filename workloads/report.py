"""YCSB's text report (TextMeasurementsExporter) and GAIA's result record of a run.

The text is what site.ycsb.Client.exportMeasurements writes, line for line:
    [OVERALL], RunTime(ms), <long>
    [OVERALL], Throughput(ops/sec), <double>      1000 * operations / RunTime(ms)
and per measurement (OneMeasurementHdrHistogram.exportMeasurements):
    [READ], Operations, <long>
    [READ], AverageLatency(us), <double>
    [READ], MinLatency(us), <long>   [READ], MaxLatency(us), <long>
    [READ], 50thPercentileLatency(us), <long>   (hdrhistogram.percentiles, "50,95,99")
    [READ], Return=OK, <int>                      one line per status seen
    [READ], <value_us>, <count>                   measurement.histogram.verbose only
Doubles are printed as Java's Double.toString prints them ("688.0", "1.2345E7", "NaN").
An operation that only failed still gets its (empty) measurement, carrying the Return=
lines, next to `<OP>-FAILED` with the latencies, as YCSB prints e.g. workload E's scans
on memcached. With measurement.interval=op only the plain series is written, with
`intended` only the intended series under the plain names, with `both` (GAIA's default)
the plain series then the `Intended-` ones. JVM lines (TOTAL_GC*) have no Python
counterpart and are omitted; parsers of YCSB output ignore them anyway.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from hdrh.histogram import HdrHistogram

from analysis.records import ResultRecord, new_histogram
from workloads.measurements import INTENDED_PREFIX, Measurements, summarize
from workloads.properties import WorkloadConfig
from workloads.runner import PhaseResult


def java_double(x: float) -> str:
    """Double.toString(x): plain decimal in [1e-3, 1e7), else d.dddE<exp>; shortest digits."""
    if math.isnan(x):
        return "NaN"
    if math.isinf(x):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    if 1e-3 <= abs(x) < 1e7:
        text = repr(float(x))
        return text if "." in text or "e" in text else text + ".0"
    sign, digits, exponent = Decimal(repr(float(x))).as_tuple()
    ds = "".join(map(str, digits)).rstrip("0") or "0"
    exp10 = len(digits) + int(exponent) - 1
    mantissa = ds[0] + "." + (ds[1:] or "0")
    return f"{'-' if sign else ''}{mantissa}E{exp10}"


def ordinal(p: float) -> str:
    """OneMeasurementHdrHistogram.ordinal: 95 -> 95th, 99.9 -> 99.9 (Double.toString)."""
    if p % 1 == 0:
        j = int(p)
        if j % 100 in (11, 12, 13):
            return f"{j}th"
        return f"{j}{['th', 'st', 'nd', 'rd', 'th', 'th', 'th', 'th', 'th', 'th'][j % 10]}"
    return java_double(p)


def _us(value_ns: int) -> int:
    return int(value_ns) // 1000


def histogram_lines(
    name: str, hist: HdrHistogram, percentiles: list[float], verbose: bool
) -> list[str]:
    stats = summarize(hist, percentiles)
    count = stats.count
    lines = [
        f"[{name}], Operations, {count}",
        f"[{name}], AverageLatency(us), {java_double(stats.mean / 1000.0)}",
        f"[{name}], MinLatency(us), {_us(stats.min)}",
        f"[{name}], MaxLatency(us), {_us(stats.max)}",
    ]
    for p in percentiles:
        lines.append(f"[{name}], {ordinal(p)}PercentileLatency(us), {_us(stats.percentiles[p])}")
    if verbose and count:
        per_us: dict[int, int] = {}
        for item in hist.get_recorded_iterator():
            key = _us(item.value_iterated_to)
            per_us[key] = per_us.get(key, 0) + item.count_at_value_iterated_to
        lines += [f"[{name}], {v}, {java_double(float(c))}" for v, c in sorted(per_us.items())]
    return lines


def measurement_names(m: Measurements, interval: str) -> list[tuple[str, str]]:
    """(name printed, histogram name) in print order, per measurement.interval."""
    plain = [n for n in m.histograms if not n.startswith(INTENDED_PREFIX)]
    for op in m.statuses:  # an operation that only failed still gets its measurement
        if op not in plain:
            plain.append(op)
    if interval == "op":
        return [(n, n) for n in plain]
    if interval == "intended":
        return [(n, INTENDED_PREFIX + n) for n in plain]
    intended = [n for n in m.histograms if n.startswith(INTENDED_PREFIX)]
    return [(n, n) for n in plain] + [(n, n) for n in intended]


def export_text(result: PhaseResult, config: WorkloadConfig) -> str:
    """The YCSB text report of one phase."""
    m = result.measurements
    m.flush()
    throughput = (
        1000.0 * result.operations / result.runtime_ms
        if result.runtime_ms
        else (math.inf if result.operations else math.nan)
    )
    lines = [
        f"[OVERALL], RunTime(ms), {result.runtime_ms}",
        f"[OVERALL], Throughput(ops/sec), {java_double(throughput)}",
    ]
    empty = new_histogram()
    for printed, hist_name in measurement_names(m, config.measurement_interval):
        hist = m.histograms.get(hist_name, empty)
        lines += histogram_lines(printed, hist, config.percentiles, config.histogram_verbose)
        status_op = printed if not printed.startswith(INTENDED_PREFIX) else None
        if status_op is not None:
            for status, n in m.statuses.get(status_op, {}).items():
                lines.append(f"[{printed}], Return={status}, {n}")
    return "\n".join(lines) + "\n"


def phase_metrics(result: PhaseResult, text: str) -> dict[str, Any]:
    from workloads.parse import parse_text

    parsed = parse_text(text)
    return {
        "runtime_ms": result.runtime_ms,
        "operations": result.operations,
        "clients": result.clients,
        "throughput": parsed.throughput,
        "summary": parsed.measurements,
        "failover_gaps_s": result.failover_gaps_s,
        "errors": result.errors,
    }


def build_record(
    run: PhaseResult,
    run_text: str,
    config: WorkloadConfig,
    *,
    app: str,
    infra: str,
    settings: dict[str, Any],
    load: PhaseResult | None = None,
    load_text: str = "",
) -> ResultRecord:
    """The result record: run-phase histograms (ns, per measurement name, `Intended-*`
    included), throughput, the full properties plus the runner settings, and the per-phase
    summaries exactly as the text report states them (metrics.run / metrics.load)."""
    record = ResultRecord(
        experiment="ycsb",
        infra=infra,
        app=app,
        config={"properties": dict(config.props), **settings},
    )
    run.measurements.flush()
    for name, hist in run.measurements.histograms.items():
        record.add_histogram(name, hist)
    elapsed_s = max(run.runtime_ms, 1) / 1000.0
    record.throughput = run.operations / elapsed_s
    record.metrics["run"] = phase_metrics(run, run_text)
    if load is not None:
        record.metrics["load"] = phase_metrics(load, load_text)
    record.metrics["failover_gaps_s"] = list(run.failover_gaps_s)
    return record
