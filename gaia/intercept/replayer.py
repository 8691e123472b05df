"""Backup input delivery: replay committed events into the backup's server, in log order.

Design (DESIGN.md option b): for each committed event the replayer acts on ordinary local
TCP connections to the backup server (OPEN = connect, DATA = send, CLOSE = shutdown) and
waits until the backup's shim reports, through the ring's connection table, that the
server has consumed the bytes AND gone back to waiting for input (processed_bytes) before
it takes the next event. So the server executes inputs one at a time in log order across
connections, whatever its event loop. A GAIA_EV_MORE chain (one leader read split into
several events) is sent as one piece, as the leader's server saw it. The server's
replies are read and discarded here; the shim has already hashed them for the checker.

For the guard (guard.py): pause_at()/wait_quiesced()/resume() hold the replayer at an
entry boundary so the server's state is exactly "every entry up to i" while it is
checkpointed; with the app's `framing`, open_sessions() names the connections open there
with their session prefixes and partial requests (guard_session.py), and a replayer
started from a checkpoint (`after`, `sessions`) re-opens them first. With `alive`, a
backup server that dies is reported as BackupServerDied at once, not after a timeout.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from gaia.errors import GaiaError
from gaia.intercept import ring_layout as L
from gaia.intercept.feed import CommittedFeed, FeedEvent
from gaia.intercept.guard_session import (
    Framing,
    Session,
    extend_pending,
    extend_prefix,
    session_of,
)
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
    prefix: bytes = b""  # the session prefix seen so far (guard_session.py)
    pending: bytes = b""  # input after the last complete request
    total: int = 0  # input bytes of the connection in all (across a recovery)


class ReplayError(GaiaError):
    """The backup server did not take a committed event (it died or refused it)."""


class BackupServerDied(ReplayError):
    """The backup's server process is gone: the replica must be recovered."""

    def __init__(self, applied: int, what: str) -> None:
        super().__init__(
            f"the backup server died while the replayer was {what} (every entry up to "
            f"log index {applied} was applied)",
            "recover the replica from its newest checkpoint (Guard.recover); the server "
            "log says why it died",
        )
        self.applied = applied


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
        sessions: Iterable[Session] = (),
        framing: Framing | None = None,
        alive: Callable[[], bool] | None = None,
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
        self.framing = framing
        self.alive = alive
        self._adopt = list(sessions)
        self._cond = threading.Condition()
        self._hold: int | None = None  # pause_at(): no entry after this one is started
        self._stepping = False
        # the log entry whose events are being applied (one entry may batch several
        # connections' events): a pause waits until its last event, never inside it
        self._in_entry: int | None = None
        self._running = False

    # -- running ------------------------------------------------------------------------
    def run(self) -> None:
        self._running = True
        try:
            for session in self._adopt:
                self._reopen(session)
            for ev in self.feed.events(self.applied, stop=self._stop.is_set):
                if not self._enter_step(ev):
                    break
                try:
                    self.step(ev)
                finally:
                    self._leave_step()
                if self._stop.is_set() and not self.conns_pending():
                    break
        except BaseException as exc:  # reported to the owner thread through .error
            self.error = self._explain(exc)
            log.warning("replayer stopped: %s", self.error)
        finally:
            with self._cond:
                self._running = False
                self._cond.notify_all()

    def _explain(self, exc: BaseException) -> BaseException:
        """A dead server turns any error (refused connect, reset, timeout) into one clear
        BackupServerDied."""
        if isinstance(exc, BackupServerDied) or self.alive is None or self.alive():
            return exc
        died = BackupServerDied(self.applied, f"delivering entry {self.applied + 1}")
        died.__cause__ = exc
        return died

    # -- pausing at an entry boundary (checkpoints) --------------------------------------
    def pause_at(self, index: int) -> None:
        """Start no entry after `index` (an GAIA_EV_MORE chain in progress is finished
        first, so the pause may land a little later); wait_quiesced() says where."""
        with self._cond:
            self._hold = index
            self._cond.notify_all()

    def wait_quiesced(self, timeout: float = 30.0) -> int:
        """Block until the replayer holds still at an entry boundary at or after the
        pause_at() index: every entry up to the returned index was executed by the
        server, nothing after it was sent."""
        deadline = time.monotonic() + timeout
        with self._cond:
            if self._hold is None:
                raise RuntimeError("wait_quiesced() without pause_at()")
            while not self._quiesced():
                if self.error is not None:
                    raise self.error
                if not self._running and self._thread is not None:
                    raise ReplayError("the replayer stopped before it reached the pause",
                                      "start it again (or recover the replica)")
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(
                        f"replayer applied {self.applied} of {self._hold} entries within "
                        f"{timeout} s (pausing for a checkpoint)")
                self._cond.wait(min(left, _WAIT_SLICE))
            return self.applied

    def resume(self) -> None:
        with self._cond:
            self._hold = None
            self._cond.notify_all()

    def _quiesced(self) -> bool:
        return (self._hold is not None and not self._stepping and self._in_entry is None
                and self.applied >= self._hold and not self.conns_pending())

    def _enter_step(self, ev: FeedEvent) -> bool:
        """Wait while paused before `ev`; False when stopped meanwhile."""
        with self._cond:
            while (self._hold is not None and ev.log_index > self._hold
                   and ev.log_index != self._in_entry
                   and not self.conns_pending() and not self._stop.is_set()):
                self._cond.notify_all()
                self._cond.wait(_WAIT_SLICE)
            if self._stop.is_set() and not self.conns_pending():
                return False
            self._stepping = True
            return True

    def _leave_step(self) -> None:
        with self._cond:
            self._stepping = False
            self._cond.notify_all()

    def open_sessions(self) -> list[Session]:
        """The connections open now, with their session prefixes and partial requests
        (call while quiesced)."""
        return [session_of(cid, c.prefix, c.pending, c.total)
                for cid, c in self.conns.items()]

    def start(self) -> Replayer:
        """Run the replay thread; a second call is a no-op (two threads on one feed would
        execute every entry twice)."""
        if self._thread is not None:
            return self
        self._running = True
        self._thread = threading.Thread(target=self.run, name="replayer", daemon=True)
        self._thread.start()
        return self

    def stop(self, close_connections: bool = True) -> None:
        """Stop after the event in progress; close the replay connections (the backup's
        server sees them end) unless told not to. A replayer quiesced at a pause_at()
        boundary sends nothing more, so it is not waited for: its thread may sleep in
        the log's commit wait for up to the feed's poll timeout and ends by itself
        (a promoted backup must not lose those milliseconds of its takeover)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
            quiesced = self._quiesced()
        if self._thread is not None and not quiesced:
            self._thread.join(self.timeout)
        self._thread = None
        if close_connections:
            self.close_connections()

    def close_connections(self) -> None:
        conns, self.conns = self.conns, {}  # a thread still ending reads the old table
        for conn in conns.values():
            conn.sock.close()

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
        self._in_entry = None if ev.last else ev.log_index

    def _reopen(self, session: Session) -> None:
        """Open a connection for a session that was open at the checkpoint this replayer
        starts from, and send it the session prefix and pending partial request (input
        of no log index: the shim hashes the answer to it as a greeting)."""
        self._open(FeedEvent(self.applied, L.EV_OPEN, session.conn_id, b""))
        conn = self.conns[session.conn_id]
        conn.prefix, conn.pending = session.prefix, session.pending
        conn.total = len(session.replay)
        if session.replay and self._deliver(conn, session.replay, 0):
            self._executed(conn, f"the backup server to take the session of conn "
                                 f"{session.conn_id:#x}")

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
        self.ring.trust_conn(entry)  # before the first byte: see gaia_ring.h
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
        sent = self._deliver(conn, data, conn.chain_index)
        if self.framing is not None:  # while the server executes the input
            conn.prefix = extend_prefix(self.framing.login, conn.prefix, data)
            conn.pending = extend_pending(self.framing.complete, conn.pending, data)
            conn.total += len(data)
        if sent:
            self._executed(conn, f"the backup server to process log index {ev.log_index}")

    def _deliver(self, conn: _Conn, data: bytes, index: int) -> bool:
        """Send one input, tagged with its log index for the output snapshots (0: none);
        False when the server has closed the connection."""
        if self._gone(conn):
            return False  # the backup server closed it already (e.g. protocol error)
        self.ring.set_conn_u64(conn.entry, L.C_EV_START, conn.sent)
        self.ring.set_conn_u64(conn.entry, L.C_EV_INDEX, index)
        try:
            conn.sock.sendall(data)
        except OSError:
            return False  # closed by the server while we sent: its close is what counts
        conn.sent += len(data)
        return True

    def _executed(self, conn: _Conn, what: str) -> None:
        """Wait until the server has executed everything sent on `conn`."""
        self._await(lambda: self._gone(conn) or self._processed(conn) >= conn.sent, what)

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
            if self.alive is not None and not self.alive():
                raise BackupServerDied(self.applied, f"waiting for {what}")
            if now > deadline:
                raise ReplayError(f"timed out after {self.timeout:.0f} s waiting for {what}",
                                  "check that the backup server is alive and runs the shim "
                                  "with its ring in BACKUP role")
            self.ring.wait_progress(seen, _WAIT_SLICE)
