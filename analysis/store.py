"""The append-only local store of result records, and loading them as a DataFrame.

`results/` (git-ignored) receives every run's record as `results/<experiment>/<time>-<id>.json`.
Records behind published figures are copied into `paper_figures/data/` (committed) so
`invoke figures` works on a fresh clone.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from analysis.records import ResultRecord
from gaia.paths import PUBLISHED_DATA_DIR, RESULTS_DIR

DEFAULT_PERCENTILES = (50.0, 99.0, 99.9)


def save_record(record: ResultRecord, root: Path | None = None) -> Path:
    """Write `record` as a new file (never overwriting one) and return its path."""
    root = root or RESULTS_DIR
    directory = root / record.experiment
    directory.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%S")
    path = directory / f"{stamp}-{record.record_id[:12]}.json"
    with open(path, "x") as handle:  # "x": append-only, fail rather than overwrite
        handle.write(record.to_json())
    return path


def publish(paths: Iterable[Path], dest: Path | None = None) -> list[Path]:
    """Copy records into the committed figure data directory."""
    dest = dest or PUBLISHED_DATA_DIR
    out = []
    for path in paths:
        target = dest / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target)
        out.append(target)
    return out


def load_records(
    roots: Iterable[Path] | None = None, experiment: str | None = None
) -> list[ResultRecord]:
    """Every record under the given roots (default: results/ then paper_figures/data/)."""
    roots = list(roots) if roots is not None else [RESULTS_DIR, PUBLISHED_DATA_DIR]
    seen: set[str] = set()
    records = []
    for root in roots:
        base = root / experiment if experiment else root
        if not base.exists():
            continue
        for path in sorted(base.rglob("*.json")):
            try:
                record = ResultRecord.from_json(path.read_text())
            except (ValueError, TypeError):
                continue  # not a result record (e.g. a stray JSON file)
            if record.record_id not in seen:
                seen.add(record.record_id)
                records.append(record)
    return records


def records_dataframe(
    records: Iterable[ResultRecord], percentiles: Iterable[float] = DEFAULT_PERCENTILES
) -> pd.DataFrame:
    """One row per record: provenance, config and metrics flattened, and for each histogram
    `<name>_p<q>_us` columns plus `<name>_mean_us` and `<name>_count`."""
    rows = []
    for record in records:
        row: dict[str, object] = {
            "record_id": record.record_id,
            "experiment": record.experiment,
            "infra": record.infra,
            "app": record.app,
            "transport": record.transport,
            "durability": record.durability,
            "throughput": record.throughput,
            "commit": record.commit,
            "dirty": record.dirty,
            "created": record.created,
            "cores": record.machine.get("cores"),
        }
        row.update({f"config.{k}": v for k, v in record.config.items()})
        row.update({f"metrics.{k}": v for k, v in record.metrics.items()})
        for name in record.histograms:
            hist = record.histogram(name)
            row[f"{name}_count"] = hist.get_total_count()
            row[f"{name}_mean_us"] = hist.get_mean_value() / 1000.0
            for pct in percentiles:
                label = f"{pct:g}".replace(".", "_")
                row[f"{name}_p{label}_us"] = hist.get_value_at_percentile(pct) / 1000.0
        rows.append(row)
    return pd.DataFrame(rows)
