"""The fault probe against real redis-servers named by a deployment.json: a server that
dies and is replaced by an empty one (what happens to an R = 1 task) shows as a gap in
acknowledged writes and as every earlier acknowledged write lost."""

from __future__ import annotations

import time

import apps
from gaia.deployment import Deployment, ReplicaInfo
from gaia.tripod.write_probe import ProbeResult, probe_fault

GAP_S = 0.3


def point_at(task_dir, index: int, port: int) -> None:
    Deployment(kind="tripod", run_dir=str(task_dir), leader=index,
               replicas=[ReplicaInfo(id=index, role="leader", app_port=port)]).save()


def test_replaced_empty_server_loses_the_acknowledged_writes(tmp_path):
    first = apps.get("redis")(port=0, data_dir=tmp_path / "a")
    second = apps.get("redis")(port=0, data_dir=tmp_path / "b")
    first.start(timeout=60)
    point_at(tmp_path, 0, first.port)

    def restart_elsewhere() -> None:
        first.stop()
        time.sleep(GAP_S)  # nobody serves meanwhile
        second.start(timeout=60)
        point_at(tmp_path, 1, second.port)

    try:
        result = probe_fault(tmp_path, restart_elsewhere, before=50, after=20, timeout=60)
    finally:
        first.stop()
        second.stop()
    assert len(result.acknowledged) >= 70
    lost_before = {f"probe:{i}" for i in range(50)}
    assert lost_before <= set(result.missing)  # the empty server never saw them
    assert all(key in {k for k, _ in result.acknowledged} for key in result.missing)
    assert result.downtime_s is not None and result.downtime_s >= GAP_S
    assert result.failed_attempts > 0


def test_downtime_is_the_longest_gap_from_the_fault_on():
    r = ProbeResult(acknowledged=[("a", 1.0), ("b", 1.1), ("c", 3.0), ("d", 3.2)])
    assert r.downtime_s is None  # no fault
    r.fault_at = 1.05
    assert abs(r.downtime_s - 1.9) < 1e-9
    r.fault_at = 3.1
    assert abs(r.downtime_s - 0.2) < 1e-9
