"""Framed messages on a TCP stream, read and written from numba.

Every message is a whole number of little-endian uint64 words; word 0 holds the type
(low 8 bits) and the message's size in bytes (the rest). A reader keeps one receive
buffer per connection with (head, tail) in a small int64 array; head always sits on a
word boundary, so messages can be read through a uint64 view without copying.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from gaia.apus.transport import libc
from gaia.apus.transport.memory import little_endian_word

HEAD = 0
TAIL = 1
BUFFER_BYTES = 1 << 20


@njit(nogil=True, cache=True, inline="always")
def header(kind: int, size: int) -> np.uint64:
    return np.uint64(kind) | (np.uint64(size) << np.uint64(8))


@njit(nogil=True, cache=True, inline="always")
def message_kind(word: np.uint64) -> int:
    return int(word & np.uint64(0xFF))


@njit(nogil=True, cache=True, inline="always")
def message_size(word: np.uint64) -> int:
    return int(word >> np.uint64(8))


@njit(nogil=True, cache=True)
def fill(fd: int, buf: np.ndarray, rs: np.ndarray, wait: bool) -> int:
    """Read more bytes (blocking when `wait`). Returns bytes read, 0 at end of stream,
    -1 when nothing was there (non-blocking) and -2 on error."""
    if rs[HEAD] > 0 and buf.size - rs[TAIL] < buf.size // 4:
        keep = rs[TAIL] - rs[HEAD]
        buf[:keep] = buf[rs[HEAD] : rs[TAIL]].copy()
        rs[HEAD] = 0
        rs[TAIL] = keep
    flags = 0 if wait else libc.MSG_DONTWAIT
    while True:
        n = libc.recv(fd, buf.ctypes.data + rs[TAIL], buf.size - rs[TAIL], flags)
        if n >= 0:
            rs[TAIL] += n
            return n
        err = libc.errno()
        if err == libc.EINTR:
            continue
        return -1 if err == libc.EAGAIN else -2


@njit(nogil=True, cache=True)
def next_message(buf: np.ndarray, rs: np.ndarray) -> int:
    """Byte offset of the next complete message in `buf`, or -1 when none is complete.
    The caller consumes it with `rs[HEAD] += size`."""
    available = rs[TAIL] - rs[HEAD]
    if available < 8:
        return -1
    size = message_size(little_endian_word(buf, rs[HEAD])) if rs[HEAD] % 8 == 0 else 0
    if size < 8 or size % 8 or size > buf.size // 2:
        return -2  # a stream out of step: the caller drops the connection
    return rs[HEAD] if available >= size else -1


def new_reader() -> tuple[np.ndarray, np.ndarray]:
    """A receive buffer and its (head, tail) state."""
    return np.zeros(BUFFER_BYTES, dtype=np.uint8), np.zeros(2, dtype=np.int64)
