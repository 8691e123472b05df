"""TRIPOD for real: controllers and agents as processes, agents in network namespaces,
each replica a real redis-server (R > 1: an APUS group through the replicated-server
layer, clients at its serving replica)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import redis

from gaia.errors import GaiaError
from gaia.net import wait_listening
from gaia.tripod import wire
from gaia.tripod.allocation import TaskRequest
from gaia.tripod.entries import TaskSpec
from gaia.tripod.framework import Framework
from gaia.tripod.replicas import (
    caught_up_digests,
    placed_replicas,
    serving,
    task_dir,
    wait_whole,
)
from gaia.tripod.resources import Resources
from gaia.tripod.write_probe import probe_fault

from .conftest import namespace_of

pytestmark = pytest.mark.netns
REDIS = TaskSpec(app="redis")
SMALL = Resources.of(0.1, 64)


def framework(cluster, name: str = "test", max_r: int = 3) -> Framework:
    return Framework.from_run_dir(cluster.run_dir, name, max_r=max_r).connect()


def client(status) -> redis.Redis:
    host, port = status.endpoint
    return redis.Redis(host=host, port=port, socket_timeout=5)


def wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_r1_redis_runs_in_its_agents_namespace_and_is_killed(tripod):
    with framework(tripod) as fw:
        result, statuses = fw.submit(REDIS, r=1, resources=SMALL, task_id="solo")
        assert not result.consensus  # S3: no consensus round before the launch
        assert result.returned == SMALL.times(2)  # max R 3 − R 1 = 2 shares back
        (status,) = statuses.values()
        conn = client(status)
        assert conn.set("k", "v") and conn.get("k") == b"v"
        host = tripod.agent_hosts[status.agent_id]
        pid = conn.info("server")["process_id"]
        assert namespace_of(pid) == host.namespace
        assert fw.kill("solo")
        fw.wait_for("solo", ("killed",), 1, timeout=15)
        assert not wait_listening(status.ports["app"], 0.3, host=status.address)
        assert not Path(f"/proc/{pid}").exists()


def test_r3_replicas_run_on_three_distinct_agents(tripod):
    with framework(tripod) as fw:
        result, statuses = fw.submit(REDIS, r=3, resources=SMALL, task_id="trio", timeout=120)
        assert result.consensus and result.returned == Resources()
        assert len(statuses) == 3
        assert len({s.host for s in statuses.values()}) == 3
        assert len({s.agent_id for s in statuses.values()}) == 3
        view = tripod.query()
        (task,) = [t for t in view["tasks"] if t["task_id"] == "trio"]
        # each replica (the replicated-server agent owning its server) runs on its host
        for rep in task["replicas"]:
            assert namespace_of(rep["pid"]) == tripod.agent_hosts[rep["agent_id"]].namespace
        assert len({rep["pid"] for rep in task["replicas"]}) == 3
        # S4: each controller placed one replica, as the leader assigned in the entry
        assert sorted(r["controller"] for r in task["replicas"]) == [0, 1, 2]
        assert all(r["status"] == "running" for r in task["replicas"])
        # the APUS group configuration travels with the placement (replica.json)
        for rep in task["replicas"]:
            agent_dir = tripod.run_dir / rep["agent_id"] / "replicas" / f"trio-{rep['index']}-0"
            group = json.loads((agent_dir / "replica.json").read_text())["group"]
            assert [m["host"] for m in group["members"]] == [r["host"] for r in task["replicas"]]
        dep = wait_until(lambda: _task_deployment(tripod, "trio"), 30, "the task's deployment.json")
        assert [r["app_port"] for r in dep["replicas"]] == [
            s.ports["app"] for _, s in sorted(statuses.items())
        ]
        # one serving replica takes clients; the group executes its inputs everywhere
        conn = serving_client(tripod, "trio")
        for i in range(20):
            assert conn.set(f"k{i}", f"v{i}")
        digests = caught_up_digests(placed_replicas(tripod, "trio"))
        assert len(digests) == 3 and len(set(digests.values())) == 1
        fw.kill("trio")


def serving_client(cluster, task_id: str) -> redis.Redis:
    """The task's serving replica (deployment.json's leader): R > 1 backups take no
    clients, their servers only replay the group's committed inputs."""
    host, port = serving(cluster, task_id, timeout=60).leader_endpoint()
    return redis.Redis(host=host, port=port, socket_timeout=5)


def _task_deployment(cluster, task_id: str):
    path = cluster.run_dir / "tasks" / task_id / "deployment.json"
    if not path.exists():
        return None
    dep = json.loads(path.read_text())
    return dep if all(r["role"] != "down" for r in dep["replicas"]) else None


def test_generic_command_gets_its_port_dir_and_address(tripod):
    cmd = ("sh", "-c", "echo {port} {address} > {dir}/seen; exec sleep 60")
    with framework(tripod) as fw:
        _, statuses = fw.submit(TaskSpec(command=cmd), r=1, resources=SMALL, task_id="cmd")
        (s,) = statuses.values()
        seen = tripod.run_dir / s.agent_id / "replicas" / "cmd-0-0" / "seen"
        text = wait_until(lambda: seen.exists() and seen.read_text().split(), 30, "the file")
        assert text == [str(s.ports["app"]), s.address]
        fw.kill("cmd")


def test_bad_requests_are_rejected_with_a_reason(tripod):
    with framework(tripod) as fw:
        offer = fw.next_offer()
        (too_many,) = fw.launch(offer, [TaskRequest("x", REDIS, SMALL, r=4)])
        assert not too_many.accepted and "exceeds the number of controllers (3)" in too_many.problem
        offer = fw.next_offer()
        (too_big,) = fw.launch(offer, [TaskRequest("y", REDIS, Resources.of(64, 64), r=1)])
        assert not too_big.accepted and "the offer has" in too_big.problem
    with pytest.raises(Exception, match="max R"):
        framework(tripod, "greedy", max_r=4)


def test_restarted_controller_replays_the_log_to_the_same_state(tripod):
    with framework(tripod) as fw:
        fw.submit(REDIS, r=3, resources=SMALL, task_id="before-restart", timeout=120)
    tripod.controller_procs[2].kill()
    tripod.start_controller(2)
    address = tripod.client_addresses()[2]

    def same_index():
        try:
            view = wire.request(address, {"op": "query"}, 2.0)
        except Exception:
            return None
        leader = tripod.query()
        return (view, leader) if view["applied_index"] == leader["applied_index"] else None

    view, leader = wait_until(same_index, 60, "controller 2 to replay the log")
    assert not view["leading"] and view["applied_index"] > 0
    assert view["digest"] == leader["digest"]  # the same state, byte for byte
    assert placements(view) == placements(leader)


def placements(view) -> list:
    """What the log decided about every replica (not what agents last reported)."""
    fields = ("index", "incarnation", "controller", "agent_id", "ports", "placement")
    return [[{f: rep[f] for f in fields} for rep in t["replicas"]] for t in view["tasks"]]


def test_agent_dying_during_placement_replica_is_placed_elsewhere(fragile_tripod):
    cluster = fragile_tripod
    victim = "agent-h2"
    with framework(cluster) as fw:
        offer = fw.next_offer()
        cluster.agent_procs[victim].signal(signal.SIGSTOP)  # it will never launch its replica
        (result,) = fw.launch(offer, [TaskRequest("moved", REDIS, SMALL, r=3, agent_id=victim)])
        assert result.accepted and result.replicas[0]["agent_id"] == victim
        cluster.kill_host(victim)  # the host dies while its replica is being placed
        statuses = fw.wait_for("moved", ("running",), replicas=3, timeout=120)
    replica0 = statuses[0]
    assert replica0.incarnation == 1 and replica0.agent_id != victim
    assert len({s.host for s in statuses.values()}) == 3
    assert serving_client(cluster, "moved").ping()


def test_host_death_restarts_an_r1_task_elsewhere_without_its_state(fragile_tripod):
    cluster = fragile_tripod
    with framework(cluster) as fw:
        _, statuses = fw.submit(REDIS, r=1, resources=SMALL, task_id="mortal")
        (first,) = statuses.values()
        client(first).set("key", "acknowledged")
        cluster.kill_host(first.agent_id)
        moved = wait_until(
            lambda: (
                (s := fw.task_statuses("mortal").get(0))
                and s.incarnation == 1
                and s.state == "running"
                and s
            ),
            60,
            "the R=1 task to be restarted elsewhere",
        )
    assert moved.agent_id != first.agent_id
    assert client(moved).get("key") is None  # R = 1: the state died with the host


def test_host_of_the_serving_replica_dies_r3_task_keeps_serving_with_its_state(
    fragile_tripod,
):
    """Issue 9 acceptance: kill the host of the leading replica of an R = 3 Redis task
    during writes: the service continues, no acknowledged write is lost, and once the
    replica is re-placed on another host the three states are equal."""
    cluster = fragile_tripod
    with framework(cluster) as fw:
        fw.submit(REDIS, r=3, resources=SMALL, task_id="kv", timeout=120)
    leader = serving(cluster, "kv").leader
    (victim,) = [p.agent_id for p in placed_replicas(cluster, "kv") if p.index == leader]
    result = probe_fault(task_dir(cluster, "kv"), lambda: cluster.kill_host(victim), 100, 100)
    assert len(result.acknowledged) >= 200 and result.lost == 0
    assert serving(cluster, "kv").leader != leader  # another replica took over
    whole = wait_whole(cluster, "kv", 3, timeout=180, not_on=victim)
    assert victim not in {p.agent_id for p in whole}
    assert len({p.address for p in whole}) == 3  # still three distinct hosts
    digests = caught_up_digests(whole)
    assert len(set(digests.values())) == 1, digests


def test_a_restarted_replica_recovers_from_a_checkpoint_on_another_host(fragile_tripod):
    """A backup whose server dies is restarted in place by its agent; it restores the
    newest checkpoint a peer's guard serves on another host (the port TRIPOD assigned),
    then replays only the suffix: the way back once the group has compacted its log."""
    cluster = fragile_tripod
    with framework(cluster) as fw:
        fw.submit(REDIS, r=3, resources=SMALL, task_id="ck", timeout=120)
    conn = serving_client(cluster, "ck")
    for i in range(50):
        assert conn.set(f"k{i}", f"v{i}")
    leader = serving(cluster, "ck").leader
    donor, victim = [p for p in placed_replicas(cluster, "ck") if p.member != leader]
    checkpoint = donor.ask({"op": "checkpoint"}, 120)
    for i in range(50, 60):
        assert conn.set(f"k{i}", f"v{i}")
    server_pid = victim.ask({"op": "status"})["server_pid"]
    os.kill(server_pid, signal.SIGKILL)
    back = wait_until(lambda: (st := _agent_status(victim)) and st["server_pid"] != server_pid
                      and st["state"] == "backup" and st, 120, "the replica to come back")
    assert back["recovered_from"].startswith(f"checkpoint {checkpoint['index']} of "), back
    digests = caught_up_digests(placed_replicas(cluster, "ck"))
    assert len(set(digests.values())) == 1, digests


def _agent_status(rep) -> dict | None:
    try:
        return rep.ask({"op": "status"}, 5)
    except (GaiaError, OSError):
        return None  # restarting: its control socket is not back yet


def test_killing_the_leading_controller_scheduling_continues(fragile_tripod):
    cluster = fragile_tripod
    with framework(cluster) as fw:
        fw.submit(REDIS, r=3, resources=SMALL, task_id="survivor", timeout=120)
        old_leader = cluster.query()["leader"]
        cluster.kill_controller(old_leader)
        new = wait_until(
            lambda: (v := cluster.query()) and v["leading"] and v["leader"] != old_leader and v,
            60,
            "a new leading controller",
        )
        assert any(t["task_id"] == "survivor" for t in new["tasks"])
        fw.wait_for("survivor", ("running",), replicas=3, timeout=60)
        _, statuses = fw.submit(REDIS, r=1, resources=SMALL, task_id="after-failover", timeout=60)
    assert client(statuses[0]).ping()
