"""The replica's hot loop: the fast path in numba until Python is needed or a tick is due.

No Python runs per entry: the loop polls (fastpath.poll_once) and returns only when the
fast path flags something for the slow path (mail, a higher view, a CONFIG/REQUEST entry,
a full log ...) or when the next tick is due. When a poll finds nothing it backs off:
spin, then sched_yield, then sleep — never past the tick deadline. An idle leader sleeps
on the input ring's consumer futex (producers wake it); everyone else sleeps on the wake
word of its own region, which writers bump and futex-wake after writing to it
(fastpath.wake_peer), so a sleeping backup or a leader waiting for acks wakes at once.
The loop also refreshes the input ring's liveness stamp, so producers see a live replica
even while its Python is starved of CPU.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from gaia.apus import fastpath as fp
from gaia.apus.layout import WAKE_OFFSET
from gaia.apus.transport.backoff import BackoffPolicy
from gaia.intercept.ring import nb_heartbeat, nb_wait_events
from gaia.intercept.ring_layout import ST_PENDING
from gaia.lowlevel.atomics import cpu_relax, full_fence, load_acquire, store_release
from gaia.lowlevel.syscalls import futex_wait, now_ns, yield_cpu

# Slow-path reasons the loop always returns for (EV_COMMITTED only with an in-process app).
ALWAYS = (fp.EV_MAIL | fp.EV_HIGHER_VIEW | fp.EV_SLOW_ENTRY | fp.EV_LOG_FULL
          | fp.EV_NEED_SNAPSHOT | fp.EV_ABANDONED | fp.EV_DISK_ERROR)
STAMP_EVERY_NS = 1_000_000
EV_WATCHED = 1 << 20  # watch_loop: the watched ring word left ST_PENDING


def return_mask(apply_in_process: bool) -> int:
    return ALWAYS | (fp.EV_COMMITTED if apply_in_process else 0)


@njit(nogil=True, cache=True)
def _nap(fa: fp.FastArrays, th, ob, nap: int, mask: int) -> int:
    """Sleep up to `nap` ns unless work shows up; returns the flags of a final poll."""
    st = fa.st
    if st[fp.S_ROLE] == fp.ROLE_LEADER and st[fp.S_PEND_HEAD] == st[fp.S_PEND_TAIL]:
        nb_wait_events(fa.rg, 0, nap)  # an idle leader: a producer's futex wake ends it
        return fp.poll_once(fa, th, ob)
    w32 = fa.region.view(np.uint32)
    seen = load_acquire(w32, WAKE_OFFSET // 4)
    store_release(fa.region64, fp.SLEEPING_OFFSET // 8, np.uint64(1))  # writers: wake me
    full_fence()  # our flag before our last look (writers: their write, then our flag)
    flags = fp.poll_once(fa, th, ob)  # anything that landed before the flag was seen
    if flags & (mask | fp.EV_PROGRESS) == 0:
        futex_wait(fa.region.ctypes.data + WAKE_OFFSET, seen, nap)
    store_release(fa.region64, fp.SLEEPING_OFFSET // 8, np.uint64(0))
    if flags & (mask | fp.EV_PROGRESS) == 0:
        flags = fp.poll_once(fa, th, ob)
    return flags


@njit(nogil=True, cache=True)
def hot_loop(fa: fp.FastArrays, th, ob, deadline_ns: int, policy: BackoffPolicy, mask: int,
             bstate: np.ndarray) -> int:
    """Run the normal case until `mask` flags come up or deadline_ns passes (EV_TICK)."""
    return watch_loop(fa, th, ob, deadline_ns, policy, mask, bstate, -1)


@njit(nogil=True, cache=True)
def watch_loop(fa: fp.FastArrays, th, ob, deadline_ns: int, policy: BackoffPolicy, mask: int,
               bstate: np.ndarray, watch: int) -> int:
    """hot_loop that also returns (EV_WATCHED) once the input ring's 32-bit word `watch`
    is no longer ST_PENDING (-1: no word): the leader-side closed loop (selfdrive.py)
    waits here for its own proposal, with the same polling and backoff as the hot loop."""
    stamped = 0
    u32 = fa.rg.view(np.uint32)
    while True:
        flags = fp.poll_once(fa, th, ob)
        while True:
            if watch >= 0 and load_acquire(u32, watch) != ST_PENDING:
                flags |= EV_WATCHED
            if flags & (mask | EV_WATCHED):
                return flags
            if flags & fp.EV_PROGRESS:
                bstate[0] = 0
                break
            now = now_ns()
            if now - stamped > STAMP_EVERY_NS:
                nb_heartbeat(fa.rg)
                stamped = now
            if now >= deadline_ns:
                return flags | fp.EV_TICK
            rounds = bstate[0]
            bstate[0] = rounds + 1
            if rounds < policy.spins:
                cpu_relax()
                break
            if rounds < policy.spins + policy.yields:
                yield_cpu()
                break
            flags = _nap(fa, th, ob, min(policy.sleep_ns, deadline_ns - now), mask)
