"""Agent pieces without namespaces: placeholders, leftover cleanup after a crash, and a
whole deployment with local hosts (for machines where namespaces are not available)."""

from __future__ import annotations

import json
import sys

import redis

from gaia import proc
from gaia.tripod.agent import PIDS_FILE, AgentConfig, cleanup_leftovers, process_start
from gaia.tripod.deploy import TripodCluster, TripodOptions
from gaia.tripod.entries import TaskSpec
from gaia.tripod.framework import Framework
from gaia.tripod.launch import expand
from gaia.tripod.replicas import caught_up_digests, placed_replicas, serving
from gaia.tripod.resources import Resources

from .conftest import FAST


def test_placeholders_are_replaced_and_other_braces_kept():
    values = {
        "port": "31000",
        "apus_port": "",
        "dir": "/d",
        "address": "10.0.0.1",
        "task_id": "t",
        "index": "2",
    }
    argv = expand(("sh", "-c", "f() { echo {port}; }; f {dir}/{index} {other}"), values)
    assert argv == ["sh", "-c", "f() { echo 31000; }; f /d/2 {other}"]


def test_config_round_trip(tmp_path):
    config = AgentConfig("a", "h", "10.0.0.1", [(0, "10.0.0.254", 7000)], str(tmp_path), cpus=1.5)
    loaded = AgentConfig.load(config.save(tmp_path / "agent.json"))
    assert loaded.controllers == ((0, "10.0.0.254", 7000),) and loaded.cpus == 1.5
    assert loaded.capacity() == Resources(1500, loaded.capacity().mem_mb)


def test_restarted_agent_kills_the_replicas_its_predecessor_left(tmp_path):
    leftover = proc.spawn(
        "leftover", [sys.executable, "-c", "import time; time.sleep(60)"], tmp_path / "leftover.log"
    )
    try:
        pids = {"t/0/0": [[leftover.pid, process_start(leftover.pid)]]}
        (tmp_path / PIDS_FILE).write_text(json.dumps(pids))
        assert cleanup_leftovers(tmp_path / PIDS_FILE) == [leftover.pid]
        leftover.popen.wait(5)
        assert not leftover.alive()
        assert cleanup_leftovers(tmp_path / PIDS_FILE) == []  # the record is gone
    finally:
        leftover.kill()


def test_local_hosts_deployment_places_replicas_on_distinct_agents(tmp_path):
    options = TripodOptions(agents=2, hosts="local", cpus=1, mem_mb=1024, **FAST)
    with (
        TripodCluster(tmp_path / "run", options) as cluster,
        Framework.from_run_dir(cluster.run_dir, "local", max_r=2) as fw,
    ):
        _, statuses = fw.submit(
            TaskSpec(app="redis"), r=2, resources=Resources.of(0.1, 64), timeout=120
        )
        assert {s.agent_id for s in statuses.values()} == {"agent-local1", "agent-local2"}
        ports = {s.ports["app"] for s in statuses.values()}
        assert len(ports) == 2  # local agents share one port space: disjoint ranges
        host, port = serving(cluster, fw_task(statuses), timeout=60).leader_endpoint()
        assert redis.Redis(host, port, socket_timeout=5).set("k", "v")
        digests = caught_up_digests(placed_replicas(cluster, fw_task(statuses)))
        assert len(digests) == 2 and len(set(digests.values())) == 1


def fw_task(statuses) -> str:
    return next(iter(statuses.values())).task_id
