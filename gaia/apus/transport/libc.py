"""libc calls for numba nopython code: sockets and poll (clock, yield, sleep and futex come
from gaia.lowlevel.syscalls and are re-exported here).

Why here and not through ctypes: numba embeds a ctypes function pointer as a constant,
which forbids `cache=True`, so every process would recompile the transport and the
baselines' loops (10+ s each on a busy 2-core machine, for every replica started).
`types.ExternalFunction` declares the libc symbol instead; LLVM resolves it at load time
and the compiled code can be cached on disk. Pointers travel as integers.
"""

from __future__ import annotations

import numba
import numpy as np
from numba import njit, types

from gaia.lowlevel.atomics import address_to_voidptr
from gaia.lowlevel.syscalls import futex_wait, futex_wake, now_ns, sleep_ns, yield_cpu

MSG_DONTWAIT = 0x40
MSG_NOSIGNAL = 0x4000
SHUT_RDWR = 2
EINTR = 4
EAGAIN = 11
POLLIN = 0x001

_ssize, _size, _int, _ptr = types.int64, types.uint64, types.intc, types.voidptr
_send = types.ExternalFunction("send", _ssize(_int, _ptr, _size, _int))
_sendmsg = types.ExternalFunction("sendmsg", _ssize(_int, _ptr, _int))
_recv = types.ExternalFunction("recv", _ssize(_int, _ptr, _size, _int))
_shutdown = types.ExternalFunction("shutdown", _int(_int, _int))
_poll = types.ExternalFunction("poll", _int(_ptr, types.uint64, _int))
_errno_location = types.ExternalFunction("__errno_location", _ptr())


@njit(nogil=True, cache=True)
def errno() -> int:
    """The calling thread's errno (valid right after a failed call)."""
    return numba.carray(_errno_location(), 1, np.int32)[0]


@njit(nogil=True, cache=True)
def send(fd: int, address: int, length: int, flags: int) -> int:
    return _send(np.intc(fd), address_to_voidptr(address), np.uint64(length), np.intc(flags))


@njit(nogil=True, cache=True)
def sendmsg(fd: int, msghdr_address: int, flags: int) -> int:
    return _sendmsg(np.intc(fd), address_to_voidptr(msghdr_address), np.intc(flags))


@njit(nogil=True, cache=True)
def recv(fd: int, address: int, length: int, flags: int) -> int:
    return _recv(np.intc(fd), address_to_voidptr(address), np.uint64(length), np.intc(flags))


@njit(nogil=True, cache=True)
def shutdown(fd: int) -> int:
    return _shutdown(np.intc(fd), np.intc(SHUT_RDWR))


@njit(nogil=True, cache=True)
def poll(pollfds: np.ndarray, timeout_ms: int) -> int:
    """poll(2) over `pollfds`, an int32 array of (fd, events | revents << 16) pairs.
    Returns how many fds have events (0 on timeout, -1 on error/EINTR)."""
    return _poll(address_to_voidptr(pollfds.ctypes.data), np.uint64(pollfds.size // 2),
                 np.intc(timeout_ms))


@njit(nogil=True, cache=True)
def send_all(fd: int, address: int, length: int) -> bool:
    """Blocking send of every byte (False when the peer is gone)."""
    sent = 0
    while sent < length:
        n = send(fd, address + sent, length - sent, MSG_NOSIGNAL)
        if n > 0:
            sent += n
        elif n < 0 and errno() == EINTR:
            continue
        else:
            return False
    return True


__all__ = ["errno", "futex_wait", "futex_wake", "now_ns", "poll", "recv", "send", "send_all",
           "sendmsg", "shutdown", "sleep_ns", "yield_cpu"]
