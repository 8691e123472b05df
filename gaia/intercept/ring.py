"""The shim <-> replica ring (gaia_ring.h, version 2) from Python and numba.

Why numba: the APUS replica's hot loop takes events from the ring, proposes them and marks
them committed without returning to Python; every function prefixed `nb_` is nopython +
nogil and takes the mapped segment as a uint8 array (`Ring.seg`). `Ring` wraps creation,
mapping and the slow paths (Python producers of RAW events, reading the connection table
and the output snapshots).

Consumer loop of a replica (see gaia_ring.h for the protocol):

    count, nbytes, first = nb_poll_batch(seg, out, max_bytes, max_events)
    ... propose out[:nbytes] as one log entry (events.py encoding) ...
    nb_mark_committed(seg, first, count, log_index)   # or nb_mark_failed(...)
    nb_heartbeat(seg) at least every dead_ns / 4; nb_wait_events(...) when idle.
"""

from __future__ import annotations

import mmap
import os
import time
from dataclasses import dataclass

import numpy as np
from numba import njit

from gaia.errors import GaiaError
from gaia.intercept import events as E
from gaia.intercept import ring_layout as L
from gaia.intercept.shm import ShmSegment, shm_path
from gaia.lowlevel.atomics import (
    compare_exchange,
    fetch_add,
    full_fence,
    load_acquire,
    store_release,
)
from gaia.lowlevel.syscalls import futex_wait, futex_wake, now_ns
from gaia.proc import pid_alive

_SPIN_NS = 20_000
_SLEEP_SLICE_NS = 5_000_000


class ProposalFailed(RuntimeError):
    """A RAW proposal was not committed (replica down, failed or timed out)."""


# ---- numba: addressing ----------------------------------------------------------------
@njit(nogil=True, cache=True)
def nb_load_u64(seg: np.ndarray, offset: int) -> np.uint64:
    return load_acquire(seg.view(np.uint64), offset // 8)


@njit(nogil=True, cache=True)
def nb_store_u64(seg: np.ndarray, offset: int, value: np.uint64) -> None:
    store_release(seg.view(np.uint64), offset // 8, value)


@njit(nogil=True, cache=True)
def nb_load_u32(seg: np.ndarray, offset: int) -> np.uint32:
    return load_acquire(seg.view(np.uint32), offset // 4)


@njit(nogil=True, cache=True)
def nb_store_u32(seg: np.ndarray, offset: int, value: np.uint32) -> None:
    store_release(seg.view(np.uint32), offset // 4, value)


@njit(nogil=True, cache=True)
def nb_or_u32(seg: np.ndarray, offset: int, bits: np.uint32) -> None:
    """Atomically set `bits` in a u32 the shim also updates (a CAS loop)."""
    u32 = seg.view(np.uint32)
    i = offset // 4
    old = load_acquire(u32, i)
    while True:
        seen = compare_exchange(u32, i, old, np.uint32(old | bits))
        if seen == old:
            return
        old = seen


@njit(nogil=True, cache=True)
def nb_slot_offset(seg: np.ndarray, ticket: np.uint64) -> int:
    u32 = seg.view(np.uint32)
    count = np.uint64(u32[L.H_SLOT_COUNT // 4])
    size = int(u32[L.H_SLOT_SIZE // 4])
    return L.RING_HEADER_SIZE + int(ticket & (count - np.uint64(1))) * size


# ---- numba: replica side (consumer) ----------------------------------------------------
@njit(nogil=True, cache=True)
def nb_event_ready(seg: np.ndarray) -> bool:
    """True if the slot at head holds a published event."""
    u64 = seg.view(np.uint64)
    head = u64[L.H_HEAD // 8]
    off = nb_slot_offset(seg, head)
    return load_acquire(u64, off // 8) == head + np.uint64(1)


@njit(nogil=True, cache=True)
def nb_poll_batch(
    seg: np.ndarray, out: np.ndarray, max_bytes: int, max_events: int
) -> tuple[int, int, np.uint64]:
    """Take consecutive published events from head into `out` as one events.py batch.

    Returns (count, nbytes, first_ticket); count 0 when none is ready. Stops before an
    event that would not fit in min(max_bytes, len(out)) or after max_events. The batch's
    tickets are first_ticket .. first_ticket+count-1: pass them to nb_mark_committed."""
    u64 = seg.view(np.uint64)
    u32 = seg.view(np.uint32)
    head = u64[L.H_HEAD // 8]
    limit = min(max_bytes, out.shape[0])
    pos = E.nb_batch_begin(out)
    count = 0
    while count < max_events:
        ticket = head + np.uint64(count)
        off = nb_slot_offset(seg, ticket)
        if load_acquire(u64, off // 8) != ticket + np.uint64(1):
            break
        length = int(u32[(off + L.S_LENGTH) // 4])
        if pos + E.EVENT_HEADER + length > limit:
            break
        pos = E.nb_put_event(
            out,
            pos,
            int(u32[(off + L.S_KIND) // 4]),
            int(u32[(off + L.S_FLAGS) // 4]),
            u64[(off + L.S_CONN_ID) // 8],
            seg,
            off + L.S_PAYLOAD,
            length,
        )
        count += 1
    if count == 0:
        return 0, 0, head
    E.nb_batch_finish(out, count)
    store_release(u64, L.H_HEAD // 8, head + np.uint64(count))
    return count, pos, head


@njit(nogil=True, cache=True)
def _wake_committers(seg: np.ndarray) -> None:
    u32 = seg.view(np.uint32)
    fetch_add(u32, L.H_COMMIT_FUTEX // 4, 1)
    if load_acquire(u32, L.H_COMMIT_WAITERS // 4) != 0:
        futex_wake(seg.ctypes.data + L.H_COMMIT_FUTEX, 1 << 30)


@njit(nogil=True, cache=True)
def _decide(seg: np.ndarray, first: np.uint64, count: int, status: int, value: np.uint64) -> int:
    u64 = seg.view(np.uint64)
    u32 = seg.view(np.uint32)
    slots = np.uint64(u32[L.H_SLOT_COUNT // 4])
    abandoned = 0
    for i in range(count):
        ticket = first + np.uint64(i)
        off = nb_slot_offset(seg, ticket)
        u64[(off + L.S_LOG_INDEX) // 8] = value
        seen = compare_exchange(u32, (off + L.S_STATUS) // 4, L.ST_PENDING, status)
        nowait = (u32[(off + L.S_FLAGS) // 4] & L.EV_NOWAIT) != 0
        if seen == L.ST_ABANDONED:
            abandoned += 1
        if seen == L.ST_ABANDONED or nowait:
            store_release(u64, off // 8, ticket + slots)
    _wake_committers(seg)
    return abandoned


@njit(nogil=True, cache=True)
def nb_mark_committed(seg: np.ndarray, first: np.uint64, count: int, log_index: np.uint64) -> int:
    """The batch's events committed at `log_index`: wake their producers, free NOWAIT and
    abandoned slots, raise commit_index. Returns how many were ABANDONED by their producer
    (non-zero: the leader's server did not execute them — step down)."""
    abandoned = _decide(seg, first, count, L.ST_COMMITTED, np.uint64(log_index))
    u64 = seg.view(np.uint64)
    if u64[L.H_COMMIT_INDEX // 8] < log_index:
        store_release(u64, L.H_COMMIT_INDEX // 8, np.uint64(log_index))
    return abandoned


@njit(nogil=True, cache=True)
def nb_mark_failed(seg: np.ndarray, first: np.uint64, count: int, code: np.uint64) -> int:
    """The batch will never commit (e.g. the replica lost leadership): producers fail."""
    return _decide(seg, first, count, L.ST_FAILED, np.uint64(code))


@njit(nogil=True, cache=True)
def nb_heartbeat(seg: np.ndarray) -> None:
    store_release(seg.view(np.uint64), L.H_REPLICA_HEARTBEAT_NS // 8, np.uint64(now_ns()))


@njit(nogil=True, cache=True)
def nb_set_state(seg: np.ndarray, state: int) -> None:
    """replica_state = LEADER / BACKUP / DOWN / STARTING (producers read it at every call)."""
    store_release(seg.view(np.uint32), L.H_REPLICA_STATE // 4, np.uint32(state))


@njit(nogil=True, cache=True)
def nb_set_view(seg: np.ndarray, view: np.uint64) -> None:
    store_release(seg.view(np.uint64), L.H_VIEW // 8, np.uint64(view))


@njit(nogil=True, cache=True)
def nb_set_commit_index(seg: np.ndarray, index: np.uint64) -> None:
    store_release(seg.view(np.uint64), L.H_COMMIT_INDEX // 8, np.uint64(index))


@njit(nogil=True, cache=True)
def nb_wait_events(seg: np.ndarray, spin_ns: int, sleep_ns: int) -> bool:
    """Spin up to spin_ns for an event at head, then sleep on consumer_futex (at most
    sleep_ns). Returns True if an event is ready."""
    start = now_ns()
    while now_ns() - start < spin_ns:
        for _ in range(64):
            if nb_event_ready(seg):
                return True
    u32 = seg.view(np.uint32)
    value = load_acquire(u32, L.H_CONSUMER_FUTEX // 4)
    store_release(u32, L.H_CONSUMER_SLEEPING // 4, np.uint32(1))
    full_fence()
    if not nb_event_ready(seg):
        futex_wait(seg.ctypes.data + L.H_CONSUMER_FUTEX, value, sleep_ns)
    store_release(u32, L.H_CONSUMER_SLEEPING // 4, np.uint32(0))
    return nb_event_ready(seg)


# ---- numba: generic producer (RAW events from Python) -------------------------------
@njit(nogil=True, cache=True)
def _replica_alive(seg: np.ndarray) -> bool:
    u64 = seg.view(np.uint64)
    u32 = seg.view(np.uint32)
    if load_acquire(u32, L.H_REPLICA_STATE // 4) == L.REPLICA_DOWN:
        return False
    limit = int(load_acquire(u64, L.H_DEAD_NS // 8))
    if limit == 0:
        limit = L.RING_DEAD_NS
    return now_ns() - int(load_acquire(u64, L.H_REPLICA_HEARTBEAT_NS // 8)) <= limit


@njit(nogil=True, cache=True)
def nb_produce(
    seg: np.ndarray, kind: int, flags: int, conn_id: np.uint64, payload: np.ndarray, pid: int
) -> np.int64:
    """Publish one event (len(payload) <= max_payload). Returns its ticket, or -1 if the
    replica died while the ring was full."""
    u64 = seg.view(np.uint64)
    u32 = seg.view(np.uint32)
    ticket = fetch_add(u64, L.H_TAIL // 8, 1)
    off = nb_slot_offset(seg, ticket)
    spins = 0
    while load_acquire(u64, off // 8) != ticket:
        spins += 1
        if spins % 1024 == 0 and not _replica_alive(seg):
            return -1
    n = payload.shape[0]
    u32[(off + L.S_KIND) // 4] = kind
    u32[(off + L.S_FLAGS) // 4] = flags
    u32[(off + L.S_LENGTH) // 4] = n
    u64[(off + L.S_CONN_ID) // 8] = conn_id
    u64[(off + L.S_LOG_INDEX) // 8] = 0
    u64[(off + L.S_PRODUCER) // 8] = pid
    seg[off + L.S_PAYLOAD : off + L.S_PAYLOAD + n] = payload
    u32[(off + L.S_STATUS) // 4] = L.ST_PENDING
    store_release(u64, off // 8, ticket + np.uint64(1))
    full_fence()
    if load_acquire(u32, L.H_CONSUMER_SLEEPING // 4) != 0:
        fetch_add(u32, L.H_CONSUMER_FUTEX // 4, 1)
        futex_wake(seg.ctypes.data + L.H_CONSUMER_FUTEX, 1)
    return np.int64(ticket)


@njit(nogil=True, cache=True)
def nb_await(
    seg: np.ndarray, ticket: np.uint64, spin_ns: int, timeout_ns: int
) -> tuple[int, np.uint64]:
    """Wait for a (non-NOWAIT) event's outcome and free its slot.
    Returns (status, log_index or error code); ST_ABANDONED on timeout or dead replica."""
    u64 = seg.view(np.uint64)
    u32 = seg.view(np.uint32)
    off = nb_slot_offset(seg, ticket)
    st_idx = (off + L.S_STATUS) // 4
    start = now_ns()
    while load_acquire(u32, st_idx) == L.ST_PENDING:
        waited = now_ns() - start
        if waited < spin_ns:
            continue
        if waited > timeout_ns or not _replica_alive(seg):
            if compare_exchange(u32, st_idx, L.ST_PENDING, L.ST_ABANDONED) == L.ST_PENDING:
                return L.ST_ABANDONED, np.uint64(0)
            break
        fetch_add(u32, L.H_COMMIT_WAITERS // 4, 1)
        value = load_acquire(u32, L.H_COMMIT_FUTEX // 4)
        if load_acquire(u32, st_idx) == L.ST_PENDING:
            futex_wait(seg.ctypes.data + L.H_COMMIT_FUTEX, value, _SLEEP_SLICE_NS)
        fetch_add(u32, L.H_COMMIT_WAITERS // 4, np.uint32(0xFFFFFFFF))
    status = int(load_acquire(u32, st_idx))
    result = u64[(off + L.S_LOG_INDEX) // 8]
    slots = np.uint64(u32[L.H_SLOT_COUNT // 4])
    store_release(u64, off // 8, ticket + slots)
    return status, result


@njit(nogil=True, cache=True)
def nb_wait_progress(seg: np.ndarray, seen: np.uint32, timeout_ns: int) -> None:
    """Sleep until a backup's shim reports input progress (progress_futex != seen) or
    timeout_ns passes. Callers re-check their condition."""
    u32 = seg.view(np.uint32)
    fetch_add(u32, L.H_PROGRESS_WAITERS // 4, 1)
    if load_acquire(u32, L.H_PROGRESS_FUTEX // 4) == seen:
        futex_wait(seg.ctypes.data + L.H_PROGRESS_FUTEX, seen, timeout_ns)
    fetch_add(u32, L.H_PROGRESS_WAITERS // 4, np.uint32(0xFFFFFFFF))


# ---- Python: the segment ----------------------------------------------------------------
@dataclass(frozen=True)
class ConnEntry:
    """One row of the connection table (a copy, read without locking)."""

    index: int
    state: int
    peer_port: int
    conn_id: int
    log_conn_id: int
    in_bytes: int
    processed_bytes: int
    out_bytes: int
    out_hash: int
    last_input: int
    owner_pid: int = 0


@dataclass(frozen=True)
class Snapshot:
    """One output snapshot: the hash of everything the server wrote on connection
    `conn_id` (its id in the log) up to the input after `log_index` (out_*), and of the
    part written since the previous snapshot, i.e. in answer to input `log_index` (seg_*)."""

    conn_id: int
    log_index: int
    out_bytes: int
    out_hash: int
    at_close: bool
    seg_bytes: int = 0
    seg_hash: int = 0


class Ring(ShmSegment):
    """A mapped ring segment. `create` (the replica) or `open` (anyone else)."""

    what = "ring segment"

    def __init__(self, name: str, mm: mmap.mmap, owner: bool) -> None:
        super().__init__(name, mm, owner)
        self.u32 = self.seg.view(np.uint32)
        self.u64 = self.seg.view(np.uint64)

    # -- lifecycle --------------------------------------------------------------------
    @classmethod
    def create(
        cls,
        name: str,
        replica_id: int = 0,
        *,
        slot_count: int = L.RING_DEFAULT_SLOTS,
        slot_size: int = L.RING_DEFAULT_SLOT_SIZE,
        conn_count: int = L.RING_DEFAULT_CONNS,
        snap_count: int = L.RING_DEFAULT_SNAPS,
        group_id: bytes = b"",
        dead_ns: int = 0,
        state: int = L.REPLICA_STARTING,
    ) -> Ring:
        for what, value in (("slot_count", slot_count), ("snap_count", snap_count)):
            if value < 2 or value & (value - 1):
                raise GaiaError(
                    f"ring {what}={value} is not a power of two >= 2",
                    f"choose a power of two for {what}",
                )
        if slot_size % 64 or slot_size <= L.RING_SLOT_HEADER_SIZE:
            raise GaiaError(
                f"ring slot_size={slot_size} is not a multiple of 64 above 64", "use e.g. 16384"
            )
        conn_off, snap_off, size = L.segment_layout(slot_count, slot_size, conn_count, snap_count)
        ring = cls._create(name, size)
        u32, u64 = ring.u32, ring.u64
        u32[L.H_VERSION // 4] = L.RING_VERSION
        u32[L.H_SLOT_COUNT // 4] = slot_count
        u32[L.H_SLOT_SIZE // 4] = slot_size
        u32[L.H_MAX_PAYLOAD // 4] = slot_size - L.RING_SLOT_HEADER_SIZE
        ring.seg[L.H_GROUP_ID : L.H_GROUP_ID + 16] = np.frombuffer(
            group_id[:16].ljust(16, b"\0"), dtype=np.uint8
        )
        u32[L.H_REPLICA_ID // 4] = replica_id
        u32[L.H_CONN_GENERATION // 4] = ((replica_id & 0xFF) << 24) | 1
        u32[L.H_CONN_COUNT // 4] = conn_count
        u32[L.H_SNAP_COUNT // 4] = snap_count
        u64[L.H_CONN_TABLE_OFFSET // 8] = conn_off
        u64[L.H_SNAP_LOG_OFFSET // 8] = snap_off
        u64[L.H_SEGMENT_SIZE // 8] = size
        u64[L.H_DEAD_NS // 8] = dead_ns
        u32[L.H_REPLICA_STATE // 4] = state
        for i in range(slot_count):
            u64[(L.RING_HEADER_SIZE + i * slot_size) // 8] = i
        nb_heartbeat(ring.seg)
        nb_store_u64(ring.seg, L.H_MAGIC, np.uint64(L.RING_MAGIC))  # last: now valid
        return ring

    @classmethod
    def open(cls, name: str) -> Ring:
        ring = cls._open(name)
        if ring.u64[0] != L.RING_MAGIC or ring.u32[L.H_VERSION // 4] != L.RING_VERSION:
            ring.close()
            raise GaiaError(f"{shm_path(name)} is not a version {L.RING_VERSION} GAIA ring",
                            "recreate it with this version of GAIA")
        return ring

    def close(self) -> None:
        self.u32 = self.u64 = None  # type: ignore[assignment]
        super().close()

    # -- header ---------------------------------------------------------------------
    def _h32(self, offset: int) -> int:
        return int(nb_load_u32(self.seg, offset))

    def _h64(self, offset: int) -> int:
        return int(nb_load_u64(self.seg, offset))

    @property
    def state(self) -> int:
        return self._h32(L.H_REPLICA_STATE)

    @state.setter
    def state(self, value: int) -> None:
        nb_set_state(self.seg, value)

    @property
    def max_payload(self) -> int:
        return self._h32(L.H_MAX_PAYLOAD)

    @property
    def commit_index(self) -> int:
        return self._h64(L.H_COMMIT_INDEX)

    @property
    def progress(self) -> int:
        return self._h32(L.H_PROGRESS_FUTEX)

    def heartbeat(self) -> None:
        nb_heartbeat(self.seg)

    def set_view(self, view: int) -> None:
        nb_set_view(self.seg, np.uint64(view))

    def set_dead_ns(self, dead_ns: int) -> None:
        nb_store_u64(self.seg, L.H_DEAD_NS, np.uint64(dead_ns))

    # -- Python producer ---------------------------------------------------------------
    def propose(
        self,
        payload: bytes,
        kind: int = L.EV_RAW,
        conn_id: int = 0,
        wait: bool = True,
        timeout: float = 5.0,
    ) -> int:
        """Propose one event; with wait, return its log index once committed (else 0).
        Raises ProposalFailed when it is not committed."""
        if len(payload) > self.max_payload:
            raise ValueError(
                f"payload of {len(payload)} bytes > max_payload {self.max_payload}; split it"
            )
        flags = 0 if wait else L.EV_NOWAIT
        data = np.frombuffer(payload, dtype=np.uint8)
        ticket = nb_produce(self.seg, kind, flags, np.uint64(conn_id), data, os.getpid())
        if ticket < 0:
            raise ProposalFailed("the replica died while the ring was full")
        if not wait:
            return 0
        status, value = nb_await(self.seg, np.uint64(ticket), _SPIN_NS, int(timeout * 1e9))
        if status != L.ST_COMMITTED:
            raise ProposalFailed(f"event not committed (status {status}, code {int(value)})")
        return int(value)

    # -- connection table and snapshots ------------------------------------------------
    def _conn_off(self, index: int) -> int:
        return self._h64(L.H_CONN_TABLE_OFFSET) + index * L.CONN_SIZE

    def conn(self, index: int) -> ConnEntry:
        off = self._conn_off(index)
        u32, u64 = self.u32, self.u64
        return ConnEntry(
            index=index,
            state=int(u32[(off + L.C_STATE) // 4]),
            peer_port=int(u32[(off + L.C_PEER_PORT) // 4]),
            conn_id=int(u64[(off + L.C_CONN_ID) // 8]),
            log_conn_id=int(u64[(off + L.C_LOG_CONN_ID) // 8]),
            in_bytes=int(u64[(off + L.C_IN_BYTES) // 8]),
            processed_bytes=int(nb_load_u64(self.seg, off + L.C_PROCESSED_BYTES)),
            out_bytes=int(u64[(off + L.C_OUT_BYTES) // 8]),
            out_hash=int(u64[(off + L.C_OUT_HASH) // 8]),
            last_input=int(u64[(off + L.C_LAST_INPUT) // 8]),
            owner_pid=int(u32[(off + L.C_OWNER_PID) // 4]),
        )

    def conns(self) -> list[ConnEntry]:
        """Entries in use (OPEN or CLOSED, not yet freed)."""
        count = self._h32(L.H_CONN_COUNT)
        base = self._h64(L.H_CONN_TABLE_OFFSET)
        step = L.CONN_SIZE // 4
        # a copy: the shim changes states while numpy counts and then collects them
        states = self.u32[base // 4 : base // 4 + count * step : step].copy()
        return [self.conn(int(i)) for i in np.nonzero(states)[0]]

    def set_conn_u64(self, index: int, field: int, value: int) -> None:
        nb_store_u64(self.seg, self._conn_off(index) + field, np.uint64(value))

    def conn_u64(self, index: int, field: int) -> int:
        return int(nb_load_u64(self.seg, self._conn_off(index) + field))

    def conn_state(self, index: int) -> int:
        return int(nb_load_u32(self.seg, self._conn_off(index) + L.C_STATE))

    def trust_conn(self, index: int) -> None:
        """Let the connection's input run while the server is a backup (gaia_ring.h "Who
        may give a server input"): only for a local peer's own connection, before it
        sends anything."""
        nb_or_u32(self.seg, self._conn_off(index) + L.C_FLAGS, np.uint32(L.CONN_TRUSTED))

    def free_conn(self, index: int) -> None:
        nb_store_u32(self.seg, self._conn_off(index) + L.C_STATE, np.uint32(L.CONN_FREE))

    def reclaim(self) -> int:
        """Free CLOSED entries (a backup that became leader: no replayer frees them) and
        entries of a server process that is gone (killed, restarted). Returns how many."""
        stale = [e.index for e in self.conns()
                 if e.state == L.CONN_CLOSED or not _process_alive(e.owner_pid)]
        for index in stale:
            self.free_conn(index)
        return len(stale)

    def snap_tail(self) -> int:
        return self._h64(L.H_SNAP_TAIL)

    def snapshots(self, start: int = 0) -> tuple[list[Snapshot], int, int]:
        """Records from ticket `start` on: (records, next ticket, records lost to
        overwriting)."""
        tail = self.snap_tail()
        count = self._h32(L.H_SNAP_COUNT)
        base = self._h64(L.H_SNAP_LOG_OFFSET)
        lost = max(0, tail - count - start)
        records = []
        for ticket in range(start + lost, tail):
            off = base + (ticket % count) * L.SNAP_SIZE
            seq = int(nb_load_u64(self.seg, off + L.P_SEQ))
            if seq > ticket + 1:
                lost += 1  # overwritten by a newer record
                continue
            if seq < ticket + 1:
                return records, ticket, lost  # still being written: read it next time
            rec = Snapshot(
                conn_id=int(self.u64[(off + L.P_LOG_CONN_ID) // 8]),
                log_index=int(self.u64[(off + L.P_LOG_INDEX) // 8]),
                out_bytes=int(self.u64[(off + L.P_OUT_BYTES) // 8]),
                out_hash=int(self.u64[(off + L.P_OUT_HASH) // 8]),
                at_close=bool(self.u32[(off + L.P_AT_CLOSE) // 4]),
                seg_bytes=int(self.u64[(off + L.P_SEG_BYTES) // 8]),
                seg_hash=int(self.u64[(off + L.P_SEG_HASH) // 8]),
            )
            if int(nb_load_u64(self.seg, off + L.P_SEQ)) != ticket + 1:
                lost += 1
                continue
            records.append(rec)
        return records, tail, lost

    def wait_progress(self, seen: int, timeout: float) -> None:
        nb_wait_progress(self.seg, np.uint32(seen), int(timeout * 1e9))


def _process_alive(pid: int) -> bool:
    return pid <= 0 or pid_alive(pid)  # pid <= 0: not filled in yet, a claim in progress


def wait_until(predicate, timeout: float, what: str, interval: float = 0.001) -> None:
    """Poll `predicate` until true; TimeoutError naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.1f} s waiting for {what}")
        time.sleep(interval)
