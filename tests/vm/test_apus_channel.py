"""Algorithm 1 over APUS (default suite, no VM): the leader's DIRTY/COMPARE messages are
APUS REQUEST entries, the major backup's member answers in its reply slot, over the
process backend's forked clones. Same pages found as by reading both memories."""

from __future__ import annotations

import time
from concurrent.futures import Future

import numpy as np
import pytest

from gaia.errors import GaiaError
from gaia.vm.apus_binding import LEADER, MAJOR, STANDBY, ApusMembers, ApusOrderer
from gaia.vm.channel import BackupEndpoint, encode_compare
from gaia.vm.forkclone import ForkedPair
from gaia.vm.pagesync import SyncState, sync_pages
from gaia.vm.process_backend import paused

N_PAGES = 256


@pytest.fixture
def members(run_dir):
    group = ApusMembers(run_dir / "apus").start()
    yield group
    group.stop()


def test_algorithm_1_over_apus_finds_exactly_the_divergent_pages(members, run_dir) -> None:
    pair = ForkedPair(run_dir, N_PAGES)
    try:
        leader, backup = pair.store("leader"), pair.store("backup")
        with paused(*pair.pids.values()):
            state = SyncState.after_clone(leader)
        rng = np.random.default_rng(5)
        for _ in range(40):  # identical inputs: dirty on both, not divergent
            pair.both(f"write {int(rng.integers(N_PAGES))} 64 64 {int(rng.integers(1 << 30))}")
        pair.send("leader", "noise 4")
        pair.send("backup", "noise 6")
        commit_before = members.leader().commit
        with paused(*pair.pids.values()):
            a, b = leader.snapshot().reshape(-1, 4096), backup.snapshot().reshape(-1, 4096)
            differ = np.flatnonzero(np.any(a != b, axis=1))
            out = sync_pages(leader, backup, state, make_channel=members.channel)
            np.testing.assert_array_equal(out.divergent_pages, differ)
            np.testing.assert_array_equal(leader.snapshot(), backup.snapshot())
        assert 0 < out.counts.divergent < out.counts.dirty_union
        # every round trip was an entry of the group's log, answered by the major backup
        assert members.leader().commit - commit_before >= out.counts.round_trips >= 2
        assert members.apps[members.major].endpoint is not None
        assert members.apps[members.standby].endpoint is None
    finally:
        pair.stop()


def test_the_major_backup_outranks_the_standby(members) -> None:
    members.leader()
    led = members.leader_id  # LEADER, unless a cold numba cache stalled it at start
    members.fail_leader()
    assert members.serving == MAJOR and members.nodes[members.leader_id].is_leader
    if led == LEADER:  # the member of the VM that serves now leads APUS, not the standby's
        assert members.leader_id == MAJOR


def test_a_refused_sync_message_is_a_clear_error(members) -> None:
    members.channel(BackupEndpoint(np.zeros(4, np.uint64), np.zeros(4, bool)))
    with pytest.raises(GaiaError, match="refused a sync message"):
        members.request_major(encode_compare(np.array([0]), np.array([1], np.uint64)))


def test_a_major_that_took_the_lead_is_replaced_and_answers(members) -> None:
    """A starved leader member loses the lead to the major's member, which cannot answer
    its own requests: the next sync message replaces that member and is answered."""
    starve = (lambda core: time.sleep(3.0), Future())  # the leader's thread misses ticks
    members.nodes[LEADER].runner.commands.put(starve)
    deadline = time.monotonic() + 60
    while not members.nodes[MAJOR].is_leader:
        assert time.monotonic() < deadline, "the major's member never took the lead"
        time.sleep(0.01)
    dirty = np.zeros(8, bool)
    dirty[3] = True
    channel = members.channel(BackupEndpoint(np.arange(8, dtype=np.uint64), dirty))
    leader_dirty = np.zeros(8, bool)
    leader_dirty[5] = True
    np.testing.assert_array_equal(np.flatnonzero(channel.exchange_dirty(leader_dirty)), [3, 5])
    assert members.major not in (LEADER, MAJOR, STANDBY)  # a fresh member
    assert MAJOR not in members.nodes and members.leader_id != members.major
    assert members.apps[members.major].endpoint is not None


def test_members_that_join_after_the_first_ones_left_catch_up_and_answer(members) -> None:
    """Three failovers: by the third the leader is a member that joined at run time, and
    the fresh standby (its log empty, knowing only the spec's first members) must still
    reach it, catch up, and become a major backup that answers sync messages."""
    orderer = ApusOrderer(members)
    try:
        for cycle in range(3):
            for i in range(50):
                orderer.order(b"frame %d" % i)
            members.fail_leader()
            members.promote_standby()
            deadline = time.monotonic() + 30
            while members.nodes[members.standby].commit < members.leader().commit:
                assert time.monotonic() < deadline, "the new standby never caught up"
                time.sleep(0.01)
            if cycle == 2:  # every member the spec started has left
                assert members.leader_id not in (LEADER, MAJOR, STANDBY)
            channel = members.channel(BackupEndpoint(np.arange(8, dtype=np.uint64),
                                                     np.zeros(8, bool)))
            leader_dirty = np.zeros(8, bool)
            leader_dirty[2] = True
            np.testing.assert_array_equal(np.flatnonzero(channel.exchange_dirty(leader_dirty)),
                                          [2])
        assert len(orderer.frames_since(orderer.agreed - 50)) == 50
    finally:
        orderer.close()
