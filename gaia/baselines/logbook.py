"""A replica's log for the baselines: a ring of APUS-format entry records, a running
digest of everything appended, and APUS's durable log behind it.

Why APUS's formats: the baselines must share APUS's durability modes, and the durable
log's recovery validates records in the APUS entry format. Why a digest: "all replicas'
logs are equal" is checked by comparing (last index, digest) — a chained hash over every
entry's index and checksum — without keeping whole logs in memory.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
from numba import njit

from gaia.apus import storage as dur
from gaia.apus import wire
from gaia.apus.layout import record_bytes
from gaia.lowlevel.atomics import load_acquire

LB_LAST = 0  # highest index appended
LB_DIGEST = 1
LB_SLOT_BYTES = 2
LB_SLOTS = 3
LB_MAX_PAYLOAD = 4
LB_SEED = 5
LB_LEN = 8
K_BENCH = wire.K_APP


class Logbook(NamedTuple):
    slots: np.ndarray  # uint8 [slots * slot_bytes]
    meta: np.ndarray  # uint64 [LB_LEN]
    dbuf: np.ndarray  # the storage's numba arrays (gaia.apus.storage)
    dmeta: np.ndarray
    payload: np.ndarray  # uint8 scratch for building payloads


def slot_bytes_for(max_payload: int) -> int:
    return (record_bytes(max_payload) + 63) // 64 * 64


def new_logbook(slots: int, max_payload: int, storage: dur.Storage, seed: int = 0) -> Logbook:
    size = slot_bytes_for(max_payload)
    meta = np.zeros(LB_LEN, dtype=np.uint64)
    meta[LB_SLOT_BYTES] = size
    meta[LB_SLOTS] = slots
    meta[LB_MAX_PAYLOAD] = max_payload
    meta[LB_SEED] = seed
    return Logbook(np.zeros(slots * size, dtype=np.uint8), meta, storage.dbuf, storage.dmeta,
                   np.zeros(max(8, max_payload), dtype=np.uint8))


def open_storage(mode: str, group: str, replica: int, data_dir: Path | None,
                 max_payload: int) -> dur.Storage:
    """APUS's storage for this replica, opened (fsync mode: a fresh log file)."""
    storage = dur.make_storage(mode, group, replica, data_dir)
    storage.load(max_payload)
    return storage


@njit(nogil=True, cache=True)
def slot_offset(lb: Logbook, index: int) -> int:
    return (index % int(lb.meta[LB_SLOTS])) * int(lb.meta[LB_SLOT_BYTES])


@njit(nogil=True, cache=True)
def bench_payload(out: np.ndarray, index: int, length: int, seed: int) -> None:
    """The deterministic payload of entry `index` (every replica can recompute it)."""
    for i in range(length):
        out[i] = (index * 131 + i * 7 + seed) & 0xFF


@njit(nogil=True, cache=True)
def _note(lb: Logbook, index: int, checksum: np.uint64) -> None:
    lb.meta[LB_DIGEST] = wire.mix(wire.mix(lb.meta[LB_DIGEST], np.uint64(index)), checksum)
    lb.meta[LB_LAST] = index


@njit(nogil=True, cache=True)
def propose_entry(lb: Logbook, index: int, view: int, commit: int, length: int) -> int:
    """Leader: build entry `index` (bench payload) in its slot, digest it, append it to
    the durable log (not synced). Returns the slot's byte offset; the record is
    `wire.entry_words(length) * 8` bytes there, canary last."""
    off = slot_offset(lb, index)
    bench_payload(lb.payload, index, length, int(lb.meta[LB_SEED]))
    w64 = lb.slots.view(np.uint64)
    w = off // 8
    wire.entry_build(lb.slots, w64, w, index, view, K_BENCH, lb.payload, 0, length)
    wire.entry_stamp(w64, w, view, commit)
    _note(lb, index, w64[w + wire.E_CHECKSUM])
    dur.dur_append(lb.dbuf, lb.dmeta, lb.slots, off, wire.entry_words(length) * 8)
    return off


@njit(nogil=True, cache=True)
def snapshot_entry(src64: np.ndarray, w: int, expected: int, max_payload: int,
                   scratch: np.ndarray) -> bool:
    """Copy the record at `src64[w:]` (memory a writer may be rewriting) into `scratch`
    and say whether the copy is entry `expected`, whole. Validating the private copy, not
    the shared slot, closes the gap in which a slot checked as whole is rewritten before
    it is read again (check-then-copy accepted a half-old, half-new entry)."""
    length = wire.entry_length(src64, w)
    if length > max_payload or w + wire.entry_words(length) > src64.size:
        return False
    n = wire.entry_words(length)
    scratch[n - 1] = load_acquire(src64, w + n - 1)  # the canary first: the body it
    for k in range(n - 1):  # guards is visible once its canary is
        scratch[k] = src64[w + k]
    return wire.entry_valid(scratch, 0, max_payload) and int(scratch[wire.E_INDEX]) == expected


@njit(nogil=True, cache=True)
def accept_entry(lb: Logbook, w64: np.ndarray, w: int) -> int:
    """Backup: copy a whole record (validated by the caller) from `w64[w:]` into the log,
    digest it and append it durably (not synced). Returns its index."""
    index = int(w64[w + wire.E_INDEX])
    words = wire.entry_words(wire.entry_length(w64, w))
    off = slot_offset(lb, index)
    mine = lb.slots.view(np.uint64)
    mine[off // 8 : off // 8 + words] = w64[w : w + words]
    _note(lb, index, w64[w + wire.E_CHECKSUM])
    dur.dur_append(lb.dbuf, lb.dmeta, lb.slots, off, words * 8)
    return index


@njit(nogil=True, cache=True)
def quorum_index(persisted: np.ndarray, majority: int) -> int:
    """The highest index that at least `majority` replicas have persisted (persisted[r]
    is replica r's highest): the k-th largest value, k = majority."""
    ordered = np.sort(persisted)
    return int(ordered[persisted.size - majority])


@njit(nogil=True, cache=True)
def sync(lb: Logbook) -> bool:
    """Make every appended entry durable (fsync mode: one fdatasync for the batch)."""
    return dur.dur_sync(lb.dbuf, lb.dmeta)


def state(lb: Logbook) -> dict[str, int | str]:
    """What replicas compare: the last index and the digest of the whole log."""
    return {"last": int(lb.meta[LB_LAST]), "digest": f"{int(lb.meta[LB_DIGEST]):016x}"}
