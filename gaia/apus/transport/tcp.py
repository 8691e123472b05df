"""The tcp transport: remote writes become frames that the peer's receiver applies.

For replicas on different hosts (or network namespaces). Each replica listens on its
own port; one receiver thread per connected sender runs a numba recv loop that applies
frames in order (body, then the canary word with a release store). A connector thread
dials peers lazily, redials after a peer restarts, and hands each socket to the numba
send path; a write to a peer without a connection is dropped, like a lost message.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading
import time
from collections.abc import Mapping

import numpy as np

from gaia.apus.transport.base import RegionTransport, check_replica_id
from gaia.apus.transport.frames import (
    ACCEPTED,
    HELLO,
    REFUSAL_TEXT,
    Hello,
    group_hash,
    parse_address,
)
from gaia.apus.transport.handle import BROKEN_FD, KIND_TCP, lock_peer, new_handle, unlock_peer
from gaia.apus.transport.segments import map_segment, segment_path
from gaia.apus.transport.tcp_receiver import RECV_BUFFER_BYTES, receive_loop
from gaia.errors import ConfigError, GaiaError

CONNECT_TIMEOUT_S = 0.5
HANDSHAKE_TIMEOUT_S = 2.0
FIRST_RETRY_S = 0.02
MAX_RETRY_S = 0.5
TICK_S = 0.01
SOCKET_BUFFER_BYTES = 4 << 20


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("peer closed during the handshake")
        data += chunk
    return data


class _Receiver:
    """One accepted connection and the thread applying its frames."""

    def __init__(self, sock: socket.socket, thread: threading.Thread) -> None:
        self.sock = sock
        self.thread = thread
        self.counters = np.zeros(4, dtype=np.int64)

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the numba recv with EOF


class TcpTransport(RegionTransport):
    kind = "tcp"

    def __init__(
        self,
        group_id: str,
        replica_id: int,
        region_size: int,
        peers: Mapping[int, str],
        *,
        listen: str | None = None,
        reset: bool = True,
        max_replicas: int = 16,
        send_timeout_ns: int = 2_000_000,
    ) -> None:
        addresses = {int(k): str(v) for k, v in dict(peers).items()}
        super().__init__(
            group_id,
            replica_id,
            region_size,
            addresses,
            max_replicas,
            new_handle(KIND_TCP, replica_id, region_size, max_replicas, send_timeout_ns),
        )
        listen = listen or addresses.get(self.replica_id)
        if listen is None:
            raise ConfigError(
                f"tcp replica {replica_id} has no listen address",
                "pass listen='host:port' or include the replica's own id in peers",
            )
        self._addresses = {p: self._parse(addresses[p], p) for p in self.peers}
        self._hello = Hello(group_hash(group_id), self.replica_id, 0, region_size)
        self._own = map_segment(segment_path(group_id, self.replica_id), region_size, reset)
        self._handle.bases[self.replica_id] = self._own.address
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._receivers: dict[int, _Receiver] = {}
        self._out: dict[int, socket.socket] = {}
        self._next_try = dict.fromkeys(self.peers, 0.0)
        self._retry = dict.fromkeys(self.peers, FIRST_RETRY_S)
        self.last_error: dict[int, str] = {}
        self._listener = self._listen(*self._parse(listen, self.replica_id))
        self.address = "{}:{}".format(*self._listener.getsockname()[:2])
        self._threads = [
            threading.Thread(
                target=self._accept_loop, name=f"tcp-accept-{replica_id}", daemon=True
            ),
            threading.Thread(
                target=self._connect_loop, name=f"tcp-connect-{replica_id}", daemon=True
            ),
        ]
        for thread in self._threads:
            thread.start()

    @staticmethod
    def _parse(text: str, replica: int) -> tuple[str, int]:
        try:
            return parse_address(text)
        except ValueError:
            raise ConfigError(
                f"replica {replica}'s address {text!r} is not host:port",
                "write addresses as 127.0.0.1:7001",
            ) from None

    def _listen(self, host: str, port: int) -> socket.socket:
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SOCKET_BUFFER_BYTES)
        try:
            sock.bind((host, port))
        except OSError as exc:
            sock.close()
            raise GaiaError(
                f"replica {self.replica_id} cannot listen on {host}:{port} ({exc.strerror})",
                "choose a free port (0 picks one) or stop the process holding it",
            ) from None
        sock.listen(64)
        return sock

    @property
    def local(self) -> np.ndarray:
        return self._own.array

    # ---- receiving -------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return  # listener shut down by close()
            threading.Thread(
                target=self._serve, args=(sock,), daemon=True, name=f"tcp-recv-{self.replica_id}"
            ).start()

    def _serve(self, sock: socket.socket) -> None:
        """Handshake, then apply frames until the sender goes away."""
        try:
            sock.settimeout(HANDSHAKE_TIMEOUT_S)
            hello = Hello.unpack(_recv_exact(sock, HELLO.size))
            verdict = hello.verdict(
                Hello(self._hello.group_hash, 0, self.replica_id, self.region_size)
            )
            sock.sendall(bytes([verdict]))
            if verdict != ACCEPTED:
                sock.close()
                return
            sock.settimeout(None)
        except (OSError, ConnectionError):
            sock.close()
            return
        receiver = _Receiver(sock, threading.current_thread())
        with self._lock:
            previous = self._receivers.get(hello.sender)
            self._receivers[hello.sender] = receiver
            stopping = self._stop.is_set()
        if previous is not None:  # the sender reconnected: finish its old stream first
            previous.stop()
            previous.thread.join()
        if not stopping:
            buf = np.empty(RECV_BUFFER_BYTES, dtype=np.uint8)
            receive_loop(sock.fileno(), self._own.address, self.region_size, buf, receiver.counters)
        with self._lock:
            if self._receivers.get(hello.sender) is receiver:
                del self._receivers[hello.sender]
        sock.close()

    # ---- sending ---------------------------------------------------------------------

    def _connect_loop(self) -> None:
        while not self._stop.wait(TICK_S):
            self._reap_dead()
            now = time.monotonic()
            for peer in list(self._addresses):
                if self._handle.fds[peer] < 0 and now >= self._next_try.get(peer, 0.0):
                    self._dial(peer)

    def _reap_dead(self) -> None:
        """Close sockets the send path gave up on, and those the peer closed (a restarted
        peer's kernel resets them), so the next tick redials."""
        for peer, sock in list(self._out.items()):
            broken = self._handle.state[peer, BROKEN_FD] == sock.fileno()
            if not broken and peer not in self._addresses:
                broken = True  # removed from the group
            if not broken:
                readable, _, _ = select.select([sock], [], [], 0)
                broken = bool(readable)  # receivers never speak after the handshake
            if broken:
                lock_peer(self._handle, peer)
                self._handle.fds[peer] = -1
                self._handle.state[peer, BROKEN_FD] = -1
                unlock_peer(self._handle, peer)
                del self._out[peer]
                sock.close()

    def _dial(self, peer: int) -> None:
        address = self._addresses.get(peer)
        if address is None:
            return  # removed meanwhile
        host, port = address
        sock = None
        try:
            sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S)
            sock.settimeout(HANDSHAKE_TIMEOUT_S)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER_BYTES)
            hello = Hello(self._hello.group_hash, self.replica_id, peer, self.region_size)
            sock.sendall(hello.pack())
            verdict = _recv_exact(sock, 1)[0]
            if verdict != ACCEPTED:
                raise ConnectionError(REFUSAL_TEXT.get(verdict, f"refused ({verdict})"))
            sock.settimeout(None)
        except (OSError, ConnectionError) as exc:
            if sock is not None:
                sock.close()
            self.last_error[peer] = str(exc)
            self._next_try[peer] = time.monotonic() + self._retry[peer]
            self._retry[peer] = min(MAX_RETRY_S, self._retry[peer] * 2)
            return
        self._retry[peer] = FIRST_RETRY_S
        self.last_error.pop(peer, None)
        self._out[peer] = sock
        self._handle.fds[peer] = sock.fileno()

    def wait_connected(self, timeout: float = 5.0, peers=None) -> bool:
        wanted = list(self._addresses if peers is None else peers)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self._handle.fds[p] >= 0 for p in wanted):
                return True
            time.sleep(0.005)
        return all(self._handle.fds[p] >= 0 for p in wanted)

    def connected_senders(self) -> list[int]:
        """Replica ids whose writes this replica currently receives."""
        with self._lock:
            return sorted(self._receivers)

    def applied(self) -> int:
        """Frames applied into our region over the live connections (diagnostics)."""
        with self._lock:
            return int(sum(r.counters[0] for r in self._receivers.values()))

    # ---- membership ------------------------------------------------------------------

    def add_peer(self, replica_id: int, address: str) -> None:
        replica_id = check_replica_id(replica_id, self.capacity, "peer id")
        self._next_try[replica_id] = 0.0
        self._retry[replica_id] = FIRST_RETRY_S
        self._addresses[replica_id] = self._parse(address, replica_id)
        self.peers = sorted({*self.peers, replica_id} - {self.replica_id})

    def remove_peer(self, replica_id: int) -> None:
        """Stop writing to a replica that left; the connector closes its socket."""
        self._addresses.pop(replica_id, None)
        self.peers = [p for p in self.peers if p != replica_id]
        lock_peer(self._handle, replica_id)
        self._handle.fds[replica_id] = -1
        unlock_peer(self._handle, replica_id)

    # ---- teardown --------------------------------------------------------------------

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._stop.set()
        self._threads[1].join()
        for peer in range(self.capacity):
            lock_peer(self._handle, peer)
            self._handle.fds[peer] = -1
            unlock_peer(self._handle, peer)
        for sock in self._out.values():
            sock.close()
        self._out.clear()
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)
        self._listener.close()
        self._threads[0].join()
        with self._lock:
            receivers = list(self._receivers.values())
        for receiver in receivers:
            receiver.stop()
            receiver.thread.join()
        self._handle.bases[:] = 0
        self._own.close()
