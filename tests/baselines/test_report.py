"""The latency report and both figures, from result records alone."""

from __future__ import annotations

import numpy as np
import pytest

from gaia.baselines.measure import ProtocolResult
from gaia.errors import ConfigError
from gaia.experiments import consensus_latency as experiment
from paper_figures import fig3_consensus_latency as fig3
from paper_figures import kernel_share


def result(protocol: str, replicas: int, p50_us: float, transport: str = "shm",
           system: float = 1.0) -> ProtocolResult:
    samples = np.full(1000, int(p50_us * 1000), dtype=np.int64)
    samples[-5:] *= 3  # a tail
    return ProtocolResult(protocol, replicas, transport=transport, latencies_ns=samples,
                          throughput=1e6 / p50_us, user_s=1.0, system_s=system)


def sample_results() -> list[ProtocolResult]:
    return [result("apus", 3, 4.0), result("apus", 3, 40.0, transport="tcp"),
            result("etcd", 3, 400.0, "tcp", 3.0), result("dare", 3, 2.0),
            result("apus", 5, 5.0), result("zookeeper", 5, 1000.0, "tcp"),
            ProtocolResult("pysyncobj", 5, skipped="pysyncobj is not installed")]


def test_ratios_at_each_replica_count_and_what_could_not_run():
    text = experiment.report(sample_results())
    assert "3 replicas: apus/shm p50 4.00 µs; peer/apus/shm ratio: etcd 100.0x, dare 0.5x" in text
    assert "3 replicas: apus/tcp p50 40.00 µs; peer/apus/tcp ratio: etcd 10.0x" in text
    assert "5 replicas: apus/shm p50 5.00 µs; peer/apus/shm ratio: zookeeper 200.0x" in text
    assert "pysyncobj x5: pysyncobj is not installed" in text
    assert "time-share the CPU" in text  # 5 replicas > 2 CPUs here


def test_an_unknown_protocol_is_a_clear_error():
    with pytest.raises(ConfigError, match="unknown protocol"):
        experiment.sweep(["paxos-made-moderately-complex"], [3])


def test_figures_render_from_records_and_state_the_ratios(tmp_path):
    records = [r.to_record() for r in sample_results()]
    newer = result("etcd", 3, 800.0, "tcp").to_record()
    newer.created = "9999-01-01T00:00:00"  # the newest record of a point wins
    records.append(newer)
    frame = fig3.consensus_frame(records)
    assert set(frame["protocol"]) == {"apus", "apus/tcp", "etcd", "dare", "zookeeper"}
    # histograms keep 3 significant digits
    assert frame.set_index(["protocol", "replicas"]).loc[("etcd", 3), "p50_us"] == \
        pytest.approx(800.0, rel=1e-3)
    assert fig3.ratios(frame)[3] == pytest.approx({"etcd": 200.0, "dare": 0.5}, rel=1e-3)
    text = fig3.FIGURE.measured(records)
    assert "3 replicas: etcd 200.0x, dare 0.5x" in text
    assert "5 replicas: zookeeper 200." in text
    for figure in (fig3.FIGURE, kernel_share.FIGURE):
        paths = figure.render(records, tmp_path)
        assert {p.suffix for p in paths} == {".png", ".pdf"}
        assert all(p.stat().st_size > 1000 for p in paths)
    assert "etcd (3: 50%)" in kernel_share.FIGURE.measured(records)


def test_no_records_render_nothing(tmp_path):
    assert fig3.FIGURE.render([], tmp_path) == [] and kernel_share.FIGURE.render([], tmp_path) == []
    assert fig3.FIGURE.measured([]) == "no consensus_latency records"


def test_without_apus_the_report_compares_against_dare_and_says_so():
    results = [r for r in sample_results() if r.protocol != "apus"]
    text = experiment.report(results)
    assert "APUS did not run" in text
    assert "3 replicas: dare/shm p50 2.00 µs; peer/dare/shm ratio: etcd 200.0x" in text
