"""Result records: round trip, append-only store, DataFrame loader."""

from __future__ import annotations

import json

import pytest

from analysis.records import ResultRecord
from analysis.store import load_records, publish, records_dataframe, save_record


def make_record() -> ResultRecord:
    record = ResultRecord(
        "latency", infra="apus", transport="shm", durability="memory", config={"replicas": 3}
    )
    record.add_latencies_ns("latency", [1_000] * 98 + [50_000, 90_000])
    record.throughput = 12_345.0
    record.metrics["lost_writes"] = 0
    return record


def test_round_trip_keeps_every_field_and_the_histogram(tmp_path):
    record = make_record()
    path = save_record(record, tmp_path)
    loaded = ResultRecord.from_json(path.read_text())
    assert loaded == record
    assert loaded.histogram("latency").get_total_count() == 100
    assert loaded.percentile_us("latency", 50) == pytest.approx(1.0, rel=1e-3)
    assert loaded.percentile_us("latency", 99.9) == pytest.approx(90.0, rel=1e-2)
    assert loaded.commit and loaded.machine["cores"] >= 1


def test_store_is_append_only(tmp_path):
    first = save_record(make_record(), tmp_path)
    second = save_record(make_record(), tmp_path)
    assert first != second
    assert len(load_records([tmp_path])) == 2


def test_unknown_fields_are_rejected():
    data = json.loads(make_record().to_json())
    data["surprise"] = 1
    with pytest.raises(ValueError, match="surprise"):
        ResultRecord.from_dict(data)


def test_dataframe_has_percentiles_config_and_metrics(tmp_path):
    save_record(make_record(), tmp_path)
    frame = records_dataframe(load_records([tmp_path]))
    row = frame.iloc[0]
    assert row["config.replicas"] == 3
    assert row["metrics.lost_writes"] == 0
    assert row["latency_p50_us"] == pytest.approx(1.0, rel=1e-3)
    assert row["latency_count"] == 100


def test_publish_copies_into_the_figure_data_dir(tmp_path):
    path = save_record(make_record(), tmp_path / "results")
    [published] = publish([path], tmp_path / "data")
    assert published.read_text() == path.read_text()
    assert len(load_records([tmp_path / "data"])) == 1
