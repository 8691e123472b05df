"""A committed log in one shared-memory segment: the stand-in for APUS's committed log.

Why: tests, and single-host runs before consensus is wired in, need the real pipeline
minus the network — events committed in order into a log that a backup's replayer (maybe
another process) reads. One writer appends (numba, nogil); any number of readers map it.

Layout: header (4096 bytes: magic, capacity, data_size, commit_index @64, data_tail @128,
futex @192 + waiters @196), then `capacity` index records (u64 offset, u64 length; entry i
at record i-1, indices start at 1), then `data_size` bytes of payloads. Append-only: when
full, append raises (no truncation; a real deployment truncates after checkpoints).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from gaia.errors import GaiaError
from gaia.intercept.shm import ShmSegment, shm_path
from gaia.lowlevel.atomics import fetch_add, load_acquire, store_release
from gaia.lowlevel.syscalls import futex_wait, futex_wake

LOG_MAGIC = 0x474F4C4D48534147  # "GASHMLOG"
_HEADER = 4096
_CAPACITY = 8
_DATA_SIZE = 16
_COMMIT = 64
_TAIL = 128
_FUTEX = 192
_WAITERS = 196


@njit(nogil=True, cache=True)
def nb_log_append(log: np.ndarray, payload: np.ndarray, length: int) -> int:
    """Append payload[:length] as the next entry; returns its index (0 if the log is
    full). Single writer."""
    u64 = log.view(np.uint64)
    u32 = log.view(np.uint32)
    capacity = int(u64[_CAPACITY // 8])
    data_size = int(u64[_DATA_SIZE // 8])
    index = int(u64[_COMMIT // 8]) + 1
    tail = int(u64[_TAIL // 8])
    if index > capacity or tail + length > data_size:
        return 0
    data = _HEADER + capacity * 16
    log[data + tail : data + tail + length] = payload[:length]
    rec = (_HEADER + (index - 1) * 16) // 8
    u64[rec] = tail
    u64[rec + 1] = length
    u64[_TAIL // 8] = tail + length
    store_release(u64, _COMMIT // 8, np.uint64(index))
    fetch_add(u32, _FUTEX // 4, 1)
    if load_acquire(u32, _WAITERS // 4) != 0:
        futex_wake(log.ctypes.data + _FUTEX, 1 << 30)
    return index


@njit(nogil=True, cache=True)
def nb_log_commit_index(log: np.ndarray) -> int:
    return int(load_acquire(log.view(np.uint64), _COMMIT // 8))


@njit(nogil=True, cache=True)
def nb_log_entry(log: np.ndarray, index: int) -> np.ndarray:
    """A view of entry `index`'s payload (committed entries never change)."""
    u64 = log.view(np.uint64)
    capacity = int(u64[_CAPACITY // 8])
    rec = (_HEADER + (index - 1) * 16) // 8
    start = _HEADER + capacity * 16 + int(u64[rec])
    return log[start : start + int(u64[rec + 1])]


@njit(nogil=True, cache=True)
def nb_log_wait(log: np.ndarray, after: int, timeout_ns: int) -> int:
    """Sleep until commit_index > after or timeout; returns commit_index."""
    u32 = log.view(np.uint32)
    fetch_add(u32, _WAITERS // 4, 1)
    seen = load_acquire(u32, _FUTEX // 4)
    if nb_log_commit_index(log) <= after:
        futex_wait(log.ctypes.data + _FUTEX, seen, timeout_ns)
    fetch_add(u32, _WAITERS // 4, np.uint32(0xFFFFFFFF))
    return nb_log_commit_index(log)


class ShmLog(ShmSegment):
    """The committed log in /dev/shm. Implements feed.CommittedLog."""

    what = "log segment"

    @classmethod
    def create(cls, name: str, capacity: int = 1 << 20, data_size: int = 1 << 30) -> ShmLog:
        log = cls._create(name, _HEADER + capacity * 16 + data_size)
        u64 = log.seg.view(np.uint64)
        u64[_CAPACITY // 8] = capacity
        u64[_DATA_SIZE // 8] = data_size
        u64[0] = LOG_MAGIC
        return log

    @classmethod
    def open(cls, name: str) -> ShmLog:
        log = cls._open(name)
        if log.seg.view(np.uint64)[0] != LOG_MAGIC:
            log.close()
            raise GaiaError(f"{shm_path(name)} is not a GAIA shared-memory log",
                            "check the name")
        return log

    # -- CommittedLog -----------------------------------------------------------------
    def commit_index(self) -> int:
        return nb_log_commit_index(self.seg)

    def entry(self, index: int) -> np.ndarray:
        if not 1 <= index <= self.commit_index():
            raise IndexError(f"log entry {index} is not committed")
        return nb_log_entry(self.seg, index)

    def wait_commit(self, after: int, timeout: float) -> int:
        return nb_log_wait(self.seg, after, int(timeout * 1e9))

    # -- writer ---------------------------------------------------------------------
    def append(self, payload: bytes) -> int:
        index = nb_log_append(self.seg, np.frombuffer(payload, dtype=np.uint8), len(payload))
        if index == 0:
            raise GaiaError(
                f"shared-memory log {self.name} is full",
                "create it with a larger capacity/data_size",
            )
        return index
