"""APUS consensus latency and throughput, tracked across commits.

Configuration: 3 replicas on the shm transport, memory durability, 64-byte payloads —
`invoke latency`'s APUS benchmark (`gaia.apus.bench.run_apus`) at a smaller size:
- `track_p50` / `track_p99`: one client's propose→commit latency, in µs.
- `track_throughput`: commits per second with that benchmark's concurrent proposers
  (ops/s; higher is better — the comparison reads the "/s" unit that way).

The group is started and measured once per asv run (`setup_cache`, ~30 s here). On a
commit without `gaia.apus.bench` (before the APUS runtime landed) `setup` raises
NotImplementedError, which asv records as skipped (not failed), and `invoke bench.compare`
reports "skipped". A commit where it exists but fails is "failed" (and a regression).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

CONFIG = {
    "replicas": 3,
    "transport": "shm",
    "durability": "memory",
    "payload": 64,
    "ops": 5_000,  # one-client proposals measured
    "warmup": 1_000,
    "seconds": 2.0,  # throughput run
    "floor_rounds": 1_000,  # the floor is tracked by bench_pollloop.PingPongFloor
}


def apus_benchmark() -> tuple[Any, Callable[[Any], list[Any]]] | None:
    """(LatencyParams, run_apus) of this commit, or None where APUS has no benchmark."""
    try:
        from gaia.apus.bench import LatencyParams, run_apus
    except ImportError:
        return None
    return LatencyParams, run_apus


def measure() -> dict[str, float]:
    """p50/p99 (µs) and throughput (ops/s) of one run; {} where APUS cannot run."""
    api = apus_benchmark()
    if api is None:
        return {}
    params, run_apus = api
    [record] = run_apus(params(**CONFIG))
    return {
        "p50_us": float(record.metrics["p50_us"]),
        "p99_us": float(record.metrics["p99_us"]),
        "ops_s": float(record.metrics["ops_per_s"]),
    }


class ApusConsensus:
    """APUS/shm, 3 replicas, memory durability."""

    timeout = 900

    def setup_cache(self) -> dict[str, float]:
        # {} rather than None: asv passes no argument at all for a None cache.
        return measure()

    def setup(self, measured: dict[str, float] | None = None) -> None:
        if not measured:
            # No APUS benchmark in this commit: skip, not fail.
            raise NotImplementedError("APUS benchmark (gaia.apus.bench) not in this commit")

    def track_p50(self, measured: dict[str, float]) -> float:
        return measured["p50_us"]

    track_p50.unit = "µs"

    def track_p99(self, measured: dict[str, float]) -> float:
        return measured["p99_us"]

    track_p99.unit = "µs"

    def track_throughput(self, measured: dict[str, float]) -> float:
        return measured["ops_s"]

    track_throughput.unit = "ops/s"
