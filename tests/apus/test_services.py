"""APUS services other parts use: snapshots with log truncation and state transfer,
membership change (learner, promote, remove) and request/reply over the log + acks."""

from __future__ import annotations

from gaia.apus import messages as M
from gaia.apus.simulator import WIDE_LAYOUT, SimConfig, Simulator


def _rounds(sim: Simulator, n: int) -> None:
    for _ in range(n):
        sim.round()


def _sim(durability: str = "memory", **kw) -> Simulator:
    sim = Simulator(SimConfig(durability=durability, seed=5, **kw))
    sim.log_events = True
    sim.bootstrap()
    _rounds(sim, 2)
    return sim


def _fill(sim: Simulator, count: int) -> None:
    for i in range(count):
        sim.propose(sim.leader().id, f"entry-{i}".encode())
        _rounds(sim, 1)


def test_the_log_is_compacted_and_a_lagging_replica_gets_a_snapshot():
    sim = _sim("fsync")
    leader = sim.leader()
    lagger = next(n for n in sim.nodes if n is not leader)
    sim.crash(lagger.id)
    _fill(sim, 30)  # the log holds 16 entries: the leader must compact
    assert leader.core.log.first > 1 and leader.core.snapshot is not None
    sim.restart(lagger.id)
    _rounds(sim, 8)
    node = sim.nodes[lagger.id]
    assert any(f"r{lagger.id}" in e and "installed a snapshot" in e for e in sim.trace)
    assert node.core.commit == leader.core.commit
    assert (node.app.applied, node.app.digest) == (leader.app.applied, leader.app.digest)


def test_a_learner_catches_up_without_voting_then_is_promoted_and_later_removed():
    sim = _sim("memory", layout=WIDE_LAYOUT)
    leader = sim.leader()
    _fill(sim, 3)
    learner = sim.add_node()
    cfg = leader.core.config
    leader.core.change_config(M.Config({**cfg.members, learner.id: (False, True, 1)}))
    _rounds(sim, 6)
    assert learner.core.role_name() == "learner"
    assert learner.core.last == leader.core.last and learner.core.commit == leader.core.commit
    assert leader.core.config.majority() == 2  # learners do not count
    leader.core.change_config(M.Config({**cfg.members, learner.id: (True, True, 1)}))
    _rounds(sim, 4)
    assert learner.core.role_name() == "backup" and leader.core.config.majority() == 3
    # remove one of the original voters: the group goes on with three
    gone = next(n for n in sim.nodes if n is not leader and n is not learner)
    members = dict(leader.core.config.members)
    del members[gone.id]
    leader.core.change_config(M.Config(members))
    _rounds(sim, 4)
    sim.crash(gone.id)
    _fill(sim, 2)
    assert leader.core.config.majority() == 2 and learner.core.commit == leader.core.commit


def test_requests_are_answered_by_every_backup_before_they_ack():
    sim = _sim("memory")
    leader = sim.leader()
    index = leader.core.request(b"which pages differ?")
    _rounds(sim, 3)
    assert leader.core.commit >= index
    replies = leader.core.replies(index)
    assert replies == {n.id: b"ok:which pages diff" for n in sim.nodes if n is not leader}
