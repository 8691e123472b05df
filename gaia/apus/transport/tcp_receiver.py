"""The tcp receiver's loop: read frames from one sender and apply them in order.

Runs in a Python thread but entirely inside numba with the GIL released, so applying a
write costs no Python. The body goes into the region (large bodies straight from the
socket, no staging copy); the last 8 bytes are published with a release store, exactly
as the shm transport does, so pollers cannot tell the transports apart.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from gaia.apus.transport import libc
from gaia.apus.transport.frames import HEADER_BYTES, OP_WAKE, OP_WRITE
from gaia.apus.transport.libc import futex_wake
from gaia.apus.transport.memory import (
    CANARY_BYTES,
    bytes_at,
    little_endian_word,
    publish_word,
    write_is_valid,
)

ENDED = 0  # the sender closed the connection (or we shut it down)
PROTOCOL_ERROR = 1  # a frame that breaks the write rules: the connection is dropped
RECV_ERROR = 2
APPLIED = 0  # index into `counters`
WAKE_ALL = 1 << 30
RECV_BUFFER_BYTES = 1 << 18


@njit(nogil=True, cache=True)
def _refill(fd: int, buf: np.ndarray, head: int, tail: int) -> tuple[int, int, int]:
    """Move the unread bytes to the front and read more. Returns (head, tail, status)
    with status 1 on data, ENDED / RECV_ERROR (as -1 - code) otherwise."""
    keep = tail - head
    for i in range(keep):  # forward copy: the destination is always before the source
        buf[i] = buf[head + i]
    while True:
        n = libc.recv(fd, buf.ctypes.data + keep, buf.size - keep, 0)
        if n > 0:
            return 0, keep + n, 1
        if n == 0:
            return 0, keep, -1 - ENDED
        if libc.errno() != libc.EINTR:
            return 0, keep, -1 - RECV_ERROR


@njit(nogil=True, cache=True)
def receive_loop(
    fd: int, region_address: int, region_size: int, buf: np.ndarray, counters: np.ndarray
) -> int:
    """Apply frames from `fd` into the region until the stream ends; returns why it ended."""
    region = bytes_at(region_address, region_size)
    head = 0
    tail = 0
    while True:
        while tail - head < HEADER_BYTES:
            head, tail, status = _refill(fd, buf, head, tail)
            if status < 0:
                return -1 - status
        offset = np.int64(little_endian_word(buf, head))
        word = little_endian_word(buf, head + 8)
        length = np.int64(word & np.uint64(0xFFFFFFFF))
        op = np.int64(word >> np.uint64(32))
        head += HEADER_BYTES
        if op == OP_WAKE:
            if offset < 0 or offset % 4 or offset + 4 > region_size:
                return PROTOCOL_ERROR
            futex_wake(region_address + offset, WAKE_ALL)
            continue
        if op != OP_WRITE or not write_is_valid(region_size, offset, length):
            return PROTOCOL_ERROR
        dst = offset
        remaining = length - CANARY_BYTES
        while remaining > 0:
            if tail == head:
                head = 0
                tail = 0
                if remaining >= buf.size // 2:  # big body: straight into the region
                    n = libc.recv(fd, region_address + dst, remaining, 0)
                    if n > 0:
                        dst += n
                        remaining -= n
                        continue
                    if n == 0:
                        return ENDED
                    if libc.errno() != libc.EINTR:
                        return RECV_ERROR
                    continue
                head, tail, status = _refill(fd, buf, head, tail)
                if status < 0:
                    return -1 - status
            take = min(remaining, tail - head)
            region[dst : dst + take] = buf[head : head + take]
            dst += take
            head += take
            remaining -= take
        while tail - head < CANARY_BYTES:
            head, tail, status = _refill(fd, buf, head, tail)
            if status < 0:
                return -1 - status
        publish_word(region_address, region_size, dst, little_endian_word(buf, head))
        head += CANARY_BYTES
        counters[APPLIED] += 1
