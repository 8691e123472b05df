"""Applying one remote write to a byte region: body first, the last 8 bytes last.

Why: a poller decides that a write is whole by its trailing 8 bytes (a canary). Every
transport ends in the same two steps — copy the body, then publish the last aligned word
with a release store — so the ordering guarantee lives in one njit function that the shm
sender, the tcp receiver and the Python path all call.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit

from gaia.lowlevel.atomics import address_to_voidptr, load_acquire, store_release

CANARY_BYTES = 8


@njit(nogil=True, cache=True, inline="always")
def bytes_at(address: int, size: int) -> np.ndarray:
    """The `size` bytes at `address` as a uint8 array (no copy, no ownership)."""
    return numba.carray(address_to_voidptr(address), size, np.uint8)


@njit(nogil=True, cache=True, inline="always")
def words_at(address: int, size_bytes: int) -> np.ndarray:
    """The memory at an 8-aligned `address` as uint64 words (for atomic loads/stores)."""
    return numba.carray(address_to_voidptr(address), size_bytes // 8, np.uint64)


@njit(nogil=True, cache=True)
def write_is_valid(region_size: int, offset: int, length: int) -> bool:
    """The write rules every transport enforces: at least the canary word, the canary
    8-aligned (an aligned 8-byte store is atomic on x86-64) and inside the region."""
    return (
        offset >= 0
        and length >= CANARY_BYTES
        and (offset + length) % CANARY_BYTES == 0
        and offset + length <= region_size
    )


@njit(nogil=True, cache=True, inline="always")
def little_endian_word(src: np.ndarray, start: int) -> np.uint64:
    """The 8 bytes src[start:start+8] as a little-endian uint64 (any alignment)."""
    word = np.uint64(0)
    for i in range(CANARY_BYTES):
        word |= np.uint64(src[start + i]) << np.uint64(8 * i)
    return word


@njit(nogil=True, cache=True)
def apply_write(
    region_address: int, region_size: int, offset: int, src: np.ndarray, start: int, length: int
) -> None:
    """Copy src[start:start+length] to region[offset:], publishing the last 8 bytes last.

    The caller has checked `write_is_valid`. The release store orders the body before the
    canary word for any reader that loads the canary with acquire semantics."""
    region = bytes_at(region_address, region_size)
    body = length - CANARY_BYTES
    region[offset : offset + body] = src[start : start + body]
    words = words_at(region_address, region_size)
    store_release(words, (offset + body) // CANARY_BYTES, little_endian_word(src, start + body))


@njit(nogil=True, cache=True)
def publish_word(region_address: int, region_size: int, offset: int, word: np.uint64) -> None:
    """Release-store one canary word at an 8-aligned offset (the tcp receiver's last step)."""
    store_release(words_at(region_address, region_size), offset // CANARY_BYTES, word)


@njit(nogil=True, cache=True)
def load_word(region_address: int, region_size: int, offset: int) -> np.uint64:
    """Acquire-load the 8-aligned word at `offset` (a poller's canary check)."""
    return load_acquire(words_at(region_address, region_size), offset // CANARY_BYTES)
