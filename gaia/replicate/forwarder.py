"""The stable front port: unmodified clients connect to one address, and each connection
is forwarded to whoever leads when it opens.

One extra hop (measured separately by the overhead experiment). A connection whose
leader dies is closed; the client reconnects to the same front port and reaches the new
leader. Plain threads and blocking sockets: two pumps per connection.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)
LeaderFn = Callable[[], tuple[str, int] | None]
_CHUNK = 1 << 16


class Forwarder:
    def __init__(self, port: int, leader: LeaderFn, host: str = "127.0.0.1") -> None:
        self.leader = leader
        self.host = host
        self.sock = socket.create_server((host, port), reuse_port=False)
        self.port = self.sock.getsockname()[1]
        self.forwarded = 0
        self.refused = 0
        self._lock = threading.Lock()
        self._open: set[_Pair] = set()
        self._thread = threading.Thread(target=self._accept, name="front-port", daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return  # closed
            target = self.leader()
            try:
                if target is None:
                    raise OSError("no serving leader")
                upstream = socket.create_connection(target, timeout=5)
            except OSError as exc:
                self.refused += 1
                log.info("front port: %s", exc)
                client.close()
                continue
            upstream.settimeout(None)
            for s in (client, upstream):
                s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pair = _Pair(client, upstream)
            with self._lock:
                self._open.add(pair)
                self.forwarded += 1
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(pair, a, b), daemon=True).start()

    def _pump(self, pair: _Pair, src: socket.socket, dst: socket.socket) -> None:
        """Copy src -> dst; an end of input is passed on as a half-close, an error ends
        both directions; the last pump of a pair closes it."""
        how = socket.SHUT_WR
        try:
            while data := src.recv(_CHUNK):
                dst.sendall(data)
        except OSError:
            how = socket.SHUT_RDWR
        for s in ((dst,) if how == socket.SHUT_WR else (src, dst)):
            try:
                s.shutdown(how)
            except OSError:
                pass
        with self._lock:
            pair.running -= 1
            if pair.running == 0:
                self._open.discard(pair)
                pair.close()

    def close(self) -> None:
        self.sock.close()
        with self._lock:
            for pair in self._open:
                pair.shutdown()


class _Pair:
    """A forwarded connection: the client's socket and the leader's."""

    def __init__(self, a: socket.socket, b: socket.socket) -> None:
        self.socks = (a, b)
        self.running = 2

    def shutdown(self) -> None:
        for s in self.socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def close(self) -> None:
        for s in self.socks:
            s.close()
