"""The ring protocol between producers and the replica's numba consumer (no server)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from gaia.intercept import ring_layout as L
from gaia.intercept.events import decode_batch
from gaia.intercept.local_commit import LocalCommitter
from gaia.intercept.ring import (
    ProposalFailed,
    nb_mark_committed,
    nb_mark_failed,
    nb_poll_batch,
)


def test_concurrent_producers_commit_every_event_once_in_order(shm):
    ring = shm.ring("r", slot_count=8)  # tiny: producers wrap around it many times
    log = shm.log()
    per_thread, threads = 300, 3
    indices: dict[int, list[int]] = {}

    def produce(tid: int) -> None:
        indices[tid] = [ring.propose(f"{tid}:{i}".encode()) for i in range(per_thread)]

    with LocalCommitter(ring, log) as committer:
        workers = [threading.Thread(target=produce, args=(t,)) for t in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(60)
    assert committer.events == per_thread * threads
    logged = [(i, ev.payload.decode()) for i in range(1, log.commit_index() + 1)
              for ev in decode_batch(log.entry(i))]
    assert sorted(p for _, p in logged) == sorted(
        f"{t}:{i}" for t in range(threads) for i in range(per_thread))
    for tid, got in indices.items():
        assert got == sorted(got), "a producer's events committed out of its order"
        in_log = [i for i, p in logged if p.startswith(f"{tid}:")]
        assert got == in_log, "the index a producer got is not where its event is"


def test_poll_batch_respects_its_limits_and_frees_nowait_slots(shm):
    ring = shm.ring("r", slot_count=8)
    for i in range(5):
        ring.propose(b"x" * (10 + i), wait=False)
    out = np.zeros(1 << 16, np.uint8)
    count, nbytes, first = nb_poll_batch(ring.seg, out, out.shape[0], 2)
    assert (count, first) == (2, 0)
    assert [e.payload for e in decode_batch(out[:nbytes])] == [b"x" * 10, b"x" * 11]
    # 8 + 16 + 12 and 8 + 16 + 13 bytes do not both fit in 60
    count2, _, first2 = nb_poll_batch(ring.seg, out, 60, 10)
    assert (count2, first2) == (1, 2)
    assert nb_mark_committed(ring.seg, np.uint64(first), count, np.uint64(1)) == 0
    seqs = [int(ring.u64[(L.RING_HEADER_SIZE + s * L.RING_DEFAULT_SLOT_SIZE) // 8])
            for s in range(3)]
    assert seqs == [8, 9, 3], "NOWAIT slots are freed by the consumer at commit"
    assert ring.commit_index == 1


def test_a_failed_entry_fails_its_producer(shm):
    ring = shm.ring("r")
    out = np.zeros(1 << 16, np.uint8)
    result: dict[str, BaseException] = {}

    def propose() -> None:
        try:
            ring.propose(b"doomed", timeout=10)
        except ProposalFailed as exc:
            result["err"] = exc

    t = threading.Thread(target=propose)
    t.start()
    while (batch := nb_poll_batch(ring.seg, out, out.shape[0], 8))[0] == 0:
        ring.heartbeat()
        time.sleep(0.001)
    nb_mark_failed(ring.seg, np.uint64(batch[2]), batch[0], np.uint64(77))
    t.join(10)
    assert "code 77" in str(result["err"])


def test_producer_gives_up_when_the_replica_is_dead_and_consumer_learns_it(shm):
    ring = shm.ring("r", dead_ns=100_000_000)
    ring.heartbeat()
    with pytest.raises(ProposalFailed, match=f"status {L.ST_ABANDONED}"):
        ring.propose(b"late", timeout=30)  # nobody consumes; heartbeat goes stale
    out = np.zeros(1 << 16, np.uint8)
    count, _, first = nb_poll_batch(ring.seg, out, out.shape[0], 8)
    assert count == 1
    assert nb_mark_committed(ring.seg, np.uint64(first), count, np.uint64(1)) == 1
    assert int(ring.u64[L.RING_HEADER_SIZE // 8]) == L.RING_DEFAULT_SLOTS, "slot not freed"


def test_a_down_replica_takes_no_proposal(shm):
    ring = shm.ring("r")
    ring.state = L.REPLICA_DOWN
    with pytest.raises(ProposalFailed):
        ring.propose(b"x", timeout=30)


def _write_snapshot(ring, conn_id: int, index: int) -> None:
    """What the shim does (gaia_ring.h, Output snapshots)."""
    ticket = int(ring.u64[L.H_SNAP_TAIL // 8])
    ring.u64[L.H_SNAP_TAIL // 8] = ticket + 1
    count = int(ring.u32[L.H_SNAP_COUNT // 4])
    off = int(ring.u64[L.H_SNAP_LOG_OFFSET // 8]) + (ticket % count) * L.SNAP_SIZE
    ring.u64[(off + L.P_LOG_CONN_ID) // 8] = conn_id
    ring.u64[(off + L.P_LOG_INDEX) // 8] = index
    ring.u64[(off + L.P_SEQ) // 8] = ticket + 1


def test_snapshot_reader_counts_records_lost_to_overwriting(shm):
    ring = shm.ring("r", snap_count=4)
    for i in range(6):
        _write_snapshot(ring, 9, i + 1)
    records, nxt, lost = ring.snapshots(0)
    assert (nxt, lost) == (6, 2)
    assert [r.log_index for r in records] == [3, 4, 5, 6]
    assert ring.snapshots(nxt) == ([], 6, 0)


def test_bad_ring_parameters_are_user_errors(shm):
    from gaia.errors import GaiaError

    with pytest.raises(GaiaError, match="power of two"):
        shm.ring("bad", slot_count=6)
    shm.ring("dup")
    with pytest.raises(GaiaError, match="already exists"):
        shm.ring("dup")
