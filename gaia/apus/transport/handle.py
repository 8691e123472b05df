"""The numba-side view of a transport: one handle type, one `remote_write` for shm and tcp.

Why one type: the APUS hot loop is compiled once per handle type, so shm and tcp share a
namedtuple whose `kind` field is checked at run time. The handle holds only numpy arrays
and integers; the owning Python transport mutates those arrays (peer addresses, sockets)
and the loop sees the change through acquire loads.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from gaia.apus.transport import libc
from gaia.apus.transport.frames import HEADER_BYTES, OP_WAKE, OP_WRITE
from gaia.apus.transport.libc import futex_wake, now_ns, yield_cpu
from gaia.apus.transport.memory import apply_write, load_word, write_is_valid
from gaia.lowlevel.atomics import compare_exchange, cpu_relax, load_acquire, store_release

KIND_SHM = 1
KIND_TCP = 2

# Columns of NumbaHandle.state (one row per replica id).
BROKEN_FD = 0  # a socket the sender gave up on; the connector closes it (-1: none)
CONGESTED = 1  # 1 after a send timed out with nothing sent: further writes drop at once
SENT = 2
DROPPED = 3
STATE_COLUMNS = 8
LOCK_STRIDE = 8  # one lock per 64-byte cache line
SCRATCH_WORDS = 16  # header (2) + two iovecs (4) + msghdr (7), per peer
WAKE_ALL = 1 << 30


class NumbaHandle(NamedTuple):
    """Everything `remote_write` needs, as numba-typable fields."""

    kind: int
    self_id: int
    region_size: int
    send_timeout_ns: int
    bases: np.ndarray  # int64[capacity]: mapped region base per replica (0: not mapped)
    fds: np.ndarray  # int64[capacity]: connected socket per peer (-1: none)
    locks: np.ndarray  # int64[capacity * LOCK_STRIDE]
    state: np.ndarray  # int64[capacity, STATE_COLUMNS]
    scratch: np.ndarray  # int64[capacity, SCRATCH_WORDS]


def new_handle(
    kind: int, self_id: int, region_size: int, capacity: int, send_timeout_ns: int = 2_000_000
) -> NumbaHandle:
    state = np.zeros((capacity, STATE_COLUMNS), dtype=np.int64)
    state[:, BROKEN_FD] = -1
    return NumbaHandle(
        kind,
        self_id,
        region_size,
        send_timeout_ns,
        np.zeros(capacity, dtype=np.int64),
        np.full(capacity, -1, dtype=np.int64),
        np.zeros(capacity * LOCK_STRIDE, dtype=np.int64),
        state,
        np.zeros((capacity, SCRATCH_WORDS), dtype=np.int64),
    )


@njit(nogil=True, cache=True)
def lock_peer(h: NumbaHandle, peer: int) -> None:
    """Per-peer spinlock: frames of concurrent writers to one socket never interleave."""
    spins = 0
    while compare_exchange(h.locks, peer * LOCK_STRIDE, 0, 1) != 0:
        spins += 1
        if spins < 1000:
            cpu_relax()
        else:
            yield_cpu()


@njit(nogil=True, cache=True)
def unlock_peer(h: NumbaHandle, peer: int) -> None:
    store_release(h.locks, peer * LOCK_STRIDE, 0)


@njit(nogil=True, cache=True)
def _fill_iovecs(scratch: np.ndarray, data_address: int, length: int, sent: int) -> None:
    """Point the msghdr in `scratch` at what is left of header + body after `sent` bytes."""
    base = scratch.ctypes.data
    if sent < HEADER_BYTES:
        scratch[2] = base + sent
        scratch[3] = HEADER_BYTES - sent
        scratch[4] = data_address
        scratch[5] = length
        iovlen = 2 if length > 0 else 1
        first_iov = base + 2 * 8
    else:
        scratch[4] = data_address + (sent - HEADER_BYTES)
        scratch[5] = length - (sent - HEADER_BYTES)
        iovlen = 1
        first_iov = base + 4 * 8
    # struct msghdr: name, namelen, iov, iovlen, control, controllen, flags
    scratch[6] = 0
    scratch[7] = 0
    scratch[8] = first_iov
    scratch[9] = iovlen
    scratch[10] = 0
    scratch[11] = 0
    scratch[12] = 0


@njit(nogil=True, cache=True)
def _give_up(h: NumbaHandle, peer: int, fd: int) -> None:
    """The connection is unusable (peer gone, or stalled mid-frame): hand it to the
    connector to close and reconnect; no later frame may follow a torn one."""
    h.state[peer, BROKEN_FD] = fd
    store_release(h.fds, peer, -1)


@njit(nogil=True, cache=True)
def _tcp_send(
    h: NumbaHandle, peer: int, op: int, offset: int, data_address: int, length: int
) -> int:
    lock_peer(h, peer)
    fd = load_acquire(h.fds, peer)
    if fd < 0:
        h.state[peer, DROPPED] += 1
        unlock_peer(h, peer)
        return 0
    scratch = h.scratch[peer]
    scratch[0] = offset
    scratch[1] = length | (op << 32)
    total = HEADER_BYTES + length
    sent = 0
    deadline = 0
    flags = libc.MSG_DONTWAIT | libc.MSG_NOSIGNAL
    while sent < total:
        _fill_iovecs(scratch, data_address, length, sent)
        n = libc.sendmsg(fd, scratch.ctypes.data + 6 * 8, flags)
        if n > 0:
            sent += n
            continue
        err = libc.errno() if n < 0 else 0
        if err == libc.EAGAIN or err == libc.EINTR:
            if sent == 0 and h.state[peer, CONGESTED] == 1:
                break  # a stalled peer: drop at once instead of stalling every write
            now = now_ns()
            if deadline == 0:
                deadline = now + h.send_timeout_ns
                continue
            if now < deadline:
                yield_cpu()
                continue
            if sent == 0:
                h.state[peer, CONGESTED] = 1
            else:
                _give_up(h, peer, fd)
            break
        _give_up(h, peer, fd)
        break
    if sent == total:
        h.state[peer, CONGESTED] = 0
        h.state[peer, SENT] += 1
        unlock_peer(h, peer)
        return 1
    h.state[peer, DROPPED] += 1
    unlock_peer(h, peer)
    return 0


@njit(nogil=True, cache=True, inline="always")
def _mapped_base(h: NumbaHandle, peer: int) -> int:
    """The peer region's address when we write it directly (shm, or our own region); 0
    when it is not mapped (dropped); -1 when the write goes through a socket."""
    if peer < 0 or peer >= h.bases.size:
        raise ValueError("peer id outside the handle's capacity")
    if h.kind == KIND_SHM or peer == h.self_id:
        return load_acquire(h.bases, peer)
    return -1


@njit(nogil=True, cache=True)
def remote_write(
    h: NumbaHandle, peer: int, offset: int, src: np.ndarray, start: int, length: int
) -> int:
    """One-sided write of src[start:start+length] into `peer`'s region at `offset`.

    The last 8 bytes become visible last (release). Returns 1 when applied (shm, or our
    own region) or handed to the kernel (tcp), 0 when dropped (peer unreachable)."""
    if not write_is_valid(h.region_size, offset, length):
        raise ValueError(
            "remote_write: need length >= 8, (offset + length) % 8 == 0, inside the region"
        )
    if start < 0 or start + length > src.size:
        raise ValueError("remote_write: source range outside the source array")
    base = _mapped_base(h, peer)
    if base > 0:
        apply_write(base, h.region_size, offset, src, start, length)
        return 1
    if base == 0:
        return 0
    return _tcp_send(h, peer, OP_WRITE, offset, src[start:].ctypes.data, length)


@njit(nogil=True, cache=True)
def remote_wake(h: NumbaHandle, peer: int, offset: int) -> int:
    """Wake futex sleepers on the 32-bit word at `offset` of `peer`'s region (pollers
    that backed off into a futex wait). Returns 1 when issued, 0 when dropped."""
    if offset < 0 or offset % 4 or offset + 4 > h.region_size:
        raise ValueError("remote_wake: need a 4-aligned offset inside the region")
    base = _mapped_base(h, peer)
    if base > 0:
        futex_wake(base + offset, WAKE_ALL)
        return 1
    if base == 0:
        return 0
    return _tcp_send(h, peer, OP_WAKE, offset, 0, 0)


@njit(nogil=True, cache=True)
def remote_read_word(h: NumbaHandle, peer: int, offset: int) -> np.uint64:
    """Acquire-load the 8-aligned word at `offset` of `peer`'s region (an RDMA READ on
    shm; the DARE-style baseline's leader reads backups' state this way). shm only."""
    if offset < 0 or offset % 8 or offset + 8 > h.region_size:
        raise ValueError("remote_read_word: need an 8-aligned offset inside the region")
    base = _mapped_base(h, peer)
    if base < 0:
        raise ValueError("remote_read_word: the tcp transport has no remote reads")
    if base == 0:
        return np.uint64(0)
    return load_word(base, h.region_size, offset)
