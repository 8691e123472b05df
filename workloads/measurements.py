"""Per-client measurements, as YCSB's Measurements/OneMeasurementHdrHistogram keep them.

Every database call is measured twice (site.ycsb.DBWrapper): from its actual start, under
the operation's name (READ, UPDATE, ...), and from its *intended* start, under
`Intended-<name>`. In an open loop (a `target` rate) the intended start is the slot the
throttle scheduled, so time a request spent waiting behind a slow one counts: the
coordinated-omission-corrected series (YCSB's measurement.interval=intended/both). In a
closed loop both start times coincide. A call that did not return OK is measured under
`<name>-FAILED` (or `<name>-<STATUS>` with reportlatencyforeacherror or
latencytrackederrors), and every call's status is counted under the plain name.

Latencies are kept in nanoseconds (YCSB truncates to whole microseconds first). Values
are buffered and added to HdrHistograms in bulk: each value is rounded down to the first
value of its HdrHistogram bucket (3 significant digits) and equal values are added with
one count, which gives exactly the histogram per-value recording would give.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np
from hdrh.histogram import HdrHistogram

from analysis.records import HIST_HIGHEST_NS, HIST_LOWEST_NS, new_histogram

INTENDED_PREFIX = "Intended-"
FLUSH_AT = 1 << 16
# HdrHistogram with 3 significant digits: 2048 sub-buckets, so values below 2^11 are exact
# and a value with bit length b > 11 is kept to its top 11 bits.
_SUB_BUCKET_BITS = 11


@dataclass(frozen=True)
class Status:
    """site.ycsb.Status: a name; OK and BATCHED_OK count as success."""

    name: str
    description: str = ""

    @property
    def ok(self) -> bool:
        return self.name in ("OK", "BATCHED_OK")


OK = Status("OK", "The operation completed successfully.")
ERROR = Status("ERROR", "The operation failed.")
NOT_FOUND = Status("NOT_FOUND", "The requested record was not found.")
NOT_IMPLEMENTED = Status(
    "NOT_IMPLEMENTED", "The operation is not implemented for the current binding."
)
UNEXPECTED_STATE = Status(
    "UNEXPECTED_STATE", "The operation reported success, but the result was not as expected."
)
BAD_REQUEST = Status("BAD_REQUEST", "The request was not valid.")
SERVICE_UNAVAILABLE = Status(
    "SERVICE_UNAVAILABLE", "Dependant service for the current binding is not available."
)
BATCHED_OK = Status("BATCHED_OK", "The operation has been batched by the binding.")


def bucket_floor(values: np.ndarray) -> np.ndarray:
    """Round each value down to the lowest value of its HdrHistogram bucket (3 digits)."""
    v = np.clip(values.astype(np.int64), HIST_LOWEST_NS, HIST_HIGHEST_NS)
    # frexp's exponent is the bit length; exact, as every value is below 2^53.
    _, bits = np.frexp(v.astype(np.float64))
    shift = np.maximum(bits.astype(np.int64) - _SUB_BUCKET_BITS, 0)
    return (v >> shift) << shift


def add_values(hist: HdrHistogram, values: np.ndarray) -> None:
    """Record many nanosecond values into `hist` with one call per distinct bucket."""
    if len(values) == 0:
        return
    uniq, counts = np.unique(bucket_floor(values), return_counts=True)
    for value, count in zip(uniq.tolist(), counts.tolist(), strict=True):
        hist.record_value(value, count)


@dataclass(frozen=True)
class Summary:
    """What YCSB reports of one histogram (ns), computed as HdrHistogram computes it."""

    count: int
    mean: float  # of each bucket's middle value, as getMean()
    min: int  # lowest value of the first bucket used
    max: int  # highest value of the last bucket used
    percentiles: dict[float, int]  # highest value of the bucket reaching the percentile


_LAYOUTS: dict[tuple[int, int, int], tuple[np.ndarray, np.ndarray]] = {}


def _layout(hist: HdrHistogram) -> tuple[np.ndarray, np.ndarray]:
    """(lowest value, bucket width) of every counts index (HdrHistogram's valueFromIndex)."""
    key = (hist.counts_len, hist.sub_bucket_half_count_magnitude, hist.unit_magnitude)
    if key not in _LAYOUTS:
        index = np.arange(hist.counts_len, dtype=np.int64)
        bucket = (index >> hist.sub_bucket_half_count_magnitude) - 1
        sub = (index & (hist.sub_bucket_half_count - 1)) + hist.sub_bucket_half_count
        first = bucket < 0
        sub[first] -= hist.sub_bucket_half_count
        bucket[first] = 0
        _LAYOUTS[key] = (
            sub << (bucket + hist.unit_magnitude),
            np.left_shift(1, bucket + hist.unit_magnitude),
        )
    return _LAYOUTS[key]


def summarize(hist: HdrHistogram, percentiles: list[float]) -> Summary:
    """Count, mean, min, max and percentiles with numpy over the counts array (hdrh's
    own getters walk the buckets in Python: ~0.5 s per histogram)."""
    counts = np.ctypeslib.as_array(hist.counts).astype(np.int64)
    total = int(counts.sum())
    if total == 0:
        return Summary(0, 0.0, 0, 0, {p: 0 for p in percentiles})
    low, width = _layout(hist)
    used = np.flatnonzero(counts)
    mean = float(np.sum(counts[used] * (low[used] + (width[used] >> 1)))) / total
    cumulative = np.cumsum(counts)
    values = {}
    for p in percentiles:
        target = max(int(min(p, 100.0) * total / 100 + 0.5), 1)
        i = int(np.searchsorted(cumulative, target))
        values[p] = int(low[i] + width[i] - 1)
    first, last = used[0], used[-1]
    return Summary(total, mean, int(low[first]), int(low[last] + width[last] - 1), values)


@dataclass
class Measurements:
    """One client's latencies (per measurement name) and status counts (per operation)."""

    report_each_error: bool = False
    tracked_errors: set[str] = field(default_factory=set)
    histograms: dict[str, HdrHistogram] = field(default_factory=dict)
    statuses: dict[str, Counter] = field(default_factory=dict)
    _pending: dict[str, list[int]] = field(default_factory=dict)

    def measure(self, name: str, latency_ns: int) -> None:
        pending = self._pending.get(name)
        if pending is None:
            pending = self._pending[name] = []
            self.histograms.setdefault(name, new_histogram())
        pending.append(latency_ns)
        if len(pending) >= FLUSH_AT:
            self._flush(name)

    def measured_name(self, op: str, status: Status) -> str:
        """DBWrapper.measure: the name a call's latency is recorded under."""
        if status.ok:
            return op
        if self.report_each_error or status.name in self.tracked_errors:
            return f"{op}-{status.name}"
        return f"{op}-FAILED"

    def record(
        self,
        op: str,
        status: Status,
        intended_ns: int,
        start_ns: int,
        end_ns: int,
        count_status: bool = True,
    ) -> None:
        """Measure one call (op latency and intended latency) and count its status."""
        name = self.measured_name(op, status)
        self.measure(name, end_ns - start_ns)
        self.measure(INTENDED_PREFIX + name, end_ns - intended_ns)
        if count_status:
            self.report_status(op, status)

    def report_status(self, op: str, status: Status) -> None:
        self.statuses.setdefault(op, Counter())[status.name] += 1

    def _flush(self, name: str) -> None:
        pending = self._pending.get(name)
        if pending:
            add_values(self.histograms[name], np.asarray(pending, dtype=np.int64))
            pending.clear()

    def flush(self) -> None:
        for name in list(self._pending):
            self._flush(name)

    def merge(self, other: Measurements) -> None:
        other.flush()
        self.flush()
        for name, hist in other.histograms.items():
            self.histograms.setdefault(name, new_histogram()).add(hist)
        for op, counts in other.statuses.items():
            self.statuses.setdefault(op, Counter()).update(counts)

    # -- transport between processes ---------------------------------------------------
    def to_wire(self) -> dict:
        self.flush()
        encoded = {}
        for name, hist in self.histograms.items():
            data = hist.encode()
            encoded[name] = data.decode() if isinstance(data, bytes) else data
        return {"histograms": encoded, "statuses": {k: dict(v) for k, v in self.statuses.items()}}

    @classmethod
    def from_wire(cls, data: dict, **kwargs) -> Measurements:
        m = cls(**kwargs)
        for name, encoded in data["histograms"].items():
            hist = new_histogram()
            hist.decode_and_add(encoded)
            m.histograms[name] = hist
        for op, counts in data["statuses"].items():
            m.statuses[op] = Counter(counts)
        return m
