"""The encoding of intercepted events inside one log entry's payload — the only place.

Why one place: the replica batches consecutive ring events into one log entry, and the
backup replayer, the output checker and the tests all decode it. Python functions serve
tests and slow paths; the njit ones serve the replica's hot loop.

Batch layout (little-endian):
    u32 magic = BATCH_MAGIC ("GEVB")   u32 count
    count x [ u16 kind | u16 flags | u32 length | u64 conn_id | payload[length] ]
kind and flags are the GAIA_EV_* values of gaia_ring.h; no padding between events.
An entry that does not start with the magic (a no-op, a configuration entry) holds no
events.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np
from numba import njit

from gaia.intercept import ring_layout as L

BATCH_MAGIC = 0x42564547  # b"GEVB" little-endian
BATCH_HEADER = 8
EVENT_HEADER = 16
_BATCH = struct.Struct("<II")
_EVENT = struct.Struct("<HHIQ")

KIND_NAMES = {L.EV_OPEN: "OPEN", L.EV_DATA: "DATA", L.EV_CLOSE: "CLOSE", L.EV_RAW: "RAW"}


class Event(NamedTuple):
    kind: int
    conn_id: int
    payload: bytes
    flags: int = 0


def encode_batch(events: Iterable[Event]) -> bytes:
    events = list(events)
    parts = [_BATCH.pack(BATCH_MAGIC, len(events))]
    for ev in events:
        parts.append(_EVENT.pack(ev.kind, ev.flags, len(ev.payload), ev.conn_id))
        parts.append(bytes(ev.payload))
    return b"".join(parts)


def is_batch(buf: bytes | memoryview | np.ndarray) -> bool:
    data = bytes(buf[:BATCH_HEADER])
    return len(data) == BATCH_HEADER and _BATCH.unpack(data)[0] == BATCH_MAGIC


def decode_batch(buf: bytes | memoryview | np.ndarray) -> list[Event]:
    """The events of one entry payload ([] if it is not an event batch)."""
    data = bytes(buf)
    if not is_batch(data):
        return []
    _, count = _BATCH.unpack_from(data, 0)
    pos = BATCH_HEADER
    events = []
    for _ in range(count):
        if pos + EVENT_HEADER > len(data):
            raise ValueError(f"event batch truncated at byte {pos} of {len(data)}")
        kind, flags, length, conn_id = _EVENT.unpack_from(data, pos)
        pos += EVENT_HEADER
        if pos + length > len(data):
            raise ValueError(f"event payload truncated at byte {pos} of {len(data)}")
        events.append(Event(kind, conn_id, data[pos : pos + length], flags))
        pos += length
    return events


# ---- numba ----------------------------------------------------------------------------
@njit(nogil=True, cache=True)
def nb_put_u16(buf: np.ndarray, pos: int, value: int) -> None:
    buf[pos] = value & 0xFF
    buf[pos + 1] = (value >> 8) & 0xFF


@njit(nogil=True, cache=True)
def nb_put_u32(buf: np.ndarray, pos: int, value: int) -> None:
    for i in range(4):
        buf[pos + i] = (value >> (8 * i)) & 0xFF


@njit(nogil=True, cache=True)
def nb_put_u64(buf: np.ndarray, pos: int, value: np.uint64) -> None:
    v = np.uint64(value)
    for i in range(8):
        buf[pos + i] = np.uint8((v >> np.uint64(8 * i)) & np.uint64(0xFF))


@njit(nogil=True, cache=True)
def nb_get_u32(buf: np.ndarray, pos: int) -> int:
    v = 0
    for i in range(4):
        v |= int(buf[pos + i]) << (8 * i)
    return v


@njit(nogil=True, cache=True)
def nb_get_u64(buf: np.ndarray, pos: int) -> np.uint64:
    v = np.uint64(0)
    for i in range(8):
        v |= np.uint64(buf[pos + i]) << np.uint64(8 * i)
    return v


@njit(nogil=True, cache=True)
def nb_batch_begin(out: np.ndarray) -> int:
    """Start a batch in `out`; returns the write position of the first event."""
    nb_put_u32(out, 0, BATCH_MAGIC)
    nb_put_u32(out, 4, 0)
    return BATCH_HEADER


@njit(nogil=True, cache=True)
def nb_put_event(
    out: np.ndarray,
    pos: int,
    kind: int,
    flags: int,
    conn_id: np.uint64,
    src: np.ndarray,
    src_pos: int,
    length: int,
) -> int:
    """Append one event (payload = src[src_pos:src_pos+length]); returns the new end.
    The caller checks that pos + EVENT_HEADER + length fits in `out`."""
    nb_put_u16(out, pos, kind)
    nb_put_u16(out, pos + 2, flags)
    nb_put_u32(out, pos + 4, length)
    nb_put_u64(out, pos + 8, conn_id)
    start = pos + EVENT_HEADER
    out[start : start + length] = src[src_pos : src_pos + length]
    return start + length


@njit(nogil=True, cache=True)
def nb_batch_finish(out: np.ndarray, count: int) -> None:
    nb_put_u32(out, 4, count)


@njit(nogil=True, cache=True)
def nb_batch_count(buf: np.ndarray) -> int:
    """Number of events in an entry payload (-1 if it is not an event batch)."""
    if buf.shape[0] < BATCH_HEADER or nb_get_u32(buf, 0) != BATCH_MAGIC:
        return -1
    return nb_get_u32(buf, 4)


@njit(nogil=True, cache=True)
def nb_event_at(buf: np.ndarray, pos: int) -> tuple[int, int, int, np.uint64, int]:
    """The event at byte `pos`: (kind, flags, length, conn_id, payload_pos).
    The next event starts at payload_pos + length."""
    kind = int(buf[pos]) | (int(buf[pos + 1]) << 8)
    flags = int(buf[pos + 2]) | (int(buf[pos + 3]) << 8)
    length = nb_get_u32(buf, pos + 4)
    conn_id = nb_get_u64(buf, pos + 8)
    return kind, flags, length, conn_id, pos + EVENT_HEADER
