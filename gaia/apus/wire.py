"""Byte formats of everything replicas write into each other's regions, as njit codecs.

Why checksums AND canaries: a one-sided write gives the reader no completion event. The
writer puts a canary in the last 8 bytes (the transport makes them land last, with a
release store); the reader accepts a record only when the canary matches the record's
own header and the checksum matches its body. A torn, stale, half-overwritten or zeroed
slot therefore never validates. The same entry format is the durable log's record format,
so recovery validates records the same way.

All formats are arrays of little-endian uint64 words, addressed by a word offset `w`
into a uint64 view of the buffer.

Entry record (log ring slots, the local log, the durable log):
    0 index  1 view (creation view)  2 length | kind << 32  3 checksum
    4 send view  5 commit hint  6.. payload (zero-padded to 8)  then canary
  checksum covers words 0-2 and the payload; canary = f(checksum, send view, commit),
  so the stamp (send view, commit) can be rewritten per send without rehashing the body.
Blob (mailbox messages, replies): 0 key  1 view  2 length | kind << 32  3 checksum
    4.. payload  then canary = f(checksum, key).
Small records (ack, heartbeat): n field words then canary = f(fields).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from gaia.lowlevel.atomics import load_acquire, store_release

U64 = np.uint64
_PRIME = U64(0x9E3779B97F4A7C15)
_FIN1 = U64(0xFF51AFD7ED558CCD)
_FIN2 = U64(0xC4CEB9FE1A85EC53)
SEED_ENTRY = U64(0x454E545259)  # "ENTRY"
SEED_BLOB = U64(0x424C4F42)
SEED_SMALL = U64(0x534D414C4C)

E_INDEX = 0
E_VIEW = 1
E_LENKIND = 2
E_CHECKSUM = 3
E_SEND_VIEW = 4
E_COMMIT = 5
E_PAYLOAD = 6

B_KEY = 0
B_VIEW = 1
B_LENKIND = 2
B_CHECKSUM = 3
B_PAYLOAD = 4

# Entry kinds.
K_EVENTS = 1  # a batch of input ring events (gaia.intercept.events encoding)
K_NOOP = 2  # the first entry of a leader's view
K_CONFIG = 3  # a membership change (messages.Config)
K_REQUEST = 4  # request/reply: backups answer before acking it
K_APP = 5  # an opaque application entry proposed from Python

# Small records.
ACK_WORDS = 4  # view, persisted index, counter, incarnation
A_VIEW = 0
A_INDEX = 1
A_COUNTER = 2
A_INCARNATION = 3  # which run of the backup wrote it: a restarted backup's old acks lie
HB_WORDS = 4  # view, commit, counter, last index
H_VIEW = 0
H_COMMIT = 1
H_COUNTER = 2
H_LAST = 3


@njit(nogil=True, cache=True, inline="always")
def mix(h: np.uint64, w: np.uint64) -> np.uint64:
    h = (h ^ w) * _PRIME
    return h ^ (h >> U64(29))


@njit(nogil=True, cache=True, inline="always")
def finish(h: np.uint64) -> np.uint64:
    """Final avalanche; never 0, so a zeroed slot cannot validate."""
    h ^= h >> U64(33)
    h *= _FIN1
    h ^= h >> U64(33)
    h *= _FIN2
    h ^= h >> U64(33)
    return h | U64(1)


@njit(nogil=True, cache=True)
def hash_words(w64: np.ndarray, start: int, count: int, h: np.uint64) -> np.uint64:
    for k in range(count):
        h = mix(h, w64[start + k])
    return h


@njit(nogil=True, cache=True, inline="always")
def payload_words(length: int) -> int:
    return (length + 7) // 8


@njit(nogil=True, cache=True, inline="always")
def entry_words(length: int) -> int:
    """Words of an entry record with `length` payload bytes, canary included."""
    return E_PAYLOAD + payload_words(length) + 1


@njit(nogil=True, cache=True, inline="always")
def entry_length(w64: np.ndarray, w: int) -> int:
    return np.int64(w64[w + E_LENKIND] & U64(0xFFFFFFFF))


@njit(nogil=True, cache=True, inline="always")
def entry_kind(w64: np.ndarray, w: int) -> int:
    return np.int64(w64[w + E_LENKIND] >> U64(32))


@njit(nogil=True, cache=True)
def entry_checksum(w64: np.ndarray, w: int, length: int) -> np.uint64:
    h = hash_words(w64, w + E_INDEX, 3, SEED_ENTRY)
    return finish(hash_words(w64, w + E_PAYLOAD, payload_words(length), h))


@njit(nogil=True, cache=True, inline="always")
def entry_canary(checksum: np.uint64, send_view: int, commit: int) -> np.uint64:
    return finish(mix(mix(mix(SEED_ENTRY, checksum), U64(send_view)), U64(commit)))


@njit(nogil=True, cache=True)
def entry_build(
    buf: np.ndarray,
    w64: np.ndarray,
    w: int,
    index: int,
    view: int,
    kind: int,
    src: np.ndarray,
    start: int,
    length: int,
) -> None:
    """Write a new entry record at word `w`: header, payload, padding, checksum.

    The stamp (send view, commit, canary) is written by `entry_stamp`."""
    b = (w + E_PAYLOAD) * 8
    buf[b : b + length] = src[start : start + length]
    pad_end = (w + E_PAYLOAD + payload_words(length)) * 8
    buf[b + length : pad_end] = 0
    w64[w + E_INDEX] = U64(index)
    w64[w + E_VIEW] = U64(view)
    w64[w + E_LENKIND] = U64(length) | (U64(kind) << U64(32))
    w64[w + E_CHECKSUM] = entry_checksum(w64, w, length)


@njit(nogil=True, cache=True)
def entry_stamp(w64: np.ndarray, w: int, send_view: int, commit: int) -> None:
    """Set the per-send fields and the canary of a record in one's own memory."""
    length = entry_length(w64, w)
    w64[w + E_SEND_VIEW] = U64(send_view)
    w64[w + E_COMMIT] = U64(commit)
    canary = entry_canary(w64[w + E_CHECKSUM], send_view, commit)
    store_release(w64, w + E_PAYLOAD + payload_words(length), canary)


@njit(nogil=True, cache=True)
def entry_valid(w64: np.ndarray, w: int, max_payload: int) -> bool:
    """True when the record at `w` is whole: canary and checksum both match."""
    if w + E_PAYLOAD >= w64.size:
        return False
    # atomic loads: a plain load of a word another process writes may be hoisted out of
    # the caller's polling loop, and the poller would never see the entry arrive
    length = np.int64(load_acquire(w64, w + E_LENKIND) & U64(0xFFFFFFFF))
    if length > max_payload or w + entry_words(length) > w64.size:
        return False
    canary = load_acquire(w64, w + E_PAYLOAD + payload_words(length))
    checksum = w64[w + E_CHECKSUM]
    if canary != entry_canary(checksum, np.int64(w64[w + E_SEND_VIEW]), np.int64(w64[w + E_COMMIT])):
        return False
    if entry_length(w64, w) != length:
        return False
    return checksum == entry_checksum(w64, w, length)


# -- blobs (mailbox messages, replies) -------------------------------------------------
@njit(nogil=True, cache=True, inline="always")
def blob_words(length: int) -> int:
    return B_PAYLOAD + payload_words(length) + 1


@njit(nogil=True, cache=True)
def _blob_checksum(w64: np.ndarray, w: int, length: int) -> np.uint64:
    h = hash_words(w64, w, 3, SEED_BLOB)
    return finish(hash_words(w64, w + B_PAYLOAD, payload_words(length), h))


@njit(nogil=True, cache=True)
def blob_build(
    buf: np.ndarray,
    w64: np.ndarray,
    w: int,
    key: int,
    view: int,
    kind: int,
    src: np.ndarray,
    length: int,
) -> int:
    """Write a sealed blob at word `w` (canary included); returns its size in bytes."""
    b = (w + B_PAYLOAD) * 8
    buf[b : b + length] = src[:length]
    end = (w + B_PAYLOAD + payload_words(length)) * 8
    buf[b + length : end] = 0
    w64[w + B_KEY] = U64(key)
    w64[w + B_VIEW] = U64(view)
    w64[w + B_LENKIND] = U64(length) | (U64(kind) << U64(32))
    checksum = _blob_checksum(w64, w, length)
    w64[w + B_CHECKSUM] = checksum
    w64[w + B_PAYLOAD + payload_words(length)] = finish(mix(checksum, U64(key)))
    return blob_words(length) * 8


@njit(nogil=True, cache=True)
def blob_valid(w64: np.ndarray, w: int, max_payload: int) -> bool:
    length = np.int64(load_acquire(w64, w + B_LENKIND) & U64(0xFFFFFFFF))
    if length > max_payload or w + blob_words(length) > w64.size:
        return False
    canary = load_acquire(w64, w + B_PAYLOAD + payload_words(length))
    checksum = w64[w + B_CHECKSUM]
    if canary != finish(mix(checksum, w64[w + B_KEY])):
        return False
    return checksum == _blob_checksum(w64, w, length)


# -- small records (acks, heartbeats) ------------------------------------------------
@njit(nogil=True, cache=True)
def small_seal(w64: np.ndarray, w: int, count: int) -> None:
    """Compute and store the canary after `count` field words (the writer's scratch)."""
    w64[w + count] = finish(hash_words(w64, w, count, SEED_SMALL))


@njit(nogil=True, cache=True)
def small_read(w64: np.ndarray, w: int, count: int, out: np.ndarray) -> bool:
    """Copy the fields into `out` when the record validates (False: torn or empty)."""
    canary = load_acquire(w64, w + count)
    for k in range(count):
        out[k] = w64[w + k]
    return canary == finish(hash_words(out, 0, count, SEED_SMALL))
