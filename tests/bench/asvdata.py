"""Hand-made asv result documents (format version 2), as `asv run --record-samples` writes."""

from __future__ import annotations

from typing import Any

COLUMNS = [
    "result", "params", "version", "started_at", "duration", "stats_ci_99_a",
    "stats_ci_99_b", "stats_q_25", "stats_q_75", "stats_number", "stats_repeat",
    "samples", "profile",
]  # fmt: skip


def time_row(samples: list[float]) -> list[Any]:
    ordered = sorted(samples)
    median = ordered[len(ordered) // 2]
    return [[median], [], "v1", 0, 1.0, [median], [median], [median], [median], [1],
            [len(samples)], [samples], None]  # fmt: skip


def track_row(value: float | None) -> list[Any]:
    """Track rows stop after `duration`, as asv writes them (no stats, no samples)."""
    return [[value], [], "v1", 0, 1.0]


def result_doc(commit: str, rows: dict[str, list[Any]], date: int = 1) -> dict[str, Any]:
    return {
        "commit_hash": commit,
        "env_name": "existing-py_venv_bin_python",
        "date": date,
        "params": {"machine": "box"},
        "python": "/venv/bin/python",
        "requirements": {},
        "env_vars": {},
        "result_columns": COLUMNS,
        "results": rows,
        "durations": {},
        "version": 2,
    }


BENCHMARKS = {
    "bench_pollloop.PingPongThreads.time_round_trips": {"type": "time", "unit": "seconds"},
    "bench_apus.ApusConsensus.track_p50": {"type": "track", "unit": "µs"},
    "bench_apus.ApusConsensus.track_throughput": {"type": "track", "unit": "ops/s"},
    "bench_x.time_param": {"type": "time", "unit": "seconds"},
    "version": 2,
}
