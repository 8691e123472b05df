"""The result record: one JSON document per run, shared by every experiment.

Fields (DESIGN.md, "Result records"): commit, dirty flag, machine, experiment, infra, app,
transport, durability, the full config, named HdrHistograms in nanoseconds, throughput,
and a free `metrics` dict. Histograms are stored in HdrHistogram's standard compressed
base64 encoding, so any HdrHistogram implementation can read them.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

from hdrh.histogram import HdrHistogram

from analysis.machine import commit_info, machine_info

SCHEMA_VERSION = 1
# 1 ns .. 1 hour, 3 significant digits: enough for consensus latencies and failover times.
HIST_LOWEST_NS = 1
HIST_HIGHEST_NS = 3_600 * 1_000_000_000
HIST_DIGITS = 3


def new_histogram() -> HdrHistogram:
    """An empty histogram with the project-wide range (values in nanoseconds)."""
    return HdrHistogram(HIST_LOWEST_NS, HIST_HIGHEST_NS, HIST_DIGITS)


def _decode(encoded: str) -> HdrHistogram:
    hist = new_histogram()
    hist.decode_and_add(encoded)
    return hist


@dataclass
class ResultRecord:
    """One run of one experiment. Build it, add histograms and metrics, then save it."""

    experiment: str
    infra: str = "none"
    app: str | None = None
    transport: str | None = None
    durability: str | None = None
    config: dict[str, Any] = field(default_factory=dict)
    histograms: dict[str, str] = field(default_factory=dict)
    throughput: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    commit: str = ""
    dirty: bool = False
    machine: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    record_id: str = ""
    # Records made by one `invoke reproduce` (or campaign) share a run group, so figures
    # can show one coherent run; taken from $GAIA_RUN_GROUP when set.
    run_group: str = ""
    schema: int = SCHEMA_VERSION

    def __post_init__(self) -> None:
        if not self.commit:
            self.commit, self.dirty = commit_info()
        if not self.machine:
            self.machine = dict(machine_info())
        if not self.created:
            self.created = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        if not self.record_id:
            self.record_id = uuid.uuid4().hex
        if not self.run_group:
            self.run_group = os.environ.get("GAIA_RUN_GROUP", "")

    # -- histograms -------------------------------------------------------------------
    def add_histogram(self, name: str, hist: HdrHistogram) -> None:
        """Store a histogram of nanosecond values under `name` (e.g. 'latency', 'READ')."""
        encoded = hist.encode()
        self.histograms[name] = encoded.decode() if isinstance(encoded, bytes) else encoded

    def add_latencies_ns(self, name: str, values_ns: Any) -> HdrHistogram:
        """Record an iterable of nanosecond latencies as a histogram; returns it."""
        hist = new_histogram()
        for value in values_ns:
            hist.record_value(max(HIST_LOWEST_NS, min(int(value), HIST_HIGHEST_NS)))
        self.add_histogram(name, hist)
        return hist

    def histogram(self, name: str) -> HdrHistogram:
        return _decode(self.histograms[name])

    def percentile_us(self, name: str, pct: float) -> float:
        """A percentile of histogram `name`, in microseconds."""
        return self.histogram(name).get_value_at_percentile(pct) / 1000.0

    # -- serialisation ----------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, sort_keys=True, default=str)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ResultRecord:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"result record has unknown fields: {sorted(unknown)}")
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> ResultRecord:
        return cls.from_dict(json.loads(text))
