"""YCSB's AcknowledgedCounterGenerator: insert keys handed out in order, made visible to
readers only once every smaller key has been acknowledged.

Run-phase inserts take the next number from a counter starting at recordcount; the key
choosers (and the latest distribution) only pick keys up to `lastValue()`, the limit
below which every insert has completed, so a read never targets a key whose insert is
still in flight. Reproduced semantics (site.ycsb.generator.AcknowledgedCounterGenerator):

  * a window of 2^20 flags; acknowledging key k sets flag k & (2^20-1); finding it
    already set is the error "Too many unacknowledged insertion keys";
  * the acknowledger that wins a try-lock (never waits for it) advances the limit over
    consecutive set flags, clearing them; an acknowledger that loses the try-lock leaves
    its flag for the next winner, so the limit can lag by one acknowledgement, as in Java;
  * Java bounds that scan by comparing the full index with the masked old limit, which
    never matches; the scan really ends at the first unset flag. We stop there too (and
    after 2^20 steps at most, which a full window would otherwise never reach).

The counter and lock live in the `shared` int64 array and the flags in a uint8 `window`
array; all access is atomic (gaia.lowlevel.atomics), so client threads and client
processes (arrays in shared memory) can share one counter, as YCSB's threads do.
"""

from __future__ import annotations

import multiprocessing
from dataclasses import dataclass

import numpy as np
from numba import njit

from gaia.lowlevel.atomics import compare_exchange, fetch_add, load_acquire, store_release
from workloads.generators import S_ACK_LIMIT, S_ACK_LOCK, S_LOAD_NEXT, S_TXN_NEXT, SHARED_SLOTS

WINDOW_SIZE = 1 << 20
WINDOW_MASK = WINDOW_SIZE - 1


class TooManyUnacknowledged(RuntimeError):
    """More than 2^20 inserts in flight (YCSB raises the same)."""


@njit(cache=True, nogil=True)
def next_insert_key(shared: np.ndarray) -> np.int64:
    """CounterGenerator.nextValue() of the run-phase insert sequence."""
    return fetch_add(shared, S_TXN_NEXT, 1)


@njit(cache=True, nogil=True)
def next_load_key(shared: np.ndarray) -> np.int64:
    """CounterGenerator(insertstart).nextValue(): the load phase's key sequence."""
    return fetch_add(shared, S_LOAD_NEXT, 1)


@njit(cache=True, nogil=True)
def last_value(shared: np.ndarray) -> np.int64:
    """AcknowledgedCounterGenerator.lastValue(): every key <= this one is acknowledged."""
    return load_acquire(shared, S_ACK_LIMIT)


@njit(cache=True, nogil=True)
def acknowledge(shared: np.ndarray, window: np.ndarray, value: np.int64) -> bool:
    """Mark `value` done; returns False when its slot was still taken (window overflow)."""
    slot = value & WINDOW_MASK
    if load_acquire(window, slot) != 0:
        return False
    store_release(window, slot, 1)
    if compare_exchange(shared, S_ACK_LOCK, 0, 1) == 0:  # tryLock
        limit = load_acquire(shared, S_ACK_LIMIT)
        index = limit + 1
        for _ in range(WINDOW_SIZE):
            s = index & WINDOW_MASK
            if load_acquire(window, s) == 0:
                break
            store_release(window, s, 0)
            index += 1
        store_release(shared, S_ACK_LIMIT, index - 1)
        store_release(shared, S_ACK_LOCK, 0)
    return True


@dataclass
class SharedState:
    """The state YCSB's client threads share: counters, the ack window, per-client progress.

    Backed by `multiprocessing.RawArray` so the same object serves threads (plain numpy
    views) and spawned client processes (the arrays are inherited when passed to
    Process(args=...)); nothing is left in /dev/shm afterwards.
    """

    counters_raw: object
    window_raw: object
    progress_raw: object
    clients: int

    PROGRESS_SLOTS = 4  # ops done, latency sum (ns) and count of the current interval, flags

    @classmethod
    def create(cls, clients: int, insertstart: int, recordcount: int) -> SharedState:
        counters = multiprocessing.RawArray("q", SHARED_SLOTS)
        window = multiprocessing.RawArray("B", WINDOW_SIZE)
        progress = multiprocessing.RawArray("q", max(1, clients) * cls.PROGRESS_SLOTS)
        state = cls(counters, window, progress, clients)
        c = state.counters
        c[S_LOAD_NEXT] = insertstart
        c[S_TXN_NEXT] = recordcount
        c[S_ACK_LIMIT] = recordcount - 1
        return state

    @property
    def counters(self) -> np.ndarray:
        return np.frombuffer(self.counters_raw, dtype=np.int64)

    @property
    def window(self) -> np.ndarray:
        return np.frombuffer(self.window_raw, dtype=np.uint8)

    @property
    def progress(self) -> np.ndarray:
        return np.frombuffer(self.progress_raw, dtype=np.int64).reshape(-1, self.PROGRESS_SLOTS)
