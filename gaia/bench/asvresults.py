"""asv's result files as plain values: one `Measurement` per benchmark (and parameter set).

asv writes `<results_dir>/benchmarks.json` (each benchmark's type and unit) and, per
machine, `<results_dir>/<machine>/<commit8>-<env>.json` (format version 2): a
`result_columns` list naming the columns of each row in `results`. Rows of `track_*`
benchmarks stop after `duration` (no samples); `time_*` rows carry raw samples when asv ran
with `--record-samples`. A value of None means the benchmark failed or was skipped
(NotImplementedError in setup).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gaia.errors import GaiaError


@dataclass(frozen=True)
class Measurement:
    """One benchmark's outcome in one run (asv's `result`: the median for `time_*`)."""

    name: str
    value: float | None
    unit: str = "seconds"
    samples: tuple[float, ...] = field(default=())

    @property
    def higher_is_better(self) -> bool:
        """Rates (units like "ops/s", "GiB/s") improve upwards; times and latencies down."""
        return self.unit.strip().endswith("/s")


@dataclass(frozen=True)
class RunResults:
    """All measurements of one asv result file, with the commit and date it belongs to."""

    commit: str
    date_ms: int
    machine: str
    env_name: str
    measurements: dict[str, Measurement]


def _param_names(params: list[list[str]]) -> list[str]:
    """Suffixes for each parameter combination, in asv's order (itertools.product)."""
    if not params:
        return [""]
    return ["(" + ", ".join(combo) + ")" for combo in itertools.product(*params)]


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if number != number else number  # NaN: failed


def parse_result_doc(
    doc: Mapping[str, Any], benchmarks: Mapping[str, Any]
) -> dict[str, Measurement]:
    """Measurements of one result document; `benchmarks` is benchmarks.json (units)."""
    columns = doc.get("result_columns")
    if not isinstance(columns, list) or "result" not in columns:
        raise ValueError("not an asv result file (format version 2): no result_columns")
    found: dict[str, Measurement] = {}
    for name, row in doc.get("results", {}).items():
        cells = dict(zip(columns, row, strict=False))
        info = benchmarks.get(name, {})
        unit = str(info.get("unit", "seconds"))
        values = cells.get("result") or []
        samples = cells.get("samples") or [None] * len(values)
        for suffix, value, sample in zip(
            _param_names(cells.get("params") or []), values, samples, strict=False
        ):
            found[name + suffix] = Measurement(
                name=name + suffix,
                value=_number(value),
                unit=unit,
                samples=tuple(float(s) for s in sample or ()),
            )
    return found


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise GaiaError(
            f"cannot read asv results {path}: {exc}",
            "rerun `invoke bench` (delete the file if it is truncated)",
        ) from None


def load_benchmarks(results_dir: Path) -> dict[str, Any]:
    path = results_dir / "benchmarks.json"
    return _read_json(path) if path.exists() else {}


def load_run(path: Path, benchmarks: Mapping[str, Any]) -> RunResults:
    doc = _read_json(path)
    return RunResults(
        commit=str(doc.get("commit_hash", "")),
        date_ms=int(doc.get("date") or 0),
        machine=path.parent.name,
        env_name=str(doc.get("env_name", "")),
        measurements=parse_result_doc(doc, benchmarks),
    )


def result_files(results_dir: Path, machine: str | None = None) -> list[Path]:
    """Every per-commit result file (not machine.json / benchmarks.json)."""
    pattern = f"{machine}/*.json" if machine else "*/*.json"
    return sorted(p for p in results_dir.glob(pattern) if p.name != "machine.json")


def result_file_for(
    results_dir: Path, commit: str, machine: str, env_name: str | None = None
) -> Path | None:
    """The newest result file of `commit` on `machine` (optionally of one environment)."""
    prefix = f"{commit[:8]}-"
    candidates = [
        p
        for p in result_files(results_dir, machine)
        if p.name.startswith(prefix) and (env_name is None or p.stem == prefix + env_name)
    ]
    return max(candidates, key=lambda p: p.stat().st_mtime, default=None)


def load_history(results_dir: Path, machine: str | None = None) -> list[RunResults]:
    """Every stored run (all commits) of one machine, or of all machines."""
    benchmarks = load_benchmarks(results_dir)
    return [load_run(path, benchmarks) for path in result_files(results_dir, machine)]


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def pool_runs(runs: list[Mapping[str, Measurement]]) -> dict[str, Measurement]:
    """Several interleaved runs (rounds) of one commit as one measurement per benchmark:
    one observation per round (that run's value: asv's median for `time_*`), the value
    their median.

    Why not all raw samples: the samples of one run are taken within seconds and share
    that moment's machine load, so a test on them mistakes a load change between rounds
    for a code change. A benchmark that failed in any round is kept as failed (None): a
    flaky benchmark is a finding.
    """
    pooled: dict[str, Measurement] = {}
    for name in sorted({n for run in runs for n in run}):
        present = [run[name] for run in runs if name in run]
        values = [m.value for m in present]
        if any(v is None for v in values):
            pooled[name] = Measurement(name, None, present[0].unit)
            continue
        observed = tuple(float(v) for v in values if v is not None)
        pooled[name] = Measurement(name, _median(list(observed)), present[0].unit, observed)
    return pooled
