"""One test per step of the GAIA proposal's Figure 2 (APUS's normal case), run on the
simulator, which drives the real core and the numba fast path but lets a test stop
between a write being issued and the write landing."""

from __future__ import annotations

import numpy as np
import pytest

from gaia.apus import fastpath as fp
from gaia.apus import ringio, wire
from gaia.apus.simulator import SimConfig, Simulator
from gaia.apus.storage import SimStorage
from gaia.intercept import ring_layout as RL
from gaia.intercept.events import decode_batch
from gaia.intercept.ring import nb_event_ready


def _stable(durability: str = "memory", replicas: int = 3) -> Simulator:
    sim = Simulator(SimConfig(replicas=replicas, durability=durability, seed=7))
    sim.bootstrap()
    for _ in range(3):
        sim.round()
    return sim


def _writes(sim: Simulator, src: int, what: str) -> list:
    return [w for w in sim.inflight
            if w.src == src and sim.cfg.layout.describe(w.offset)[0] == what]


def _land(sim: Simulator, writes: list) -> None:
    for w in writes:
        sim.inflight.remove(w)
        sim._apply(w)


@pytest.fixture(params=["memory", "fsync"])
def cluster(request):
    sim = _stable(request.param)
    leader = sim.leader()
    backups = [n for n in sim.nodes if n is not leader]
    return sim, leader, backups


def test_L1_the_leader_takes_input_from_its_ring_into_one_log_entry(cluster):
    sim, leader, _ = cluster
    last = leader.core.last
    t1 = sim.propose(leader.id, b"SET a 1")
    t2 = sim.propose(leader.id, b"SET b 2")
    assert leader.core.last == last  # nothing happens until the replica polls
    sim.poll(leader.id)
    assert leader.core.last == last + 1  # both events batched into one entry
    entry = leader.core.log.entry(last + 1)
    assert entry.kind == wire.K_EVENTS and entry.view == leader.core.view
    assert [ev.payload for ev in decode_batch(entry.payload)] == [b"SET a 1", b"SET b 2"]
    assert (t1, t2) == (0, 1) and not nb_event_ready(leader.ring.seg)


def test_L2_the_leader_persists_before_it_counts_itself(cluster):
    sim, leader, _ = cluster
    sim.propose(leader.id, b"durable")
    sim.poll(leader.id)
    core = leader.core
    assert core.persisted == core.last
    if isinstance(core.storage, SimStorage):  # fsync mode: synced to the disk
        recovered = core.storage.load(sim.cfg.layout.max_payload)
        assert int(recovered.records[-1][wire.E_INDEX]) == core.last


def test_L3_the_leader_writes_the_entry_into_every_backups_ring_slot(cluster):
    sim, leader, backups = cluster
    sim.propose(leader.id, b"replicate me")
    sim.poll(leader.id)
    index = leader.core.last
    ring = _writes(sim, leader.id, "ring")
    assert sorted(w.dst for w in ring) == sorted(b.id for b in backups)
    lay = sim.cfg.layout
    for w in ring:
        assert w.offset == lay.ring_slot(leader.id, index)  # the leader's block, slot i % n
        rec = np.frombuffer(w.data, dtype=np.uint64)
        assert wire.entry_valid(rec, 0, lay.max_payload)
        assert int(rec[wire.E_INDEX]) == index
        assert int(rec[wire.E_SEND_VIEW]) == leader.core.view


def test_B1_a_backup_polls_its_own_region_and_persists_the_entry(cluster):
    sim, leader, backups = cluster
    b = backups[0]
    sim.propose(leader.id, b"to the backup")
    sim.poll(leader.id)
    index = leader.core.last
    sim.poll(b.id)
    assert b.core.last == index - 1  # not landed yet: the poller sees nothing
    _land(sim, [w for w in _writes(sim, leader.id, "ring") if w.dst == b.id])
    sim.poll(b.id)
    assert b.core.last == index and b.core.persisted == index
    assert b.core.log.entry(index).key() == leader.core.log.entry(index).key()


def test_B2_the_backup_acks_into_the_leaders_region_and_a_majority_commits(cluster):
    sim, leader, backups = cluster
    b = backups[0]
    ticket = sim.propose(leader.id, b"commit me")
    sim.poll(leader.id)
    index = leader.core.last
    _land(sim, [w for w in _writes(sim, leader.id, "ring") if w.dst == b.id])
    sim.poll(b.id)
    acks = _writes(sim, b.id, "ack")
    assert [w.dst for w in acks] == [leader.id]
    assert acks[0].offset == sim.cfg.layout.ack(b.id)  # the backup's block in the leader
    ack = np.frombuffer(acks[0].data, dtype=np.uint64)
    assert int(ack[wire.A_VIEW]) == leader.core.view and int(ack[wire.A_INDEX]) == index
    sim.poll(leader.id)
    assert leader.core.commit < index  # leader + nobody: no majority yet
    _land(sim, acks)
    sim.poll(leader.id)
    assert leader.core.commit == index  # leader + one backup of three
    assert ringio.outcome(leader.ring, ticket) == (RL.ST_COMMITTED, index)


def test_the_commit_index_rides_on_the_heartbeat_to_every_backup(cluster):
    sim, leader, backups = cluster
    sim.propose(leader.id, b"x")
    for _ in range(2):
        sim.round()
    index = leader.core.last
    assert leader.core.commit == index
    assert all(b.core.commit == index and b.core.log.commit == index for b in backups)


def test_flow_control_never_overwrites_a_slot_the_backup_has_not_acked():
    sim = _stable("memory")
    leader = sim.leader()
    slow = next(n for n in sim.nodes if n is not leader)
    slots = sim.cfg.layout.ring_slots
    for i in range(3 * slots):
        sim.propose(leader.id, f"e{i}".encode())
        sim.poll(leader.id)
    written = {int(np.frombuffer(w.data, np.uint64)[wire.E_INDEX])
               for w in _writes(sim, leader.id, "ring") if w.dst == slow.id}
    assert written and max(written) <= int(leader.core.pr[slow.id, fp.P_ACKED]) + slots
    assert leader.core.last > max(written)  # the log went on; the ring writes stopped


def test_a_learner_does_not_count_toward_the_majority():
    sim = _stable("memory")
    leader = sim.leader()
    a, b = (n for n in sim.nodes if n is not leader)
    leader.core.pr[b.id, fp.P_VOTER] = 0  # b acts as a learner, a is down
    sim.crash(a.id)
    sim.propose(leader.id, b"needs two voters")
    for _ in range(3):
        sim.round()
    assert b.core.last == leader.core.last  # the learner got it ...
    assert leader.core.commit < leader.core.last  # ... but one voter of three is no majority
