"""The normal case of APUS (GAIA proposal, Figure 2) as numba functions over numpy arrays.

Written once, called twice: the runtime's hot loop (gaia/apus/runtime) and the
simulator both run `poll_once`, so the simulator tests the code that runs. Figure 2:

  L1  the leader takes input: ready events from the local input ring, batched into one
      log entry appended to the local log                               (`_take_inputs`)
  L2  it persists them: nothing in memory mode, append + one fdatasync per batch in
      fsync mode (group commit)                                         (`_persist`)
  L3  it writes each entry into every backup's region (its ring slot in the leader's
      block), never into a slot the backup has not acked yet            (`_send`)
  B1  a backup polls its own region, accepts the next entry when whole (canary +
      checksum, right index, the leader's view), copies it to its log, persists
                                                                        (`_accept`)
  B2  it writes its ack (view, persisted index) into the leader's region (`_ack`)
  commit: the leader counts acks of voters (itself included, learners excluded) and
      commits the majority index once it reaches an entry of its own view; the commit
      index rides on the next entry and on heartbeats                 (`_count_acks`)

Nothing here allocates or does I/O except through what it is given: remote writes go
through the transport's `remote_write(th, ...)`, or — when st[S_CAPTURE] is set (the
simulator, unit tests) — into an outbox `ob` that the caller drains and delivers itself;
the clock is read only when st[S_TIMING] is set (latency histograms). Everything not
normal (view change, catch-up, membership, snapshots) is the slow path in core.py,
entered through the returned flags.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from gaia.apus import layout as L
from gaia.apus import logstore as lgs
from gaia.apus import storage as dur
from gaia.apus import wire
from gaia.apus.transport import libc
from gaia.apus.transport.handle import KIND_SHM, remote_read_word, remote_wake, remote_write
from gaia.intercept.ring import nb_event_ready, nb_mark_committed, nb_mark_failed, nb_poll_batch
from gaia.lowlevel.atomics import fetch_add, full_fence, load_acquire

# -- st: this replica's scalars (int64) ----------------------------------------------
S_ID = 0
S_VIEW = 1
S_ROLE = 2
S_LEADER = 3
S_NORMAL = 4  # 1: leader established / backup synced in S_VIEW; the fast path may act
S_VIEW_START = 5  # leader: index of its view's first entry (commit needs to reach it)
S_COMMIT = 6
S_PERSISTED = 7  # highest index durable here (in memory mode: the last appended)
S_DURABLE = 8
S_HB_COUNTER = 9  # leader: counter of the heartbeats it wrote
S_HB_SEEN = 10  # backup: the leader's last heartbeat counter seen
S_ACK_COUNTER = 11  # backup: the counter echoed in its acks (leader's liveness check)
S_ACKED = 12  # backup: the index of its last ack write
S_SLOW_AT = 13  # backup: a CONFIG/REQUEST entry that waits for Python (0: none)
S_HOLD_ACK = 14  # backup: do not ack at or beyond this index (a REQUEST's reply first)
S_BATCH_EVENTS = 15
S_PEND_HEAD = 16
S_PEND_TAIL = 17
S_HB_DUE = 18  # leader: write a heartbeat on the next poll
S_UNSAFE = 19  # a deliberately broken variant (tests prove the checker catches it)
S_TAKE = 20  # leader: 1 while it may take new inputs (0 during config changes, full log)
S_ACK_DUE = 21
S_INCARNATION = 22  # this process's run id (acks carry it)
S_CAPTURE = 23  # 1: writes go to the outbox (simulator), 0: to the transport
S_TIMING = 27  # 1: read the clock for the per-phase histograms
S_WAKE = 28  # 1: futex-wake peers after writing to them (their pollers may sleep)
S_WAKE_SEQ = 29
S_OUT = 24  # 3 words of scratch for ring_take
S_LEN = 32
# A word of the region's header page a poller sets (in its own region) while it may sleep
# on its wake word (runtime/loop.py); writers on shm read it before waking it.
SLEEPING_OFFSET = L.WAKE_OFFSET + 64

ROLE_BACKUP = 0
ROLE_LEADER = 1
ROLE_CANDIDATE = 2

UNSAFE_COMMIT_ALONE = 1  # commit what the leader alone has persisted

# -- pr: per peer (int64 [max_members, P_LEN]) ---------------------------------------
P_VOTER = 0  # counts toward the quorum (self included)
P_MEMBER = 1  # a peer the leader replicates to (voters and learners, not self)
P_SENT = 2  # next index to write into its ring (0: not streaming to it)
P_ACKED = 3  # highest index it acked in this view
P_ACK_COUNTER = 4
P_DOORBELL = 5  # last mailbox doorbell seen from it
P_NEED = 6  # 1: it needs entries below our log's first index (a snapshot)
P_INCARNATION = 7  # the run of the peer we synced; acks of other runs are ignored
P_LEN = 8

# -- pend: the leader's entries waiting for commit (int64 [n, PD_LEN]) -----------------
PD_INDEX = 0
PD_FIRST = 1  # first input ring ticket
PD_COUNT = 2
PD_T0 = 3  # taken (L1)
PD_T1 = 4  # persisted (L2)
PD_T2 = 5  # written to the backups (L3)
PD_LEN = 8

# -- events returned to the slow path ------------------------------------------------
EV_PROGRESS = 1
EV_MAIL = 2
EV_HIGHER_VIEW = 4
EV_SLOW_ENTRY = 8
EV_LOG_FULL = 16
EV_NEED_SNAPSHOT = 32
EV_COMMITTED = 64
EV_ABANDONED = 128
EV_DISK_ERROR = 256
EV_OVERSIZED = 512
EV_TICK = 1024  # the runtime's hot loop: a tick is due

# -- latency histograms (int64 [PH_LEN, HIST_BUCKETS]), values in ns ------------------
PH_PERSIST = 0  # L1 -> L2 done
PH_SEND = 1  # L2 -> L3 done
PH_QUORUM = 2  # L3 -> commit seen
PH_NOTIFY = 3  # commit seen -> producers woken
PH_COMMIT = 4  # L1 -> producers woken (the leader's whole share)
PH_BATCH = 5  # events per entry (a count, not ns)
PH_LEN = 6
HIST_SUB = 32
HIST_BUCKETS = 64 + 40 * HIST_SUB

FAIL_NOT_LEADER = 1  # codes in a FAILED ring slot's log_index
FAIL_VIEW_CHANGED = 2


class FastArrays(NamedTuple):
    """Every array the fast path touches, as one numba-typable argument."""

    st: np.ndarray
    pr: np.ndarray
    lay: np.ndarray
    region: np.ndarray
    region64: np.ndarray
    lg: np.ndarray
    lg64: np.ndarray
    rg: np.ndarray  # the input ring segment (gaia_ring.h; gaia.intercept.ring)
    scratch: np.ndarray
    scratch64: np.ndarray
    sm: np.ndarray
    sm64: np.ndarray
    pend: np.ndarray
    dbuf: np.ndarray
    dmeta: np.ndarray
    hist: np.ndarray


def new_state(replica_id: int, max_members: int, durable: bool) -> tuple[np.ndarray, np.ndarray]:
    st = np.zeros(S_LEN, dtype=np.int64)
    st[S_ID] = replica_id
    st[S_LEADER] = -1
    st[S_DURABLE] = int(durable)
    st[S_BATCH_EVENTS] = 64
    st[S_TAKE] = 1
    pr = np.zeros((max_members, P_LEN), dtype=np.int64)
    return st, pr


# -- offsets ----------------------------------------------------------------------------
@njit(nogil=True, cache=True, inline="always")
def block(lay: np.ndarray, sender: int) -> int:
    return np.int64(lay[L.L_BLOCK_BASE] + sender * lay[L.L_BLOCK_SIZE])


@njit(nogil=True, cache=True, inline="always")
def ring_slot(lay: np.ndarray, sender: int, index: int) -> int:
    return block(lay, sender) + np.int64(
        lay[L.L_RING] + (index % lay[L.L_RING_SLOTS]) * lay[L.L_SLOT_SIZE]
    )


# -- histograms -----------------------------------------------------------------------
@njit(nogil=True, cache=True)
def hist_bucket(value: int) -> int:
    if value < 64:
        return max(value, 0)
    e = 6
    while (value >> (e + 1)) != 0:
        e += 1
    b = 64 + (e - 6) * HIST_SUB + ((value >> (e - 5)) - HIST_SUB)
    return min(b, HIST_BUCKETS - 1)


def bucket_value(b: int) -> int:
    """A representative value (the middle) of histogram bucket b."""
    if b < 64:
        return b
    e = 6 + (b - 64) // HIST_SUB
    sub = (b - 64) % HIST_SUB + HIST_SUB
    width = 1 << (e - 5)
    return sub * width + width // 2


@njit(nogil=True, cache=True, inline="always")
def hist_record(hist: np.ndarray, phase: int, value: int) -> None:
    hist[phase, hist_bucket(value)] += 1


# -- writes, clock ---------------------------------------------------------------------
@njit(nogil=True, cache=True)
def outbox_write(ob, peer: int, offset: int, src: np.ndarray, start: int, length: int) -> int:
    """Record a write instead of doing it: ob = (bytes uint8[], meta int64[n, 4], count)."""
    data, meta, count = ob
    k = count[0]
    pos = 0 if k == 0 else meta[k - 1, 2] + meta[k - 1, 3]
    if k >= meta.shape[0] or pos + length > data.size:
        count[1] += 1  # overflow: the write is lost, as a full network would lose it
        return 1
    data[pos : pos + length] = src[start : start + length]
    meta[k, 0] = peer
    meta[k, 1] = offset
    meta[k, 2] = pos
    meta[k, 3] = length
    count[0] = k + 1
    return 1


@njit(nogil=True, cache=True)
def write(fa: FastArrays, th, ob, peer: int, offset: int, src: np.ndarray, start: int,
          length: int) -> int:
    """One-sided write into `peer`'s region (1: done or queued, 0: dropped)."""
    if fa.st[S_CAPTURE] != 0:
        return outbox_write(ob, peer, offset, src, start, length)
    return remote_write(th, peer, offset, src, start, length)


@njit(nogil=True, cache=True, inline="always")
def clock(fa: FastArrays) -> int:
    return libc.now_ns() if fa.st[S_TIMING] != 0 else 0


@njit(nogil=True, cache=True)
def wake(address: int) -> None:
    libc.futex_wake(address, 1 << 30)


@njit(nogil=True, cache=True)
def wake_peer(fa: FastArrays, th, ob, peer: int) -> None:
    """Change the peer's wake word and futex-wake it, so a poller that went to sleep on
    that word (runtime/loop.py) sees our writes now rather than after its nap. Only when
    the group's pollers sleep (st[S_WAKE]); spinners need no syscall. On shm we first
    read the peer's SLEEPING word and skip the wake (two writes and a syscall, ~1-2 µs
    per peer per entry) while it polls: with full fences on both sides (Dekker) either
    it sees our write in its last poll before sleeping or we see its flag."""
    st = fa.st
    if st[S_WAKE] == 0:
        return
    if st[S_CAPTURE] == 0 and th.kind == KIND_SHM:
        full_fence()
        if remote_read_word(th, peer, SLEEPING_OFFSET) == 0:
            return
    st[S_WAKE_SEQ] += 1
    fa.sm64[15] = np.uint64(((st[S_WAKE_SEQ] << 8) | st[S_ID]) & 0xFFFFFFFF)
    if write(fa, th, ob, peer, L.WAKE_OFFSET, fa.sm, 15 * 8, 8) == 1 and st[S_CAPTURE] == 0:
        remote_wake(th, peer, L.WAKE_OFFSET)


# -- small records ----------------------------------------------------------------------
@njit(nogil=True, cache=True)
def _write_small(fa: FastArrays, th, ob, peer: int, offset: int, nfields: int) -> int:
    """Seal fa.sm64[0:nfields] and write it (fields + canary) to peer at offset."""
    wire.small_seal(fa.sm64, 0, nfields)
    return write(fa, th, ob, peer, offset, fa.sm, 0, (nfields + 1) * 8)


@njit(nogil=True, cache=True)
def write_heartbeat(fa: FastArrays, th, ob) -> None:
    """Leader -> every member: view, commit, counter, last index (block self of theirs)."""
    st = fa.st
    st[S_HB_COUNTER] += 1
    st[S_HB_DUE] = 0
    me = np.int64(st[S_ID])
    off = block(fa.lay, me) + np.int64(fa.lay[L.L_HB])
    for p in range(fa.pr.shape[0]):
        if fa.pr[p, P_MEMBER] == 0:
            continue
        fa.sm64[wire.H_VIEW] = np.uint64(st[S_VIEW])
        fa.sm64[wire.H_COMMIT] = np.uint64(st[S_COMMIT])
        fa.sm64[wire.H_COUNTER] = np.uint64(st[S_HB_COUNTER])
        fa.sm64[wire.H_LAST] = np.uint64(lgs.log_last(fa.lg64))
        _write_small(fa, th, ob, p, off, wire.HB_WORDS)
        wake_peer(fa, th, ob, p)


@njit(nogil=True, cache=True)
def write_ack(fa: FastArrays, th, ob) -> None:
    """Backup -> leader: the index it has persisted in this view (B2)."""
    st = fa.st
    upto = st[S_PERSISTED]
    if st[S_HOLD_ACK] > 0 and upto >= st[S_HOLD_ACK]:
        upto = st[S_HOLD_ACK] - 1
    fa.sm64[wire.A_VIEW] = np.uint64(st[S_VIEW])
    fa.sm64[wire.A_INDEX] = np.uint64(upto)
    fa.sm64[wire.A_COUNTER] = np.uint64(st[S_ACK_COUNTER])
    fa.sm64[wire.A_INCARNATION] = np.uint64(st[S_INCARNATION])
    off = block(fa.lay, np.int64(st[S_ID])) + np.int64(fa.lay[L.L_ACK])
    if _write_small(fa, th, ob, np.int64(st[S_LEADER]), off, wire.ACK_WORDS) == 1:
        st[S_ACKED] = upto
        st[S_ACK_DUE] = 0
        wake_peer(fa, th, ob, np.int64(st[S_LEADER]))


# -- the leader ---------------------------------------------------------------------
@njit(nogil=True, cache=True)
def _take_inputs(fa: FastArrays, now: int) -> int:
    """L1: batch ready input events into new log entries. Returns entries appended."""
    st = fa.st
    pend = fa.pend
    cap = pend.shape[0]
    max_payload = np.int64(fa.lay[L.L_MAX_PAYLOAD])
    made = 0
    # at most half the log uncommitted: a new leader must always find room for its NOOP
    room = np.int64(fa.lg64[lgs.G_INDEX_CAP]) // 2
    while st[S_PEND_TAIL] - st[S_PEND_HEAD] < cap and nb_event_ready(fa.rg):
        if lgs.log_last(fa.lg64) - st[S_COMMIT] >= room:
            break
        if lgs.log_reserve(fa.lg64, wire.entry_words(max_payload)) < 0:
            st[S_TAKE] = 0  # full: the slow path compacts and re-enables
            break
        count, n, first = nb_poll_batch(fa.rg, fa.scratch, max_payload, np.int64(st[S_BATCH_EVENTS]))
        if count == 0:
            break
        index = lgs.log_append(fa.lg, fa.lg64, np.int64(st[S_VIEW]), wire.K_EVENTS, fa.scratch, 0, n)
        row = st[S_PEND_TAIL] % cap
        pend[row, PD_INDEX] = index
        pend[row, PD_FIRST] = np.int64(first)
        pend[row, PD_COUNT] = count
        pend[row, PD_T0] = now
        pend[row, PD_T1] = 0
        pend[row, PD_T2] = 0
        st[S_PEND_TAIL] += 1
        hist_record(fa.hist, PH_BATCH, count)
        made += 1
    return made


@njit(nogil=True, cache=True)
def _persist(fa: FastArrays) -> bool:
    """L2 / B1: append the records after S_PERSISTED to the durable log, one sync."""
    st = fa.st
    last = lgs.log_last(fa.lg64)
    if st[S_PERSISTED] >= last:
        return True
    ok = True
    if st[S_DURABLE] != 0:
        for i in range(np.int64(st[S_PERSISTED]) + 1, last + 1):
            w = lgs.log_word(fa.lg64, i)
            n = wire.entry_words(wire.entry_length(fa.lg64, w)) * 8
            ok = ok and dur.dur_append(fa.dbuf, fa.dmeta, fa.lg, w * 8, n)
        ok = ok and dur.dur_sync(fa.dbuf, fa.dmeta)
    if ok:
        st[S_PERSISTED] = last
    return ok


@njit(nogil=True, cache=True)
def _send(fa: FastArrays, th, ob) -> int:
    """L3: write every entry a member has not got yet into its ring, within flow control
    (never more than ring_slots ahead of its ack). Returns the flags it raises."""
    st = fa.st
    pr = fa.pr
    me = np.int64(st[S_ID])
    view = np.int64(st[S_VIEW])
    commit = np.int64(st[S_COMMIT])
    first = lgs.log_first(fa.lg64)
    last = lgs.log_last(fa.lg64)
    nslots = np.int64(fa.lay[L.L_RING_SLOTS])
    flags = 0
    for p in range(pr.shape[0]):
        if pr[p, P_MEMBER] == 0 or pr[p, P_SENT] == 0:
            continue
        before = pr[p, P_SENT]
        while pr[p, P_SENT] <= last and pr[p, P_SENT] <= pr[p, P_ACKED] + nslots:
            i = np.int64(pr[p, P_SENT])
            if i < first:
                pr[p, P_NEED] = 1
                flags |= EV_NEED_SNAPSHOT
                break
            w = lgs.log_word(fa.lg64, i)
            wire.entry_stamp(fa.lg64, w, view, commit)
            n = wire.entry_words(wire.entry_length(fa.lg64, w)) * 8
            if write(fa, th, ob, p, ring_slot(fa.lay, me, i), fa.lg, w * 8, n) != 1:
                break
            pr[p, P_SENT] = i + 1
        if pr[p, P_SENT] != before:
            wake_peer(fa, th, ob, p)
    return flags


@njit(nogil=True, cache=True)
def quorum_index(fa: FastArrays) -> int:
    """The highest index a majority of voters hold (the leader counts its own persisted
    index; learners do not count)."""
    st = fa.st
    pr = fa.pr
    me = np.int64(st[S_ID])
    n = 0
    for p in range(pr.shape[0]):
        n += 1 if pr[p, P_VOTER] != 0 else 0
    if n == 0:
        return 0
    need = n // 2 + 1
    best = 0
    for p in range(pr.shape[0]):
        if pr[p, P_VOTER] == 0:
            continue
        v = st[S_PERSISTED] if p == me else pr[p, P_ACKED]
        if v <= best:
            continue
        held = 0
        for q in range(pr.shape[0]):
            if pr[q, P_VOTER] != 0 and (st[S_PERSISTED] if q == me else pr[q, P_ACKED]) >= v:
                held += 1
        if held >= need:
            best = v
    return np.int64(best)


@njit(nogil=True, cache=True)
def _count_acks(fa: FastArrays) -> bool:
    """Read the acks in our region (B2 arriving) and advance the commit index."""
    st = fa.st
    pr = fa.pr
    view = np.int64(st[S_VIEW])
    last = lgs.log_last(fa.lg64)
    ack = fa.sm64[8 : 8 + wire.ACK_WORDS]
    for p in range(pr.shape[0]):
        if pr[p, P_MEMBER] == 0:
            continue
        w = (block(fa.lay, p) + np.int64(fa.lay[L.L_ACK])) // 8
        if not wire.small_read(fa.region64, w, wire.ACK_WORDS, ack):
            continue
        if np.int64(ack[wire.A_VIEW]) != view or np.int64(ack[wire.A_INCARNATION]) != pr[p, P_INCARNATION]:
            continue
        idx = np.int64(ack[wire.A_INDEX])
        if pr[p, P_ACKED] < idx <= last:
            pr[p, P_ACKED] = idx
        pr[p, P_ACK_COUNTER] = np.int64(ack[wire.A_COUNTER])
    if st[S_UNSAFE] == UNSAFE_COMMIT_ALONE:
        q = np.int64(st[S_PERSISTED])
    else:
        q = quorum_index(fa)
    if q > st[S_COMMIT] and q >= st[S_VIEW_START]:
        st[S_COMMIT] = q
        return True
    return False


@njit(nogil=True, cache=True)
def _notify_commits(fa: FastArrays, now: int) -> int:
    """Tell local producers which of their events committed (futex wake)."""
    st = fa.st
    pend = fa.pend
    cap = pend.shape[0]
    flags = 0
    done = 0
    while st[S_PEND_HEAD] < st[S_PEND_TAIL]:
        row = st[S_PEND_HEAD] % cap
        if pend[row, PD_INDEX] > st[S_COMMIT]:
            break
        abandoned = nb_mark_committed(fa.rg, np.uint64(pend[row, PD_FIRST]),
                                      np.int64(pend[row, PD_COUNT]), np.uint64(pend[row, PD_INDEX]))
        if abandoned > 0:
            flags |= EV_ABANDONED
        st[S_PEND_HEAD] += 1
        done += 1
    if done > 0 and st[S_TIMING] != 0:
        end = clock(fa)
        for k in range(done):
            row = (st[S_PEND_HEAD] - done + k) % cap
            t0 = pend[row, PD_T0]
            if t0 != 0 and pend[row, PD_T2] != 0:
                hist_record(fa.hist, PH_PERSIST, np.int64(pend[row, PD_T1] - t0))
                hist_record(fa.hist, PH_SEND, np.int64(pend[row, PD_T2] - pend[row, PD_T1]))
                hist_record(fa.hist, PH_QUORUM, np.int64(now - pend[row, PD_T2]))
                hist_record(fa.hist, PH_NOTIFY, np.int64(end - now))
                hist_record(fa.hist, PH_COMMIT, np.int64(end - t0))
    return flags


@njit(nogil=True, cache=True)
def fail_pending(fa: FastArrays, code: int) -> None:
    """The leader lost its view: entries not committed yet get FAILED (the producer may
    retry at the new leader; the entry itself may still commit later)."""
    st = fa.st
    pend = fa.pend
    cap = pend.shape[0]
    while st[S_PEND_HEAD] < st[S_PEND_TAIL]:
        row = st[S_PEND_HEAD] % cap
        nb_mark_failed(fa.rg, np.uint64(pend[row, PD_FIRST]), np.int64(pend[row, PD_COUNT]),
                       np.uint64(code))
        st[S_PEND_HEAD] += 1


@njit(nogil=True, cache=True)
def fail_inputs(fa: FastArrays, code: int) -> int:
    """Not the leader: events that arrive anyway are failed at once (fail closed)."""
    n = 0
    while nb_event_ready(fa.rg):
        count, _, first = nb_poll_batch(fa.rg, fa.scratch, fa.scratch.size, 64)
        if count == 0:
            break
        nb_mark_failed(fa.rg, first, count, np.uint64(code))
        n += count
    return n


@njit(nogil=True, cache=True)
def _set_log_commit(fa: FastArrays) -> None:
    lgs.log_set_commit(fa.lg64, np.int64(fa.st[S_COMMIT]))
    fetch_add(fa.lg64.view(np.uint32), lgs.G_FUTEX_W * 2, 1)
    if load_acquire(fa.lg64.view(np.uint32), lgs.G_FUTEX_W * 2 + 1) != 0:
        wake(fa.lg.ctypes.data + lgs.G_FUTEX_W * 8)


@njit(nogil=True, cache=True)
def leader_poll(fa: FastArrays, th, ob) -> int:
    st = fa.st
    flags = 0
    now = clock(fa)
    head0 = st[S_PEND_TAIL]
    if st[S_TAKE] != 0 and _take_inputs(fa, now) > 0:
        flags |= EV_PROGRESS
    if not _persist(fa):
        flags |= EV_DISK_ERROR
    t1 = clock(fa)
    flags |= _send(fa, th, ob)
    t2 = clock(fa)
    cap = fa.pend.shape[0]
    for k in range(head0, st[S_PEND_TAIL]):
        fa.pend[k % cap, PD_T1] = t1
        fa.pend[k % cap, PD_T2] = t2
    if st[S_TAKE] == 0:
        flags |= EV_LOG_FULL
    if _count_acks(fa):
        seen = clock(fa)
        _set_log_commit(fa)
        flags |= _notify_commits(fa, seen) | EV_COMMITTED | EV_PROGRESS
        st[S_HB_DUE] = 1
    if st[S_HB_DUE] != 0:
        write_heartbeat(fa, th, ob)
    return flags


# -- a backup -------------------------------------------------------------------------
@njit(nogil=True, cache=True)
def _accept(fa: FastArrays) -> int:
    """B1: copy every whole entry of the leader's view that follows our log into it."""
    st = fa.st
    if st[S_SLOW_AT] != 0:
        return 0
    leader = np.int64(st[S_LEADER])
    view = np.int64(st[S_VIEW])
    max_payload = np.int64(fa.lay[L.L_MAX_PAYLOAD])
    flags = 0
    hint = 0
    while True:
        i = lgs.log_last(fa.lg64) + 1
        w = ring_slot(fa.lay, leader, i) // 8
        if np.int64(load_acquire(fa.region64, w + wire.E_INDEX)) != i:  # never hoisted
            break
        if not wire.entry_valid(fa.region64, w, max_payload):
            break
        if (
            np.int64(fa.region64[w + wire.E_INDEX]) != i
            or np.int64(fa.region64[w + wire.E_SEND_VIEW]) != view
        ):
            break
        got = lgs.log_append_record(fa.lg64, fa.region64, w)
        if got < 0:
            flags |= EV_LOG_FULL
            break
        hint = max(hint, min(np.int64(fa.lg64[lgs.log_word(fa.lg64, i) + wire.E_COMMIT]), i))
        flags |= EV_PROGRESS
        kind = wire.entry_kind(fa.region64, w)
        if kind == wire.K_CONFIG or kind == wire.K_REQUEST:
            st[S_SLOW_AT] = i
            if kind == wire.K_REQUEST:
                st[S_HOLD_ACK] = i
            flags |= EV_SLOW_ENTRY
            break
    if hint > st[S_COMMIT]:
        st[S_COMMIT] = hint
        flags |= EV_COMMITTED
    return flags


@njit(nogil=True, cache=True)
def _read_heartbeat(fa: FastArrays) -> int:
    """The leader's heartbeat: commit index (bounded by what we hold) and liveness."""
    st = fa.st
    hb = fa.sm64[8 : 8 + wire.HB_WORDS]
    w = (block(fa.lay, np.int64(st[S_LEADER])) + np.int64(fa.lay[L.L_HB])) // 8
    if not wire.small_read(fa.region64, w, wire.HB_WORDS, hb):
        return 0
    if np.int64(hb[wire.H_VIEW]) != st[S_VIEW]:
        return 0
    flags = 0
    counter = np.int64(hb[wire.H_COUNTER])
    if counter != st[S_HB_SEEN]:
        st[S_HB_SEEN] = counter
        st[S_ACK_COUNTER] = counter
        st[S_ACK_DUE] = 1
    c = min(np.int64(hb[wire.H_COMMIT]), lgs.log_last(fa.lg64))
    if c > st[S_COMMIT]:
        st[S_COMMIT] = c
        flags |= EV_COMMITTED
    return flags


@njit(nogil=True, cache=True)
def backup_poll(fa: FastArrays, th, ob) -> int:
    st = fa.st
    flags = _accept(fa)
    if not _persist(fa):
        flags |= EV_DISK_ERROR
    flags |= _read_heartbeat(fa)
    upto = st[S_PERSISTED]
    if st[S_HOLD_ACK] > 0 and upto >= st[S_HOLD_ACK]:
        upto = st[S_HOLD_ACK] - 1
    if upto > st[S_ACKED] or st[S_ACK_DUE] != 0:
        write_ack(fa, th, ob)
    if flags & EV_COMMITTED:
        _set_log_commit(fa)
    return flags


# -- both -------------------------------------------------------------------------------
@njit(nogil=True, cache=True)
def watch(fa: FastArrays) -> int:
    """Slow-path triggers: a new mailbox message, or a heartbeat from a higher view."""
    st = fa.st
    pr = fa.pr
    me = np.int64(st[S_ID])
    flags = 0
    for p in range(pr.shape[0]):
        if p == me:
            continue
        b = block(fa.lay, p)
        if (
            np.int64(load_acquire(fa.region64, (b + np.int64(fa.lay[L.L_DOORBELL])) // 8))
            != pr[p, P_DOORBELL]
        ):
            flags |= EV_MAIL
        if (
            np.int64(load_acquire(fa.region64, (b + np.int64(fa.lay[L.L_HB])) // 8 + wire.H_VIEW))
            > st[S_VIEW]
        ):
            flags |= EV_HIGHER_VIEW
    return flags


@njit(nogil=True, cache=True)
def poll_once(fa: FastArrays, th, ob) -> int:
    """One pass of the normal case; returns EV_* flags (0: nothing happened)."""
    st = fa.st
    flags = 0
    if st[S_NORMAL] != 0:
        if st[S_ROLE] == ROLE_LEADER:
            flags = leader_poll(fa, th, ob)
        elif st[S_ROLE] == ROLE_BACKUP:
            flags = backup_poll(fa, th, ob)
    if st[S_ROLE] != ROLE_LEADER and nb_event_ready(fa.rg):
        fail_inputs(fa, FAIL_NOT_LEADER)
    return flags | watch(fa)
