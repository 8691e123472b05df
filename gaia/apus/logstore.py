"""A replica's local log: entry records in a circular arena, readable by local processes.

Why a separate store (not the region's ring): the ring only holds entries in flight to
one backup; the local log holds everything since the last snapshot, so a leader can
catch a lagging replica up and local readers (the backup replayer, TRIPOD controllers,
the VM switch) can read committed entries in order. It is one flat uint8 array — a
private array in the simulator, a /dev/shm segment in the runtime — so the numba hot
loop appends without Python and readers in other processes map it read-mostly.

Layout: a 4096-byte header (words G_*), an index of `index_cap` words (absolute word
offset of entry i's record at i % index_cap), then the arena of records (wire.py entry
format). Entries first..last are present; entries below `first` were compacted into a
snapshot whose last entry had view `base_view`. Readers register an apply cursor in the
header; compaction never passes the slowest cursor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from gaia.apus import wire
from gaia.apus.layout import group_bytes
from gaia.errors import GaiaError
from gaia.intercept.shm import ShmSegment, shm_path
from gaia.lowlevel.atomics import compare_exchange, load_acquire, store_release

LOG_MAGIC = int.from_bytes(b"GAIALOG1", "little")
HEADER_WORDS = 512
G_MAGIC = 0
G_VERSION = 1
G_GROUP = 2
G_OWNER = 4
G_INDEX_CAP = 5
G_ARENA_WORDS = 6
G_INDEX_W = 7
G_ARENA_W = 8
G_FIRST = 16
G_LAST = 17
G_COMMIT = 18
G_WRITE_POS = 19
G_BASE_VIEW = 20
G_EPOCH = 21  # bumped whenever uncommitted entries are cut or the log is reset
G_FUTEX_W = 24  # word holding the 32-bit commit futex (low half) and waiters (high half)
G_READERS = 32
MAX_READERS = 16


@dataclass(frozen=True)
class LogConfig:
    index_cap: int = 1 << 16  # power of two: most entries held at once
    arena_bytes: int = 64 << 20

    @property
    def size(self) -> int:
        return (HEADER_WORDS + self.index_cap) * 8 + self.arena_bytes


# -- numba: the hot loop's view ---------------------------------------------------------
@njit(nogil=True, cache=True, inline="always")
def log_first(lg64: np.ndarray) -> int:
    return np.int64(lg64[G_FIRST])


@njit(nogil=True, cache=True, inline="always")
def log_last(lg64: np.ndarray) -> int:
    return np.int64(lg64[G_LAST])


@njit(nogil=True, cache=True, inline="always")
def log_word(lg64: np.ndarray, index: int) -> int:
    """Word offset of entry `index`'s record (caller checks first <= index <= last)."""
    cap = np.int64(lg64[G_INDEX_CAP])
    return np.int64(lg64[np.int64(lg64[G_INDEX_W]) + (index & (cap - 1))])


@njit(nogil=True, cache=True)
def log_view(lg64: np.ndarray, index: int) -> int:
    """View of entry `index`; the snapshot's view at first-1; -1 when not held."""
    if index == 0:
        return 0
    first = np.int64(lg64[G_FIRST])
    if index == first - 1:
        return np.int64(lg64[G_BASE_VIEW])
    if index < first or index > np.int64(lg64[G_LAST]):
        return -1
    return np.int64(lg64[log_word(lg64, index) + wire.E_VIEW])


@njit(nogil=True, cache=True)
def log_reserve(lg64: np.ndarray, nwords: int) -> int:
    """Word offset where a record of `nwords` can go next, or -1 when the log is full."""
    first = np.int64(lg64[G_FIRST])
    last = np.int64(lg64[G_LAST])
    count = last - first + 1
    if count + 1 >= np.int64(lg64[G_INDEX_CAP]):
        return -1
    base = np.int64(lg64[G_ARENA_W])
    cap = np.int64(lg64[G_ARENA_WORDS])
    if nwords > cap:
        return -1
    if count == 0:
        return base
    wp = np.int64(lg64[G_WRITE_POS])
    oldest = log_word(lg64, first) - base
    if oldest < wp:
        if wp + nwords <= cap:
            return base + wp
        if nwords <= oldest:
            return base
        return -1
    if wp + nwords <= oldest:
        return base + wp
    return -1


@njit(nogil=True, cache=True)
def log_used_words(lg64: np.ndarray) -> int:
    """Arena words held by live records (a wrapped tail's slack counts as used)."""
    first = np.int64(lg64[G_FIRST])
    if np.int64(lg64[G_LAST]) < first:
        return 0
    oldest = log_word(lg64, first) - np.int64(lg64[G_ARENA_W])
    wp = np.int64(lg64[G_WRITE_POS])
    return wp - oldest if oldest < wp else np.int64(lg64[G_ARENA_WORDS]) - oldest + wp


@njit(nogil=True, cache=True)
def log_publish(lg64: np.ndarray, w: int) -> int:
    """Make the record just written at `w` entry last+1; returns its index."""
    index = np.int64(lg64[G_LAST]) + 1
    cap = np.int64(lg64[G_INDEX_CAP])
    lg64[np.int64(lg64[G_INDEX_W]) + (index & (cap - 1))] = np.uint64(w)
    length = wire.entry_length(lg64, w)
    lg64[G_WRITE_POS] = np.uint64(w - np.int64(lg64[G_ARENA_W]) + wire.entry_words(length))
    store_release(lg64, G_LAST, np.uint64(index))
    return index


@njit(nogil=True, cache=True)
def log_append(
    lg: np.ndarray, lg64: np.ndarray, view: int, kind: int, src: np.ndarray, start: int, length: int
) -> int:
    """Append a new entry (checksum computed, stamp left to the sender); -1 when full."""
    w = log_reserve(lg64, wire.entry_words(length))
    if w < 0:
        return -1
    wire.entry_build(lg, lg64, w, np.int64(lg64[G_LAST]) + 1, view, kind, src, start, length)
    wire.entry_stamp(lg64, w, view, 0)
    return log_publish(lg64, w)


@njit(nogil=True, cache=True)
def log_append_record(lg64: np.ndarray, src64: np.ndarray, ws: int) -> int:
    """Copy a validated record (from a ring slot or a message) to the end of the log.

    Returns its index, -1 when the log is full, -2 when its index is not last+1."""
    if np.int64(src64[ws + wire.E_INDEX]) != np.int64(lg64[G_LAST]) + 1:
        return -2
    nwords = wire.entry_words(wire.entry_length(src64, ws))
    w = log_reserve(lg64, nwords)
    if w < 0:
        return -1
    lg64[w : w + nwords] = src64[ws : ws + nwords]
    return log_publish(lg64, w)


@njit(nogil=True, cache=True)
def log_truncate(lg64: np.ndarray, keep: int) -> None:
    """Drop entries after `keep` (first-1 <= keep <= last; never committed ones)."""
    first = np.int64(lg64[G_FIRST])
    if keep >= np.int64(lg64[G_LAST]):
        return
    if keep < first:
        lg64[G_WRITE_POS] = 0
        keep = first - 1
    else:
        w = log_word(lg64, keep)
        lg64[G_WRITE_POS] = np.uint64(
            w - np.int64(lg64[G_ARENA_W]) + wire.entry_words(wire.entry_length(lg64, w))
        )
    lg64[G_EPOCH] += np.uint64(1)
    store_release(lg64, G_LAST, np.uint64(keep))


@njit(nogil=True, cache=True)
def log_compact(lg64: np.ndarray, upto: int) -> None:
    """Forget entries up to `upto` (they live in a snapshot now)."""
    first = np.int64(lg64[G_FIRST])
    if upto < first:
        return
    upto = min(upto, np.int64(lg64[G_LAST]))
    lg64[G_BASE_VIEW] = np.uint64(log_view(lg64, upto))
    store_release(lg64, G_FIRST, np.uint64(upto + 1))
    if upto == np.int64(lg64[G_LAST]):
        lg64[G_WRITE_POS] = 0


@njit(nogil=True, cache=True)
def log_reset(lg64: np.ndarray, index: int, view: int) -> None:
    """Empty the log so that the next entry is index+1 (a snapshot ending at `index`)."""
    lg64[G_BASE_VIEW] = np.uint64(view)
    lg64[G_WRITE_POS] = 0
    lg64[G_EPOCH] += np.uint64(1)
    store_release(lg64, G_LAST, np.uint64(index))
    store_release(lg64, G_FIRST, np.uint64(index + 1))


@njit(nogil=True, cache=True)
def log_min_reader(lg64: np.ndarray) -> int:
    """The slowest registered reader's applied index (-1: no reader)."""
    low = -1
    for k in range(MAX_READERS):
        cur = np.int64(load_acquire(lg64, G_READERS + k))
        if cur != 0 and (low < 0 or cur - 1 < low):
            low = cur - 1
    return low


@njit(nogil=True, cache=True)
def log_set_commit(lg64: np.ndarray, commit: int) -> None:
    store_release(lg64, G_COMMIT, np.uint64(commit))


@njit(nogil=True, cache=True)
def store_word(w64: np.ndarray, i: int, value: int) -> None:
    """A release store callable from Python (the intrinsic itself is numba-only)."""
    store_release(w64, i, np.uint64(value))


@njit(nogil=True, cache=True)
def _claim_reader(lg64: np.ndarray, start: int) -> int:
    for k in range(MAX_READERS):
        if compare_exchange(lg64, G_READERS + k, 0, start + 1) == 0:
            return k
    return -1


# -- Python ---------------------------------------------------------------------------
def log_name(group_id: str, replica_id: int) -> str:
    """The POSIX shm name of a replica's log segment."""
    return f"/gaia-{group_id}-r{replica_id}-log"


@dataclass
class Entry:
    """One log entry as Python sees it."""

    index: int
    view: int
    kind: int
    payload: bytes

    def key(self) -> tuple[int, int, bytes]:
        return self.view, self.kind, self.payload


class LogSegment(ShmSegment):
    what = "APUS log segment"


class LocalLog:
    """The log array plus Python accessors. `buf`/`w64` go to numba."""

    def __init__(self, buf: np.ndarray, segment: ShmSegment | None = None) -> None:
        self.buf = buf
        self.w64 = buf.view(np.uint64)
        self.segment = segment

    # -- creation ------------------------------------------------------------------
    @classmethod
    def create(cls, cfg: LogConfig, group_id: str, owner: int,
               name: str | None = None) -> LocalLog:
        """A fresh, empty log: private memory, or the shared segment `name` (a stale one
        of an earlier run of this replica is replaced)."""
        if cfg.index_cap & (cfg.index_cap - 1) or cfg.arena_bytes % 8:
            raise GaiaError(
                "log index_cap must be a power of two and arena_bytes a multiple of 8",
                "fix the log configuration",
            )
        segment = None
        if name is None:
            buf = np.zeros(cfg.size, dtype=np.uint8)
        else:
            shm_path(name).unlink(missing_ok=True)
            segment = LogSegment._create(name, cfg.size)
            buf = segment.seg
        log = cls(buf, segment)
        w = log.w64
        w[G_VERSION] = 1
        w[G_GROUP : G_GROUP + 2] = np.frombuffer(group_bytes(group_id), dtype=np.uint64)
        w[G_OWNER] = owner
        w[G_INDEX_CAP] = cfg.index_cap
        w[G_ARENA_WORDS] = cfg.arena_bytes // 8
        w[G_INDEX_W] = HEADER_WORDS
        w[G_ARENA_W] = HEADER_WORDS + cfg.index_cap
        w[G_FIRST] = 1
        w[G_LAST] = 0
        store_word(w, G_MAGIC, LOG_MAGIC)
        return log

    @classmethod
    def open(cls, name: str, group_id: str | None = None) -> LocalLog:
        """Map another process's log segment (a reader)."""
        segment = LogSegment._open(name)
        log = cls(segment.seg, segment)
        if int(log.w64[G_MAGIC]) != LOG_MAGIC:
            log.close()
            raise GaiaError(f"{name} is not an APUS log segment", "pass a replica's log")
        if group_id is not None and log.w64[G_GROUP : G_GROUP + 2].tobytes() != \
                group_bytes(group_id):
            log.close()
            raise GaiaError(f"{name} belongs to another APUS group", "pass the right group")
        return log

    def close(self) -> None:
        if self.segment is not None:
            self.buf = self.w64 = None  # type: ignore[assignment]
            self.segment.close()
            self.segment = None

    # -- state -----------------------------------------------------------------------
    @property
    def first(self) -> int:
        return int(self.w64[G_FIRST])

    @property
    def last(self) -> int:
        return int(self.w64[G_LAST])

    @property
    def commit(self) -> int:
        return int(self.w64[G_COMMIT])

    @property
    def epoch(self) -> int:
        return int(self.w64[G_EPOCH])

    def view_of(self, index: int) -> int:
        return log_view(self.w64, index)

    def last_view(self) -> int:
        return self.view_of(self.last)

    def word(self, index: int) -> int:
        if not self.first <= index <= self.last:
            raise IndexError(f"entry {index} is not in the log ({self.first}..{self.last})")
        return log_word(self.w64, index)

    def entry(self, index: int) -> Entry:
        w = self.word(index)
        length = wire.entry_length(self.w64, w)
        start = (w + wire.E_PAYLOAD) * 8
        return Entry(
            index,
            int(self.w64[w + wire.E_VIEW]),
            wire.entry_kind(self.w64, w),
            bytes(self.buf[start : start + length]),
        )

    def entries(self, lo: int, hi: int) -> list[Entry]:
        return [self.entry(i) for i in range(max(lo, self.first), min(hi, self.last) + 1)]

    def record(self, index: int) -> np.ndarray:
        """The raw record of entry `index` (a view: copy before the log moves on)."""
        w = self.word(index)
        n = wire.entry_words(wire.entry_length(self.w64, w))
        return self.w64[w : w + n]

    def append(self, view: int, kind: int, payload: bytes) -> int:
        src = np.frombuffer(payload, dtype=np.uint8) if payload else np.zeros(1, np.uint8)
        index = log_append(self.buf, self.w64, view, kind, src, 0, len(payload))
        if index < 0:
            raise LogFullError(self.first, self.last)
        return index

    def append_record(self, rec: np.ndarray) -> int:
        index = log_append_record(self.w64, rec, 0)
        if index == -1:
            raise LogFullError(self.first, self.last)
        if index == -2:
            raise IndexError(f"record {int(rec[wire.E_INDEX])} does not follow {self.last}")
        return index

    def truncate(self, keep: int) -> None:
        log_truncate(self.w64, keep)

    def compact(self, upto: int) -> None:
        log_compact(self.w64, upto)

    def reset(self, index: int, view: int) -> None:
        log_reset(self.w64, index, view)

    def set_commit(self, commit: int) -> None:
        log_set_commit(self.w64, commit)

    def min_reader(self) -> int:
        return log_min_reader(self.w64)

    def claim_reader(self, start: int) -> int:
        slot = _claim_reader(self.w64, start)
        if slot < 0:
            raise GaiaError(
                f"more than {MAX_READERS} readers on one APUS log",
                "close unused committed-log readers",
            )
        return slot

    def set_reader(self, slot: int, applied: int) -> None:
        store_word(self.w64, G_READERS + slot, applied + 1)

    def release_reader(self, slot: int) -> None:
        store_word(self.w64, G_READERS + slot, 0)

    def futex_address(self) -> int:
        return self.buf.ctypes.data + G_FUTEX_W * 8


class LogFullError(GaiaError):
    def __init__(self, first: int, last: int) -> None:
        super().__init__(
            f"the APUS log is full (entries {first}..{last} not yet compacted)",
            "let readers apply entries so the log can be compacted, or enlarge the log",
        )
