"""Trusted local connections: a process's own connections to a backup's server.

Why: on a backup, the shim runs input only from connections a trusted local peer marked
(gaia_ring.h "Who may give a server input") — otherwise a client that still believes a
deposed replica leads would have its writes executed there and acknowledged, unreplicated.
The replayer marks its connections itself. Other local peers — the agent's digest and
snapshot clients, a test or fault campaign reading a backup's state — open theirs through
ordinary client libraries, so `trusting(ring, port)` marks, in this process, every TCP
connection made to that port: after connect() it waits until the server has accepted it
(its entry appears in the ring's connection table, found by the socket's local port) and
sets GAIA_CONN_TRUSTED before the library sends its first byte.

Only read-only use is safe on a backup: writes through a trusted connection change one
replica only.
"""

from __future__ import annotations

import select
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from gaia.intercept import ring_layout as L
from gaia.intercept.ring import Ring

ACCEPT_TIMEOUT_S = 10.0

_lock = threading.Lock()
_targets: dict[int, list[Ring]] = {}  # server port -> rings of servers on it (stacked)
_real_connect = socket.socket.connect


def _peer_closed(sock: socket.socket | None) -> bool:
    """Whether the server already closed our connection (a shim that fails closed, e.g.
    its replica is dead): no entry will ever show up for it, so stop waiting."""
    if sock is None:
        return False
    try:  # select first: a socket with a timeout would wait in recv for that long
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) == b""
    except (BlockingIOError, InterruptedError, TimeoutError):
        return False
    except OSError:
        return True


def mark_trusted(rings: list[Ring], local_port: int, timeout: float = ACCEPT_TIMEOUT_S,
                 sock: socket.socket | None = None) -> int | None:
    """Mark the server's entry for our connection from `local_port` (in whichever of the
    rings it shows up) once the server accepted it; the entry index, or None if it did
    not show up in time (a server without the shim) or `sock` was closed by the server."""
    deadline = time.monotonic() + timeout
    while True:
        seen = rings[0].progress
        for ring in rings:
            for entry in ring.conns():
                if entry.state == L.CONN_OPEN and entry.peer_port == local_port:
                    ring.trust_conn(entry.index)
                    return entry.index
        left = deadline - time.monotonic()
        if left <= 0 or _peer_closed(sock):
            return None
        rings[0].wait_progress(seen, min(left, 0.02))  # the shim bumps it at accept


def _connect(sock: socket.socket, address: object) -> None:
    _real_connect(sock, address)
    if sock.family not in (socket.AF_INET, socket.AF_INET6) or not isinstance(address, tuple):
        return
    with _lock:
        rings = list(_targets.get(int(address[1]), ()))
    if rings:
        mark_trusted(rings, sock.getsockname()[1], sock=sock)


@contextmanager
def trusting(ring: Ring, port: int) -> Iterator[None]:
    """While inside, this process's TCP connections to `port` are trusted by the server
    whose shim uses `ring`."""
    with _lock:
        _targets.setdefault(port, []).append(ring)
        socket.socket.connect = _connect  # type: ignore[method-assign]
    try:
        yield
    finally:
        with _lock:
            rings = _targets[port]
            rings.remove(ring)
            if not rings:
                del _targets[port]
            if not _targets:
                socket.socket.connect = _real_connect  # type: ignore[method-assign]
