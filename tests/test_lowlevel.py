"""Atomic intrinsics and syscalls from numba: a polling loop must see another thread's store."""

from __future__ import annotations

import threading
import time

import numpy as np
from numba import njit

from gaia.lowlevel.atomics import (
    compare_exchange,
    cpu_relax,
    fetch_add,
    load_acquire,
    store_release,
)
from gaia.lowlevel.syscalls import futex_wait, futex_wake, now_ns, sleep_ns


@njit(nogil=True)
def spin_until_set(flags, data):
    spins = 0
    while load_acquire(flags, 0) == 0:
        cpu_relax()
        spins += 1
    return data[0], spins


def test_spin_loop_observes_a_release_store_from_another_thread():
    flags = np.zeros(1, dtype=np.uint64)
    data = np.zeros(1, dtype=np.uint64)
    out = {}
    waiter = threading.Thread(target=lambda: out.update(r=spin_until_set(flags, data)))
    waiter.start()
    time.sleep(0.05)
    data[0] = 42

    @njit
    def publish(flags):
        store_release(flags, 0, 1)

    publish(flags)
    waiter.join(5)
    assert not waiter.is_alive(), "the spin loop never saw the store (load hoisted?)"
    assert out["r"][0] == 42


@njit
def rmw(arr):
    old = fetch_add(arr, 1, 5)
    seen = compare_exchange(arr, 0, 0, 7)
    failed = compare_exchange(arr, 0, 0, 9)
    return old, seen, failed


def test_fetch_add_and_compare_exchange():
    arr = np.zeros(2, dtype=np.uint64)
    old, seen, failed = rmw(arr)
    assert (old, seen, failed) == (0, 0, 7)
    assert list(arr) == [7, 5]


def test_clock_matches_python_monotonic():
    before = time.monotonic_ns()
    ours = now_ns()
    after = time.monotonic_ns()
    assert before <= ours <= after


def test_futex_wakes_a_sleeper_and_times_out_otherwise():
    word = np.zeros(1, dtype=np.uint32)
    addr = word.ctypes.data
    start = time.monotonic()
    assert futex_wait(addr, 0, 20_000_000) == -1  # nobody wakes us: timeout
    assert time.monotonic() - start >= 0.015
    start = time.monotonic()
    futex_wait(addr, 1, 10_000_000_000)  # the word differs: must not sleep the 10 s
    assert time.monotonic() - start < 5

    woke = {}

    def sleeper():
        woke["r"] = futex_wait(addr, 0, 5_000_000_000)

    thread = threading.Thread(target=sleeper)
    thread.start()
    time.sleep(0.05)
    word[0] = 1
    futex_wake(addr, 1)
    thread.join(5)
    assert woke["r"] == 0


def test_sleep_ns_sleeps():
    start = time.monotonic_ns()
    sleep_ns(2_000_000)
    assert time.monotonic_ns() - start >= 2_000_000
