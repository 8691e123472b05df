"""The latency report, the ratios and both figures, from results and records alone."""

from __future__ import annotations

import re

import numpy as np
import pytest

from gaia.baselines.measure import ProtocolResult
from gaia.errors import ConfigError
from gaia.experiments import consensus_latency as experiment
from paper_figures import fig3_consensus_latency as fig3
from paper_figures import kernel_share


def result(protocol: str, replicas: int, p50_us: float, transport: str = "shm",
           system: float = 1.0, at: str = "leader") -> ProtocolResult:
    samples = np.full(1000, int(p50_us * 1000), dtype=np.int64)
    samples[-5:] *= 3  # a tail
    return ProtocolResult(protocol, replicas, transport=transport, latencies_ns=samples,
                          throughput=1e6 / p50_us, user_s=1.0, system_s=system,
                          measured_at=at)


def sample_results() -> list[ProtocolResult]:
    return [result("apus", 3, 2.0), result("apus", 3, 40.0, at="client"),
            result("apus", 3, 50.0, transport="tcp"),
            result("etcd", 3, 4000.0, "tcp", 3.0, at="client"), result("dare", 3, 3.0),
            result("multipaxos", 3, 30.0, "tcp"),
            result("apus", 5, 5.0), result("zookeeper", 5, 1000.0, "tcp", at="client"),
            ProtocolResult("pysyncobj", 5, skipped="pysyncobj is not installed")]


def test_each_peer_is_compared_with_apus_measured_the_same_way():
    table = experiment.ratio_table(experiment.frame_from_results(sample_results()))
    rows = {(r["replicas"], r["apus"], r["measured_at"]): r for _, r in table.iterrows()}
    leader = rows[(3, "apus", "leader")]
    client = rows[(3, "apus", "client")]
    assert leader["apus_p50_us"] == pytest.approx(2.0)
    assert leader["multipaxos"] == pytest.approx(15.0) and leader["multipaxos_same"]
    assert leader["etcd"] == pytest.approx(2000.0) and not leader["etcd_same"]
    assert client["etcd"] == pytest.approx(100.0) and client["etcd_same"]
    assert client["dare"] == pytest.approx(0.075) and not client["dare_same"]
    assert rows[(3, "apus/tcp", "leader")]["multipaxos"] == pytest.approx(0.6)
    assert rows[(5, "apus", "leader")]["zookeeper"] == pytest.approx(200.0)


def test_the_report_prints_ratios_goals_and_what_could_not_run():
    text = experiment.report(sample_results())
    lines = text.splitlines()
    leader_row = next(line for line in lines if "apus (leader)" in line and
                      line.split()[0] == "3")
    assert "1.5x" in leader_row and "15.0x" in leader_row and "2,000.0x*" in leader_row
    client_row = next(line for line in lines if "apus (client)" in line)
    assert "100.0x" in client_row and "100.0x*" not in client_row and "0.1x*" in client_row
    # goals: etcd against the client-observed APUS (both client-side), Multi-Paxos at the
    # leader (both leader-side)
    assert "goal >= 50x vs etcd at 3 replicas (client-side both): 100.0x — met" in text
    assert "goal >= 20x vs multipaxos at 3 replicas (leader-side both): 15.0x — NOT met" in text
    assert "pysyncobj x5: pysyncobj is not installed" in text
    assert "time-share the CPU" in text  # 5 replicas > 2 CPUs here


def test_plans_name_their_points_and_unknown_input_is_a_clear_error():
    points = experiment.QUICK.points()
    assert ("etcd", 3, "shm") in points and ("etcd", 5, "shm") not in points
    assert ("apus", 5, "tcp") in points and ("dare", 5, "shm") in points
    assert ("dare", 3, "tcp") not in points  # only APUS runs once per transport
    with pytest.raises(ConfigError, match="unknown protocol"):
        experiment.sweep(experiment.Plan(("paxos-made-moderately-complex",), (3,)))
    with pytest.raises(ConfigError, match="unknown transport"):
        experiment.check_plan(experiment.Plan(("apus",), (3,), ("rdma-over-pigeons",)))


def test_figures_render_from_records_and_state_the_ratios(tmp_path):
    records = [r.to_record() for r in sample_results()]
    newer = result("etcd", 3, 800.0, "tcp", at="client").to_record()
    newer.created = "9999-01-01T00:00:00"  # the newest record of a point wins
    records.append(newer)
    frame = fig3.consensus_frame(records)
    assert set(zip(frame["protocol"], frame["measured_at"], strict=True)) == {
        ("apus", "leader"), ("apus", "client"), ("apus/tcp", "leader"), ("etcd", "client"),
        ("dare", "leader"), ("multipaxos", "leader"), ("zookeeper", "client")}
    etcd = frame[(frame["protocol"] == "etcd")].iloc[0]
    assert etcd["p50_us"] == pytest.approx(800.0, rel=1e-3)  # 3 significant digits
    text = fig3.FIGURE.measured(records)
    assert re.search(r"3 replicas, apus \(client\) 40\.0\d µs: etcd 20\.0x;", text)
    assert re.search(r"3 replicas, apus \(leader\) 2\.00 µs: dare 1\.5x, multipaxos 15\.0x;", text)
    for figure in (fig3.FIGURE, kernel_share.FIGURE):
        paths = figure.render(records, tmp_path)
        assert {p.suffix for p in paths} == {".png", ".pdf"}
        assert all(p.stat().st_size > 1000 for p in paths)
    assert "etcd (3: 50%)" in kernel_share.FIGURE.measured(records)


def test_no_records_render_nothing(tmp_path):
    assert fig3.FIGURE.render([], tmp_path) == [] and kernel_share.FIGURE.render([], tmp_path) == []
    assert fig3.FIGURE.measured([]) == "no consensus_latency records"


def test_without_apus_the_report_says_so():
    text = experiment.report([r for r in sample_results() if r.protocol != "apus"])
    assert "APUS did not run" in text
