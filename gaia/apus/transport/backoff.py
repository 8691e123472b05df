"""Backoff for pollers: spin, then yield, then sleep (or futex-wait).

Why: a poller that only spins owns a core. With more replica processes than cores (3–9
replicas on 2 cores here) pure spinning starves the very peer whose write it waits for,
and latency jumps to the scheduler's time slice. Spinning first keeps the dedicated-core
case at memory speed; yielding and sleeping hand the core over when nothing arrives.
"""

from __future__ import annotations

import os
from typing import NamedTuple

import numpy as np
from numba import njit

from gaia.apus.transport.libc import futex_wait, now_ns, sleep_ns, yield_cpu
from gaia.lowlevel.atomics import cpu_relax, load_acquire


class BackoffPolicy(NamedTuple):
    """Idle rounds 0..spins-1 spin (x86 pause), the next `yields` rounds sched_yield, and
    every later round sleeps `sleep_ns` — on a futex word when `futex` is 1 and the caller
    passes one, so a writer can wake it early (`remote_wake`)."""

    spins: int = 4000
    yields: int = 200
    sleep_ns: int = 20_000
    futex: int = 0


SPIN_ONLY = BackoffPolicy(spins=1 << 62, yields=0, sleep_ns=0, futex=0)
SHARED_CORES = BackoffPolicy()


def policy_for(processes_on_host: int, cpus: int | None = None) -> BackoffPolicy:
    """Spin only when every polling process has a core of its own; back off otherwise."""
    cpus = cpus or os.cpu_count() or 1
    return SPIN_ONLY if processes_on_host <= cpus else SHARED_CORES


@njit(nogil=True, cache=True)
def backoff_state() -> np.ndarray:
    """The idle-round counter a poller carries (reset it on progress)."""
    return np.zeros(1, dtype=np.int64)


@njit(nogil=True, cache=True)
def backoff_idle(
    policy: BackoffPolicy, state: np.ndarray, word_address: int = 0, expected: int = 0
) -> None:
    """One idle round: call when a poll found nothing new."""
    rounds = state[0]
    state[0] = rounds + 1
    if rounds < policy.spins:
        cpu_relax()
    elif rounds < policy.spins + policy.yields:
        yield_cpu()
    elif policy.futex != 0 and word_address != 0:
        futex_wait(word_address, expected, policy.sleep_ns)
    else:
        sleep_ns(policy.sleep_ns)


@njit(nogil=True, cache=True)
def backoff_reset(state: np.ndarray) -> None:
    """Progress was made: start the next wait with spinning again."""
    state[0] = 0


@njit(nogil=True, cache=True)
def await_word(words: np.ndarray, index: int, value: int, policy: BackoffPolicy,
               state: np.ndarray, limit_ns: int) -> bool:
    """Poll words[index] (acquire) until it equals `value`, backing off by `policy`;
    False once `limit_ns` has passed (the peer is presumably gone)."""
    backoff_reset(state)
    start = now_ns()
    polls = 0
    while load_acquire(words, index) != value:
        backoff_idle(policy, state)
        polls += 1
        if polls % 4096 == 0 and now_ns() - start > limit_ns:
            return False
    return True
