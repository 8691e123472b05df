"""Backup input delivery: replay committed events into the backup's server, in log order.

Design (DESIGN.md option b): for each committed event the replayer acts on ordinary local
TCP connections to the backup server (OPEN = connect, DATA = send, CLOSE = shutdown) and
waits until the backup's shim reports, through the ring's connection table, that the
server has consumed the bytes AND gone back to waiting for input (processed_bytes) before
it takes the next event. So the server executes inputs one at a time in log order across
connections, whatever its event loop. A GAIA_EV_MORE chain (one leader read split into
several events) is sent as one piece, as the leader's server saw it. The server's
replies are read and discarded here; the shim has already hashed them for the checker.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from gaia.errors import GaiaError
from gaia.intercept import ring_layout as L
from gaia.intercept.feed import CommittedFeed, FeedEvent
from gaia.intercept.ring import Ring

log = logging.getLogger(__name__)
_WAIT_SLICE = 0.05
_DRAIN_ALL_EVERY = 0.05


@dataclass
class _Conn:
    sock: socket.socket
    entry: int  # index in the backup ring's connection table
    sent: int = 0
    chain: list[bytes] = field(default_factory=list)  # pending GAIA_EV_MORE pieces
    chain_index: int = 0


class ReplayError(GaiaError):
    """The backup server did not take a committed event (it died or refused it)."""


class Replayer:
    """Feeds one backup server from a CommittedFeed. Use run() on a thread, or step()."""

    def __init__(
        self,
        feed: CommittedFeed,
        ring: Ring,
        port: int,
        host: str = "127.0.0.1",
        after: int = 0,
        timeout: float = 30.0,
    ) -> None:
        self.feed = feed
        self.ring = ring
        self.addr = (host, port)
        self.timeout = timeout
        self.applied = after  # every entry up to this log index is fully applied
        self.conns: dict[int, _Conn] = {}
        self.skipped = 0  # events for connections opened before `after`
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None
        self._drained_all = 0.0

    # -- running ------------------------------------------------------------------------
    def run(self) -> None:
        try:
            for ev in self.feed.events(self.applied, stop=self._stop.is_set):
                self.step(ev)
                if self._stop.is_set() and not self.conns_pending():
                    break
        except BaseException as exc:  # reported to the owner thread through .error
            self.error = exc
            log.exception("replayer stopped")

    def start(self) -> Replayer:
        self._thread = threading.Thread(target=self.run, name="replayer", daemon=True)
        self._thread.start()
        return self

    def stop(self, close_connections: bool = True) -> None:
        """Stop after the event in progress; close the replay connections (the backup's
        server sees them end) unless told not to."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout)
            self._thread = None
        if close_connections:
            self.close_connections()

    def close_connections(self) -> None:
        for conn in self.conns.values():
            conn.sock.close()
        self.conns.clear()

    def conns_pending(self) -> bool:
        return any(c.chain for c in self.conns.values())

    def wait_applied(self, index: int, timeout: float = 30.0) -> None:
        """Block until every event up to log index `index` was applied."""
        deadline = time.monotonic() + timeout
        while self.applied < index:
            if self.error is not None:
                raise self.error
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"replayer applied {self.applied} of {index} entries within {timeout} s"
                )
            time.sleep(0.002)

    # -- one event ---------------------------------------------------------------------
    def step(self, ev: FeedEvent) -> None:
        if ev.kind == L.EV_OPEN:
            self._open(ev)
        elif ev.kind == L.EV_DATA:
            self._data(ev)
        elif ev.kind == L.EV_CLOSE:
            self._close(ev)
        self.applied = ev.log_index if ev.last else ev.log_index - 1

    def _open(self, ev: FeedEvent) -> None:
        self._free_foreign_closed()
        sock = socket.create_connection(self.addr, timeout=self.timeout)
        sock.settimeout(None)  # blocking: MSG_DONTWAIT drains must not wait
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        port = sock.getsockname()[1]
        entry = self._await(
            lambda: self._find_entry(port),
            f"the backup server to accept the replay connection for conn {ev.conn_id:#x}",
        )
        self.ring.set_conn_u64(entry, L.C_LOG_CONN_ID, ev.conn_id)
        self.conns[ev.conn_id] = _Conn(sock, entry)

    def _data(self, ev: FeedEvent) -> None:
        conn = self.conns.get(ev.conn_id)
        if conn is None:
            self.skipped += 1
            return
        if not conn.chain:
            conn.chain_index = ev.log_index
        conn.chain.append(ev.payload)
        if ev.flags & L.EV_MORE:
            return  # the rest of the same read follows
        data = b"".join(conn.chain)
        conn.chain.clear()
        if self._gone(conn):
            return  # the backup server closed it already (e.g. protocol error)
        self.ring.set_conn_u64(conn.entry, L.C_EV_START, conn.sent)
        self.ring.set_conn_u64(conn.entry, L.C_EV_INDEX, conn.chain_index)
        try:
            conn.sock.sendall(data)
        except OSError:
            return  # closed by the server while we sent: its close is what counts
        conn.sent += len(data)
        self._await(
            lambda: self._gone(conn) or self._processed(conn) >= conn.sent,
            f"the backup server to process log index {ev.log_index}",
        )

    def _close(self, ev: FeedEvent) -> None:
        conn = self.conns.pop(ev.conn_id, None)
        if conn is None:
            self.skipped += 1
            return
        try:
            conn.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        self._await(lambda: self._gone(conn), f"the backup server to close conn {ev.conn_id:#x}")
        conn.sock.close()
        if self.ring.conn_state(conn.entry) == L.CONN_CLOSED:
            self.ring.free_conn(conn.entry)

    # -- shim state ---------------------------------------------------------------------
    def _find_entry(self, port: int) -> int | None:
        for e in self.ring.conns():
            if e.state == L.CONN_OPEN and e.peer_port == port:
                return e.index
        return None

    def _free_foreign_closed(self) -> None:
        """Free closed entries of connections that were not ours (a probe, a digest)."""
        ours = {c.entry for c in self.conns.values()}
        for e in self.ring.conns():
            if e.state == L.CONN_CLOSED and e.index not in ours:
                self.ring.free_conn(e.index)

    def _gone(self, conn: _Conn) -> bool:
        return self.ring.conn_state(conn.entry) != L.CONN_OPEN

    def _processed(self, conn: _Conn) -> int:
        return self.ring.conn_u64(conn.entry, L.C_PROCESSED_BYTES)

    def _drain(self, conns: Iterable[_Conn]) -> None:
        for conn in conns:
            try:
                while conn.sock.recv(1 << 16, socket.MSG_DONTWAIT):
                    pass
            except OSError:  # BlockingIOError when nothing is left; closed sockets
                pass

    def _await(self, ready, what: str, conn: _Conn | None = None):
        """Wait (sleeping on the ring's progress futex) until ready() returns a value
        other than None/False; returns it. Replies are read and dropped meanwhile: those
        of `conn` at every turn, everyone's every _DRAIN_ALL_EVERY seconds (a server must
        never block on a full socket buffer towards the replayer)."""
        deadline = time.monotonic() + self.timeout
        while True:
            seen = self.ring.progress
            result = ready()
            now = time.monotonic()
            if now - self._drained_all > _DRAIN_ALL_EVERY:
                self._drain(self.conns.values())
                self._drained_all = now
            elif conn is not None:
                self._drain((conn,))
            if result is not None and result is not False:
                return result
            if now > deadline:
                raise ReplayError(f"timed out after {self.timeout:.0f} s waiting for {what}",
                                  "check that the backup server is alive and runs the shim "
                                  "with its ring in BACKUP role")
            self.ring.wait_progress(seen, _WAIT_SLICE)
