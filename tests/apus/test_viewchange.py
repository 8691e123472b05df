"""View change, recovery and leader priority, on the simulator."""

from __future__ import annotations

import numpy as np

from gaia.apus import fastpath as fp
from gaia.apus import messages as M
from gaia.apus import wire
from gaia.apus.simulator import SimConfig, Simulator


def _sim(durability="memory", **kw) -> Simulator:
    sim = Simulator(SimConfig(durability=durability, seed=3, **kw))
    sim.bootstrap()
    for _ in range(2):
        sim.round()
    return sim


def _rounds(sim: Simulator, n: int) -> None:
    for _ in range(n):
        sim.round()


def test_a_new_leader_is_elected_in_a_higher_view_and_keeps_every_committed_entry():
    sim = _sim("fsync")
    old = sim.leader()
    for i in range(5):
        sim.propose(old.id, f"v{i}".encode())
    _rounds(sim, 3)
    committed = old.core.commit
    sim.crash(old.id)
    _rounds(sim, 20)
    new = sim.leader()
    assert new is not None and new.id != old.id and new.core.view > old.core.view
    assert new.core.commit > committed  # its NOOP committed, and everything before it
    for i in range(1, committed + 1):
        assert new.core.log.entry(i).key() == old.core.log.entry(i).key()


def test_a_deposed_leaders_late_writes_are_ignored():
    sim = _sim("memory")
    old = sim.leader()
    sim.propose(old.id, b"x")
    _rounds(sim, 2)
    stale = [w for w in sim.history if w.src == old.id]  # writes of the old view
    assert stale
    for other in range(3):  # cut the leader off; the others elect a new one
        if other != old.id:
            sim.cut.add(frozenset((old.id, other)))
    _rounds(sim, 20)
    new = sim.leader()
    assert new.core.view > old.core.view
    before = {n.id: (n.core.last, n.core.commit) for n in sim.nodes if n is not old}
    for w in stale:  # a SIGSTOPped leader resumes and its old writes land again
        sim.nodes[w.dst].region[w.offset : w.offset + len(w.data)] = \
            np.frombuffer(w.data, np.uint8)
    for n in sim.nodes:
        if n is not old:
            sim.poll(n.id)
    assert {n.id: (n.core.last, n.core.commit) for n in sim.nodes if n is not old} == before
    sim.check()


def _mail(sim: Simulator, src: int) -> list[M.Message]:
    """Decode the slow-path messages `src` has in flight."""
    out = []
    for w in sim.inflight:
        if w.src == src and sim.cfg.layout.describe(w.offset)[0] == "mail":
            w64 = np.frombuffer(w.data, dtype=np.uint64)
            lk = int(w64[wire.B_LENKIND])
            payload = w.data[wire.B_PAYLOAD * 8 : wire.B_PAYLOAD * 8 + (lk & 0xFFFFFFFF)]
            out.append(M.decode(lk >> 32, int(w64[wire.B_VIEW]), payload))
    return out


def _restarted_backup(sim: Simulator):
    """Commit a few entries, then crash a backup and restart it without its log."""
    leader = sim.leader()
    b = next(n for n in sim.nodes if n is not leader)
    for i in range(3):
        sim.propose(leader.id, f"e{i}".encode())
    _rounds(sim, 3)
    sim.crash(b.id)
    sim.restart(b.id)
    return leader, sim.nodes[b.id]


def test_a_replica_restarted_without_its_log_refuses_to_vote_until_it_caught_up():
    sim = _sim("memory")
    leader, node = _restarted_backup(sim)
    assert node.core.recovering and node.core.role_name() == "recovering"
    assert node.core.last == 0  # memory mode: the log is gone, the promises are not
    candidate = next(n for n in sim.nodes if n.id not in (leader.id, node.id))
    node.core._on_view_req(candidate.id, M.ViewReq(node.core.view + 1, 0, 0, 0))
    sim._collect(node)
    replies = [m for m in _mail(sim, node.id) if isinstance(m, M.Promise)]
    assert replies and not replies[-1].granted  # an empty log must not outvote anyone


def test_a_recovering_replica_catches_up_and_then_votes_again():
    sim = _sim("memory")
    leader, node = _restarted_backup(sim)
    _rounds(sim, 6)
    node = sim.nodes[node.id]
    assert not node.core.recovering and node.core.role_name() == "backup"
    assert node.core.last == leader.core.last and node.core.commit == leader.core.commit


def test_priority_decides_who_leads_and_priority_zero_never_leads():
    members = M.Config({0: (True, True, 1), 1: (True, False, 0), 2: (True, True, 5)})
    sim = _sim("memory", members=members)
    assert sim.leader().id == 2  # the highest priority times out first
    sim.crash(2)
    _rounds(sim, 30)
    assert sim.leader().id == 0  # the standby (priority 0, non-executing) never leads
    assert sim.nodes[1].core.role_name() == "standby"
    assert sim.nodes[1].core.applied == sim.nodes[1].core.commit  # agrees, nothing applied
    assert sim.nodes[1].app.applied == 0


def test_a_partitioned_replica_rejoins_without_deposing_the_leader():
    sim = _sim("memory")
    leader = sim.leader()
    loner = next(n for n in sim.nodes if n is not leader)
    for other in range(3):
        if other != loner.id:
            sim.cut.add(frozenset((loner.id, other)))
    _rounds(sim, 30)  # it times out again and again, but its pre-votes go unanswered
    assert loner.core.view == leader.core.view
    sim.heal()
    _rounds(sim, 5)
    assert sim.leader() is leader and loner.core.normal
    assert int(loner.core.st[fp.S_LEADER]) == leader.id
