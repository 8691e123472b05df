"""One test per step of the GAIA proposal's Figure 5 (S1–S4), plus the rejections and the
re-placement the issue asks for — in the style of etcd's raft_paper_test.go, each test
names the claim of the proposal it checks. Pure logic: no processes."""

from __future__ import annotations

import pytest

from gaia.tripod.entries import PlaceTask, RegisterAgent, RemoveAgent, ReplaceReplica
from gaia.tripod.resources import Resources
from gaia.tripod.state import LOST, PLACED, Launch

from .sim import SimCluster, task


def cluster(hosts: int = 5, controllers: int = 3) -> SimCluster:
    sim = SimCluster(controllers=controllers)
    for i in range(hosts):
        sim.add_agent(f"a{i}", f"h{i}", cpus=2, mem=2048)
    return sim


def try_launch(sim: SimCluster, req, max_r: int = 3):
    """Register a framework with `max_r`, take its offer, ask for one task."""
    sim.register_framework("f", max_r=max_r)
    offer = sim.offer("f")
    (result,) = sim.alloc.accept(offer.offer_id, [req], sim.now)
    return result


def test_s1_agents_report_resources_and_host_identity_periodically():
    """S1: "slave computers periodically report their available computing resources (CPU
    cores and memory) to the leader controller"."""
    sim = SimCluster()
    sim.add_agent("a0", "h0", cpus=2, mem=2048)
    registered = [r.entry for r in sim.applied if isinstance(r.entry, RegisterAgent)]
    assert registered == [
        RegisterAgent("a0", "h0", "addr-h0", Resources(2000, 2048), (31000, 31099), "boot-0")
    ]
    sim.advance(1.0, rounds=3)  # unchanged reports are soft state: no new entries
    assert len(sim.log) == 1
    assert sim.alloc.available(sim.now) == Resources(2000, 2048)
    sim.agents["a0"].capacity = Resources(4000, 2048)  # a changed report is recorded
    sim.advance(1.0)
    assert sim.state.agents["a0"].capacity == Resources(4000, 2048)
    sim.kill_agent("a0")  # an agent that stops reporting is removed
    sim.advance(sim.alloc.agent_timeout + 1)
    assert isinstance(sim.applied[-1].entry, RemoveAgent)
    assert sim.alloc.available(sim.now) == Resources()


def test_s2_offer_is_available_resources_divided_by_the_frameworks_max_r():
    """S2: "TRIPOD conservatively divides the amount of resources by each application's
    max R value and then sends a resource offer to the application"."""
    sim = cluster(hosts=5)  # 10 cpus, 10240 MiB
    sim.register_framework("hadoop", max_r=3)
    sim.register_framework("mpi", max_r=1)
    offer = sim.offer("hadoop")
    assert offer.remaining == Resources(10000 // 3, 10240 // 3)
    assert offer.reserved == offer.remaining.times(3)
    # what is reserved for hadoop is not offered again: mpi gets what is left (÷ 1)
    mpi = sim.offer("mpi")
    assert mpi.remaining == Resources(10000 - offer.reserved.cpus_m, 10240 - offer.reserved.mem_mb)
    assert sim.alloc.reserved().fits_in(sim.alloc.available(sim.now))


def test_s3_r1_task_skips_consensus_and_gives_back_r_minus_1_shares():
    """S3: "If a task has R=1, leader schedules the task without consensus and revokes R−1
    resources specified in this task from the application"."""
    sim = cluster(hosts=5)
    sim.register_framework("mpi-like", max_r=3)
    offer = sim.offer("mpi-like")
    before = sim.alloc.offerable(sim.now)
    req = task("t1", r=1, cpus=0.3, mem=100)
    (accepted,) = sim.alloc.accept(offer.offer_id, [req], sim.now, keep_offer=True)
    # decided before any entry is committed: the leader launches it right away
    assert len(sim.log) == 6 and not accepted.consensus
    (replica,) = accepted.entry.replicas
    assert replica.controller == sim.leader
    assert accepted.returned == req.resources.times(2)  # max R − 1 = 2 shares
    assert sim.alloc.offerable(sim.now) - before == req.resources.times(2)
    assert offer.remaining == Resources(10000 // 3, 10240 // 3) - req.resources
    # the record still reaches the log, so a new leader knows the task
    sim.commit(accepted.entry)
    assert sim.machines[2].state.tasks["t1"].replicas[0].assignment == replica


def test_s4_leader_preassigns_controllers_and_distinct_hosts_in_the_entry():
    """S4: "the leader controller first makes an assignment on which controller should run
    this task on which slave computer, it then carries this assignment in its consensus
    request. Once a consensus on this task is reached, each controller follows this
    assignment"."""
    sim = cluster(hosts=5)
    sim.register_framework("hadoop", max_r=3)
    offer = sim.offer("hadoop")
    (accepted,) = sim.alloc.accept(offer.offer_id, [task("t3", r=3)], sim.now)
    entry = accepted.entry
    assert isinstance(entry, PlaceTask) and entry.consensus
    assert {a.controller for a in entry.replicas} == {0, 1, 2}
    assert len({a.host for a in entry.replicas}) == 3
    applied = sim.commit(entry)
    # each controller's apply yields exactly its own replica's launch, as assigned
    for machine in sim.machines:
        index = len(sim.log)
        fresh = type(machine)(machine.controller_id, 3)
        for i, raw in enumerate(sim.log[:-1], start=1):
            fresh.apply(i, raw)
        (launch,) = fresh.apply(index, sim.log[-1]).actions
        assert isinstance(launch, Launch)
        assert launch.replica == entry.replicas[(machine.controller_id - sim.leader) % 3]
    assert applied.accepted
    group = sim.state.tasks["t3"].group()
    assert [m.host for m in group.members] == [a.host for a in entry.replicas]
    assert all(m.apus_port is not None for m in group.members)


def test_r_larger_than_controllers_is_rejected():
    sim = cluster(hosts=5)
    result = try_launch(sim, task("t", r=4))
    assert "exceeds the number of controllers (3)" in result.problem
    bad = sim.register_framework("g", max_r=4)
    assert not bad.accepted and "between 1 and the 3 controllers" in bad.reason


def test_r_larger_than_distinct_hosts_is_rejected():
    sim = SimCluster()
    for i in range(4):  # four agents but only two hosts
        sim.add_agent(f"a{i}", f"h{i % 2}")
    result = try_launch(sim, task("t", r=3))
    assert "needs 3 distinct hosts but only 2" in result.problem
    assert "t" not in sim.state.tasks


def test_r_larger_than_hosts_with_room_is_rejected():
    sim = cluster(hosts=3)
    sim.agents["a2"].capacity = Resources(100, 2048)  # too small for the task
    sim.advance(0.1)
    result = try_launch(sim, task("t", r=3, cpus=0.5))
    assert "only 2 have room" in result.problem


def test_r_larger_than_frameworks_max_r_is_rejected():
    sim = cluster(hosts=5)
    result = try_launch(sim, task("t", r=3), max_r=2)
    assert "exceeds the framework's max R (2)" in result.problem


@pytest.mark.parametrize("r", [1, 3])
def test_agent_dying_during_placement_replica_is_placed_elsewhere(r):
    """The entry committed, but the agent of replica 1 died before launching it."""
    sim = cluster(hosts=5)
    sim.register_framework("f", max_r=3)
    offer = sim.offer("f")
    (accepted,) = sim.alloc.accept(offer.offer_id, [task("t", r=r)], sim.now)
    victim = accepted.entry.replicas[-1]
    sim.kill_agent(victim.agent_id)
    sim.commit(accepted.entry)  # the launch to the dead agent is lost
    sim.advance(sim.alloc.agent_timeout + 1)
    assert sim.state.tasks["t"].replicas[victim.index].state == LOST
    sim.advance(0.1)
    replaced = [a.entry for a in sim.applied if isinstance(a.entry, ReplaceReplica)]
    assert len(replaced) == 1 and sim.applied[-1].accepted
    new = sim.state.tasks["t"].replicas[victim.index]
    assert new.state == PLACED and new.assignment.incarnation == 1
    assert new.assignment.agent_id != victim.agent_id
    assert len(sim.state.tasks["t"].hosts_in_use()) == r  # still distinct hosts
    sim.advance(0.1)
    assert sim.agents[new.assignment.agent_id].running == {f"t/{victim.index}/1": "running"}


@pytest.mark.parametrize("new_leader", [False, True])
def test_a_rebooted_hosts_replicas_are_replaced_at_once(new_leader):
    """The host of replica 1 reboots faster than the agent timeout: its new boot id alone
    tells every controller (also one that took over meanwhile) that the replica is gone,
    so it is re-placed well before the launch timeout."""
    sim = cluster(hosts=5)
    sim.register_framework("f", max_r=3)
    offer = sim.offer("f")
    sim.launch(offer, [task("t", r=3)])
    sim.advance(0.1)
    victim = sim.state.tasks["t"].replicas[1].assignment
    if new_leader:
        sim.change_leader(1)
    sim.reboot_agent(victim.agent_id)
    sim.advance(0.1)  # the report marks it lost, the same reconciliation re-places it
    lost = [a.entry for a in sim.applied if isinstance(a.entry, ReplaceReplica)]
    assert [e.reason for e in lost] == [f"agent {victim.agent_id} lost"]
    new = sim.state.tasks["t"].replicas[1]
    assert new.state == PLACED and new.assignment.incarnation == victim.incarnation + 1
    assert sim.now < sim.reconciler.launch_timeout
    sim.advance(0.1)
    assert sim.agents[new.assignment.agent_id].running == {"t/1/1": "running"}
    others = [sim.state.tasks["t"].replicas[i] for i in (0, 2)]
    assert [(r.state, r.assignment.incarnation) for r in others] == [(PLACED, 0)] * 2


@pytest.mark.parametrize("r", [1, 3])
def test_a_failed_replica_of_a_replicated_task_is_re_placed(r):
    """R > 1: a replica its agent could not bring back (in-place restarts exhausted) is
    re-placed so the task regains its strength; R = 1: the exit is the task's outcome."""
    sim = cluster(hosts=5)
    sim.register_framework("f", max_r=3)
    sim.launch(sim.offer("f"), [task("t", r=r)])
    sim.advance(0.1)
    victim = sim.state.tasks["t"].replicas[0].assignment
    sim.agents[victim.agent_id].running[f"t/0/{victim.incarnation}"] = "failed"
    sim.advance(0.1)
    rep = sim.state.tasks["t"].replicas[0]
    if r == 1:
        assert rep.state == "failed" and rep.assignment.incarnation == 0
        return
    assert rep.state == PLACED and rep.assignment.incarnation == 1
    sim.advance(0.1)
    assert sim.agents[rep.assignment.agent_id].running.get("t/0/1") == "running"


def test_replica_never_launched_is_replaced_after_the_launch_timeout():
    """The agent lives but the controller assigned to replica 2 died before launching."""
    sim = cluster(hosts=5)
    sim.register_framework("f", max_r=3)
    offer = sim.offer("f")
    (accepted,) = sim.alloc.accept(offer.offer_id, [task("t", r=3)], sim.now)
    sim.silenced.add(2)  # its launches never happen
    sim.commit(accepted.entry)
    sim.advance(0.1)
    assert not [a for a in sim.applied if isinstance(a.entry, ReplaceReplica)]
    sim.advance(sim.reconciler.launch_timeout + 1)
    replaced = [a.entry for a in sim.applied if isinstance(a.entry, ReplaceReplica)]
    (entry,) = replaced
    assert entry.replica.index == 2 and entry.replica.controller == sim.leader
    assert "not launched" in entry.reason


def test_orphan_process_unknown_to_the_log_is_killed():
    sim = cluster(hosts=3)
    sim.agents["a1"].running["ghost/0/0"] = "running"  # e.g. an R=1 record that never committed
    sim.advance(0.1)
    assert sim.agents["a1"].running["ghost/0/0"] == "killed"


def test_stale_decision_is_rejected_identically_by_every_controller():
    """A deposed leader's decision, made before a re-placement, must not double-place."""
    sim = cluster(hosts=5)
    sim.register_framework("f", max_r=3)
    offer = sim.offer("f")
    (accepted,) = sim.alloc.accept(offer.offer_id, [task("t", r=3)], sim.now)
    sim.commit(accepted.entry)
    old = sim.alloc.replacement("t", 0, sim.now, "test")
    sim.commit(old)
    again = sim.commit(old)  # the same decision proposed twice (retry by a stale leader)
    assert not again.accepted and "stale re-placement" in again.reason
