"""Syscalls callable from numba nopython code: monotonic clock, futex, yield, sleep.

Why `types.ExternalFunction` and not ctypes: numba embeds a ctypes function pointer as a
constant, which forbids `cache=True`, so every replica process would recompile its hot
loop (10+ s on a busy 2-core machine). An ExternalFunction names the libc symbol instead;
LLVM resolves it at load time and compiled code is cached on disk. Pointers travel as
integers (`arr.ctypes.data`, supported inside nopython code).
"""

from __future__ import annotations

import os

import numpy as np
from numba import njit, types

from gaia.lowlevel.atomics import address_to_voidptr

SYS_FUTEX = 202  # x86-64
FUTEX_WAIT = 0
FUTEX_WAKE = 1
CLOCK_MONOTONIC = 1

_ptr = types.voidptr
_clock_gettime = types.ExternalFunction("clock_gettime", types.intc(types.intc, _ptr))
_sched_yield = types.ExternalFunction("sched_yield", types.intc())
_nanosleep = types.ExternalFunction("nanosleep", types.intc(_ptr, _ptr))
_syscall = types.ExternalFunction(
    "syscall",
    types.int64(types.int64, _ptr, types.int64, types.int64, _ptr, _ptr, types.int64),
)


@njit(nogil=True, cache=True)
def now_ns() -> int:
    """CLOCK_MONOTONIC in nanoseconds (same clock as time.monotonic_ns())."""
    ts = np.empty(2, dtype=np.int64)
    _clock_gettime(np.intc(CLOCK_MONOTONIC), address_to_voidptr(ts.ctypes.data))
    return ts[0] * 1_000_000_000 + ts[1]


@njit(nogil=True, cache=True)
def _timespec(duration_ns: int) -> np.ndarray:
    ts = np.empty(2, dtype=np.int64)
    ts[0] = duration_ns // 1_000_000_000
    ts[1] = duration_ns % 1_000_000_000
    return ts


@njit(nogil=True, cache=True)
def futex_wait(word_addr: int, expected: int, timeout_ns: int) -> int:
    """Sleep while the 32-bit word at `word_addr` equals `expected`, at most timeout_ns.

    Returns 0 when woken, -1 on timeout, signal, or when the word already differed
    (EAGAIN): callers always re-check their condition."""
    ts = _timespec(timeout_ns)
    r = _syscall(SYS_FUTEX, address_to_voidptr(word_addr), FUTEX_WAIT, expected,
                 address_to_voidptr(ts.ctypes.data), address_to_voidptr(0), 0)
    return 0 if r == 0 else -1


@njit(nogil=True, cache=True)
def futex_wake(word_addr: int, count: int) -> int:
    """Wake up to `count` waiters on the 32-bit word at `word_addr` (works across processes
    on a shared mapping: FUTEX_WAKE without the private flag)."""
    return _syscall(SYS_FUTEX, address_to_voidptr(word_addr), FUTEX_WAKE, count,
                    address_to_voidptr(0), address_to_voidptr(0), 0)


@njit(nogil=True, cache=True)
def yield_cpu() -> None:
    _sched_yield()


@njit(nogil=True, cache=True)
def sleep_ns(duration_ns: int) -> None:
    ts = _timespec(duration_ns)
    _nanosleep(address_to_voidptr(ts.ctypes.data), address_to_voidptr(0))


def pin_to_cpu(cpu: int | None) -> None:
    """Pin the calling process to one CPU (None: leave the affinity alone)."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu % (os.cpu_count() or 1)})
