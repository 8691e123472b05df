"""Syscalls callable from numba nopython code: monotonic clock, futex, yield, sleep.

numba calls ctypes function pointers directly, so a hot loop can read the clock, sleep on
a futex or yield the CPU without returning to Python. Pointers are passed as integers
(`arr.ctypes.data`, supported inside nopython code).
"""

from __future__ import annotations

import ctypes
import os

import numpy as np
from numba import njit

_libc = ctypes.CDLL(None, use_errno=True)

SYS_FUTEX = 202  # x86-64
FUTEX_WAIT = 0
FUTEX_WAKE = 1
CLOCK_MONOTONIC = 1

_clock_gettime = _libc.clock_gettime
_clock_gettime.argtypes = [ctypes.c_int, ctypes.c_void_p]
_clock_gettime.restype = ctypes.c_int

_syscall6 = ctypes.CFUNCTYPE(
    ctypes.c_long,
    ctypes.c_long, ctypes.c_void_p, ctypes.c_long, ctypes.c_long, ctypes.c_void_p,
    ctypes.c_void_p, ctypes.c_long,
)(("syscall", _libc))

_sched_yield = _libc.sched_yield
_sched_yield.argtypes = []
_sched_yield.restype = ctypes.c_int

_nanosleep = _libc.nanosleep
_nanosleep.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
_nanosleep.restype = ctypes.c_int


@njit(nogil=True)
def now_ns() -> int:
    """CLOCK_MONOTONIC in nanoseconds (same clock as time.monotonic_ns())."""
    ts = np.empty(2, dtype=np.int64)
    _clock_gettime(CLOCK_MONOTONIC, ts.ctypes.data)
    return ts[0] * 1_000_000_000 + ts[1]


@njit(nogil=True)
def futex_wait(word_addr: int, expected: int, timeout_ns: int) -> int:
    """Sleep while the 32-bit word at `word_addr` equals `expected`, at most timeout_ns.

    Returns 0 when woken, -1 on timeout, signal, or when the word already differed
    (EAGAIN): callers always re-check their condition."""
    ts = np.empty(2, dtype=np.int64)
    ts[0] = timeout_ns // 1_000_000_000
    ts[1] = timeout_ns % 1_000_000_000
    r = _syscall6(SYS_FUTEX, word_addr, FUTEX_WAIT, expected, ts.ctypes.data, 0, 0)
    return 0 if r == 0 else -1


@njit(nogil=True)
def futex_wake(word_addr: int, count: int) -> int:
    """Wake up to `count` waiters on the 32-bit word at `word_addr` (works across processes
    on a shared mapping: FUTEX_WAKE without the private flag)."""
    return _syscall6(SYS_FUTEX, word_addr, FUTEX_WAKE, count, 0, 0, 0)


@njit(nogil=True)
def yield_cpu() -> None:
    _sched_yield()


@njit(nogil=True)
def sleep_ns(duration_ns: int) -> None:
    ts = np.empty(2, dtype=np.int64)
    ts[0] = duration_ns // 1_000_000_000
    ts[1] = duration_ns % 1_000_000_000
    _nanosleep(ts.ctypes.data, 0)


def pin_to_cpu(cpu: int | None) -> None:
    """Pin the calling process to one CPU (None: leave the affinity alone)."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu % (os.cpu_count() or 1)})
