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
from gaia.lowlevel.atomics import cpu_relax, load_acquire
from gaia.lowlevel.syscalls import futex_wait, now_ns, yield_cpu

# Slow-path reasons the loop always returns for (EV_COMMITTED only with an in-process app).
ALWAYS = (fp.EV_MAIL | fp.EV_HIGHER_VIEW | fp.EV_SLOW_ENTRY | fp.EV_LOG_FULL
          | fp.EV_NEED_SNAPSHOT | fp.EV_ABANDONED | fp.EV_DISK_ERROR)
STAMP_EVERY_NS = 1_000_000


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
    flags = fp.poll_once(fa, th, ob)  # anything that landed before we read the word
    if flags & (mask | fp.EV_PROGRESS) == 0:
        futex_wait(fa.region.ctypes.data + WAKE_OFFSET, seen, nap)
        flags = fp.poll_once(fa, th, ob)
    return flags


@njit(nogil=True, cache=True)
def hot_loop(fa: fp.FastArrays, th, ob, deadline_ns: int, policy: BackoffPolicy, mask: int,
             bstate: np.ndarray) -> int:
    """Run the normal case until `mask` flags come up or deadline_ns passes (EV_TICK)."""
    stamped = 0
    while True:
        flags = fp.poll_once(fa, th, ob)
        while True:
            if flags & mask:
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
