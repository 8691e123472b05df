"""What the guard needs from a committed log, and that interface over the shared-memory log.

Why: after a checkpoint at index i the entries <= i are no longer needed by a replica that
can recover from that checkpoint, so the log may drop them; a reader that still asks for
one must get a loud error, never silently wrong bytes. APUS's replica log implements the
same protocol (see /work/helpers/notes/guard-to-apus.md); `ShmTruncatableLog` implements
it over `ShmLog` for tests and single-host runs.

ShmLog keeps its layout (append-only index records + data area). The first kept index is
a u64 at header offset FIRST_INDEX_OFFSET (unused by ShmLog; 0 there means 1, nothing
truncated), so every process mapping the log sees the same truncation point. Truncation
gives the data pages of the dropped entries back to the kernel (madvise MADV_REMOVE on
the tmpfs mapping): they read as zeros afterwards. It does not make room for new entries
(ShmLog's tail only grows); the APUS log reuses its arena.
"""

from __future__ import annotations

import mmap
from typing import Protocol

import numpy as np
from numba import njit

from gaia.errors import GaiaError
from gaia.intercept.feed import CommittedLog
from gaia.intercept.shmlog import ShmLog, nb_log_commit_index
from gaia.lowlevel.atomics import load_acquire, store_release

FIRST_INDEX_OFFSET = 256  # in ShmLog's 4096-byte header; fields there end at 200
_HEADER = 4096  # ShmLog's header size (shmlog._HEADER)
_CAPACITY = 8  # shmlog._CAPACITY
_TAIL = 128  # shmlog._TAIL: bytes of data used
_PAGE = mmap.PAGESIZE


class LogTruncated(GaiaError):
    """An entry below the log's first index was asked for."""

    def __init__(self, index: int, first: int) -> None:
        super().__init__(
            f"log entry {index} was truncated after a checkpoint (the log now starts at "
            f"entry {first})",
            f"recover this replica from a checkpoint at index >= {first - 1} "
            "(Guard.recover) instead of replaying the log from the start",
        )
        self.index = index
        self.first = first


class TruncatableLog(CommittedLog, Protocol):
    """A CommittedLog that drops a prefix once a checkpoint covers it."""

    def first_index(self) -> int:
        """Lowest index entry() still returns (1 when nothing was truncated; may be
        commit_index() + 1 when everything was)."""

    def truncate_before(self, index: int) -> int:
        """Drop entries < index (clamped to commit_index() + 1; never moves backwards);
        returns the new first_index()."""


@njit(nogil=True, cache=True)
def _load_first(seg: np.ndarray) -> int:
    return int(load_acquire(seg.view(np.uint64), FIRST_INDEX_OFFSET // 8))


@njit(nogil=True, cache=True)
def _store_first(seg: np.ndarray, value: int) -> None:
    store_release(seg.view(np.uint64), FIRST_INDEX_OFFSET // 8, np.uint64(value))


class ShmTruncatableLog:
    """TruncatableLog over a ShmLog (shares its mapping; holds no state of its own, so
    any number of these over one segment, in any process, agree)."""

    def __init__(self, log: ShmLog) -> None:
        self.log = log

    # -- CommittedLog -----------------------------------------------------------------
    def commit_index(self) -> int:
        return self.log.commit_index()

    def entry(self, index: int) -> np.ndarray:
        first = self.first_index()
        if index < first:
            raise LogTruncated(index, first)
        return self.log.entry(index)

    def wait_commit(self, after: int, timeout: float) -> int:
        return self.log.wait_commit(after, timeout)

    # -- truncation -------------------------------------------------------------------
    def first_index(self) -> int:
        return max(1, _load_first(self.log.seg))

    def truncate_before(self, index: int) -> int:
        """Single truncating writer (the guard). Publishes the new first index before
        freeing pages, so a reader checking first_index() never reads freed bytes of an
        entry it was allowed to read."""
        first = self.first_index()
        index = min(index, nb_log_commit_index(self.log.seg) + 1)
        if index <= first:
            return first
        _store_first(self.log.seg, index)
        self._free_data(first, index)
        return index

    def _free_data(self, first: int, index: int) -> None:
        """Give back the whole pages holding only entries first..index-1."""
        u64 = self.log.seg.view(np.uint64)
        capacity = int(u64[_CAPACITY // 8])
        data = _HEADER + capacity * 16

        committed = nb_log_commit_index(self.log.seg)

        def start_of(i: int) -> int:
            if i > committed:
                return data + int(u64[_TAIL // 8])
            return data + int(u64[(_HEADER + (i - 1) * 16) // 8])

        lo = -(-start_of(first) // _PAGE) * _PAGE  # round up: a page may hold older bytes
        hi = start_of(index) // _PAGE * _PAGE  # round down: keep the page entry `index` starts in
        if hi > lo:  # ShmSegment keeps its mmap private; madvise needs the mmap object
            self.log._mm.madvise(mmap.MADV_REMOVE, lo, hi - lo)

    # -- ShmLog passthroughs the local pipeline uses ----------------------------------
    @property
    def name(self) -> str:
        return self.log.name
