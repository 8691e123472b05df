"""The replicated VM on APUS: the members, the frame orderer, the sync channel, failover.

Members (proposal §2.3.1), one APUS replica each, run by the VM-FT host side:
- the leader VM's host side (priority 3: it leads while its VM lives);
- the major backup's host side (priority 2: when the leader dies its election timeout
  is the shorter one, so it becomes the APUS leader, as its VM becomes the serving VM);
- the standby (priority 1, non-executing): it agrees on and logs every frame but runs no
  VM; its log is what a promoted standby replays after its checkpoint.
Here all three run embedded in this process (one host); each is a full APUS replica over
its own shared-memory region, so a deployment across hosts changes only the transport.

What travels through APUS:
- every inbound client frame (`ApusOrderer.order`): proposed through the leader's input
  ring, tagged with its position; `order` returns once it is committed, and the switch
  delivers frames in that order to both VMs;
- the sync's DIRTY and COMPARE messages (Algorithm 1): each is a REQUEST entry; the
  major backup's host side answers it in the reply slot it writes before acking (APUS's
  ack payload), and the leader waits for that member's reply, not just a majority.
Replies start with a status byte (0 = answer follows, 1 = error text follows).
"""

from __future__ import annotations

import struct
import threading
import time
from collections.abc import Callable
from pathlib import Path

from gaia.apus.client import Client
from gaia.apus.core import NotLeaderError, NullApp
from gaia.apus.layout import LayoutConfig
from gaia.apus.logstore import Entry, LogConfig
from gaia.apus.messages import Config
from gaia.apus.reader import CommittedLogReader
from gaia.apus.runtime.embedded import EmbeddedReplica
from gaia.apus.runtime.segments import unlink_segments
from gaia.apus.runtime.spec import GroupSpec
from gaia.errors import GaiaError
from gaia.intercept.events import decode_batch
from gaia.vm.channel import BackupEndpoint, MessageLimits, WireComparisonChannel

LEADER, MAJOR, STANDBY = 0, 1, 2
PRIORITY = {LEADER: 3, MAJOR: 2, STANDBY: 1}
REPLY_BYTES = 16384 + 64  # a 131,072-page bitmap (512 MiB of RAM) per DIRTY piece
FRAME_HEADER = struct.Struct("<Q")  # the frame's position in the agreed sequence
OK, FAILED = b"\x00", b"\x01"
ELECTION_TICKS = 300  # ticks of 1 ms
# first election and catch-up: generous, a cold numba cache compiles for minutes under load
START_TIMEOUT_S = 300.0


class HostSide(NullApp):
    """What one member's host side lends its APUS replica (AppHooks). Frames reach the
    VMs through the switch, so there is no state machine to apply entries to (NullApp);
    a member holding the major backup's endpoint answers the sync's requests."""

    def __init__(self) -> None:
        self.endpoint: BackupEndpoint | None = None

    def reply(self, entry: Entry) -> bytes:
        if self.endpoint is None:
            return FAILED + b"this member holds no sync endpoint"
        try:
            return OK + self.endpoint.handle(entry.payload)
        except (ValueError, RuntimeError) as exc:
            return FAILED + str(exc).encode()[:200]


class ApusMembers:
    """The three members as embedded APUS replicas; roles move on failover/promotion."""

    def __init__(self, run_dir: Path, request_timeout: float = 10.0) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.request_timeout = request_timeout
        self.spec = GroupSpec(
            replicas=[LEADER, MAJOR, STANDBY],
            layout=LayoutConfig(max_members=8, ring_slots=64, reply_size=REPLY_BYTES),
            log=LogConfig(index_cap=1 << 16, arena_bytes=32 << 20),
            priorities=dict(PRIORITY),
            executing={STANDBY: False},
            ring_dead_ms=100,
            # 300 ms, not APUS's 20 ms default: QEMU's TCG threads keep this host's cores
            # busy, and a member starved for 100 ms (seen here) must not depose a healthy
            # leader. The major backup takes over within ~0.6-0.9 s (its priority
            # outranks the standby's by one timeout).
            election_ticks=ELECTION_TICKS,
        )
        self.spec.save(self.run_dir)
        self.apps: dict[int, HostSide] = {}
        self.nodes: dict[int, EmbeddedReplica] = {}
        self.ever: list[int] = []
        self.leader_id = LEADER  # the member leading APUS
        self.serving, self.major, self.standby = LEADER, MAJOR, STANDBY  # members by VM role
        self.limits = MessageLimits(request=self.spec.layout.max_payload,
                                    reply=REPLY_BYTES - len(OK))

    # -- lifecycle ----------------------------------------------------------------------
    def _start_member(self, replica: int) -> None:
        self.apps[replica] = HostSide()
        self.ever.append(replica)
        self.nodes[replica] = EmbeddedReplica(self.run_dir, replica, self.apps[replica]).start()

    def start(self, timeout: float = START_TIMEOUT_S) -> ApusMembers:
        """Leader and standby first (the leader normally wins with the standby's vote),
        then the major backup joins an elected leader. Which member leads is not forced:
        on a busy host or a cold numba cache (compiling stalls a member for seconds) the
        first election can go either way; any leader but the major's member serves, and
        request_major replaces a major's member that leads."""
        try:
            self._start_member(LEADER)
            self._start_member(STANDBY)
            self.leader(timeout)
            self._start_member(MAJOR)
            self._wait_caught_up(MAJOR, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for node in self.nodes.values():
            node.stop()
        self.nodes.clear()
        unlink_segments(self.spec.group_id, self.ever)

    def leader(self, timeout: float = 10.0) -> EmbeddedReplica:
        """The member leading APUS now (waiting out an election). Under heavy load the
        lead can move between live members; the serving VM does not move with it."""
        deadline = time.monotonic() + timeout
        while True:
            for replica, node in self.nodes.items():
                if node.is_leader:
                    self.leader_id = replica
                    return node
            if time.monotonic() > deadline:
                raise GaiaError(f"no APUS member leads after {timeout:.0f} s",
                                "is a majority of the members running?")
            time.sleep(0.002)

    def _wait_caught_up(self, replica: int, timeout: float) -> None:
        """Until `replica` follows the current leader and holds everything it committed:
        entries a member receives by catch-up are not answered, only those it accepts
        live."""
        deadline = time.monotonic() + timeout
        while True:
            leader = self.leader(timeout)
            node = self.nodes[replica]
            if node.leader == self.leader_id and node.commit >= leader.commit:
                return
            if time.monotonic() > deadline:
                raise GaiaError(f"APUS member {replica} did not catch up with leader "
                                f"{self.leader_id}", f"see the replica logs under {self.run_dir}")
            time.sleep(0.002)

    # -- failover -----------------------------------------------------------------------
    def fail_leader(self, timeout: float = 30.0) -> float:
        """The leader VM's host side dies with it; the major backup's member takes over
        (its priority outranks the standby's; if the standby already led, it keeps the
        lead, which serves as well). Seconds until a member leads."""
        start = time.monotonic()
        self.nodes.pop(self.serving).stop()
        self.leader(timeout)
        took = time.monotonic() - start
        self.serving, self.major = self.major, -1  # no major until a promotion
        return took

    def promote_standby(self) -> int:
        """The standby's member becomes the executing major backup (priority 2); a fresh
        non-executing standby joins; dead members leave. Returns the new standby's id."""
        leader = self.leader()
        self._remove_dead(leader)
        leader.change_config(Config({**dict(leader.core.config.members),
                                     self.standby: (True, True, PRIORITY[MAJOR])}))
        new = self._add_member(leader, executing=False, priority=PRIORITY[STANDBY])
        self._wait_caught_up(self.standby, self.request_timeout)
        self.major, self.standby = self.standby, new
        return new

    def _replace_major(self, timeout: float = 30.0) -> int:
        """The major backup's member took the APUS lead (the leader's member was starved
        past its election timeout: a busy host, or numba compiling on a cold cache) and
        APUS does not hand the lead back by priority. A member cannot answer its own
        requests, so this one is replaced: stopped (a member of higher or lower priority
        wins the next election), and a fresh member joins as the major, holding the same
        sync endpoint. Returns the new major's id."""
        old = self.major
        endpoint = self.apps[old].endpoint
        self.nodes.pop(old).stop()
        leader = self.leader(timeout)  # one of the other two, after an election
        self._remove_dead(leader)
        new = self._add_member(leader, executing=True, priority=PRIORITY[MAJOR])
        self._wait_caught_up(new, timeout)
        self.apps[new].endpoint = endpoint
        self.major = new
        return new

    def _reconfigure(self, change: Callable[[], object], timeout: float = 30.0) -> None:
        """One membership change, retried while APUS refuses it because a new leader has
        not committed its view's first entry yet (right after an election)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                change()
                return
            except GaiaError as exc:
                if "still in progress" not in exc.problem or time.monotonic() > deadline:
                    raise
                time.sleep(0.005)

    def _remove_dead(self, leader: EmbeddedReplica) -> None:
        for dead in [r for r in leader.core.config.members if r not in self.nodes]:
            self._reconfigure(lambda dead=dead: leader.remove(dead))

    def _add_member(self, leader: EmbeddedReplica, executing: bool, priority: int) -> int:
        """Start a member under a new id and make it a voter; returns its id."""
        new = max(self.ever) + 1
        self._start_member(new)
        self._reconfigure(lambda: leader.add_learner(new, executing=executing,
                                                     priority=priority))
        self._reconfigure(lambda: leader.promote(new))
        return new

    # -- the sync channel ---------------------------------------------------------------
    def request_major(self, request: bytes, attempts: int = 3) -> bytes:
        """One round trip to the major backup: a REQUEST entry and its reply slot. A
        request whose reply does not come (the entry reached the major by catch-up after
        an election, which APUS does not answer) is proposed again: the sync messages
        are idempotent."""
        if self.major < 0:
            raise GaiaError("no major backup member to sync with", "promote the standby")
        reply = None
        for _ in range(attempts):
            leader = self.leader(self.request_timeout)
            if self.leader_id == self.major:
                self._replace_major()
                leader = self.leader(self.request_timeout)
            try:
                index = leader.call(lambda core: core.request(request), self.request_timeout)
                leader.wait_commit(index, self.request_timeout)
                reply = self._await_reply(leader, index, self.request_timeout / attempts)
            except (NotLeaderError, TimeoutError):  # deposed, or stalled past the timeout
                continue
            if reply is not None:
                break
        else:
            raise GaiaError(f"the major backup (member {self.major}) did not answer a sync "
                            f"request in {attempts} tries", "is its host side running?")
        if reply[:1] != OK:
            raise GaiaError(f"the major backup refused a sync message: {reply[1:].decode()}",
                            "re-clone the backup (clone_backup)")
        return reply[1:]

    def _await_reply(self, leader: EmbeddedReplica, index: int, timeout: float) -> bytes | None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            replies = leader.call(lambda core: core.replies(index), self.request_timeout)
            if self.major in replies:
                return replies[self.major]
            if not leader.is_leader:
                return None  # deposed: propose again through the new leader
            time.sleep(0.0005)
        return None

    def channel(self, endpoint: BackupEndpoint) -> WireComparisonChannel:
        """A ComparisonChannel whose backup end is the major backup member's host side."""
        if self.major < 0:
            raise GaiaError("no major backup member to sync with", "promote the standby")
        for app in self.apps.values():
            app.endpoint = None
        self.apps[self.major].endpoint = endpoint
        return WireComparisonChannel(self.request_major, self.limits)


class ApusOrderer:
    """InputOrderer on APUS, with the standby's log as the record of agreed frames."""

    def __init__(self, members: ApusMembers, timeout: float = 30.0) -> None:
        self.members = members
        self.timeout = timeout
        self.client = Client(members.run_dir)
        self._lock = threading.Lock()
        self._index: list[int] = []  # log index of each position since _log_start
        self._log_start = 0
        self._last = 0  # newest log index holding a frame
        self._reader: CommittedLogReader | None = None
        self._reader_of = -1
        self._standby_log()  # registered now, before APUS may compact anything

    def order(self, frame: bytes) -> int:
        with self._lock:
            seq = self._log_start + len(self._index)
            index = self.client.propose(FRAME_HEADER.pack(seq) + frame, self.timeout)
            self._index.append(index)
            self._last = max(self._last, index)
            return seq

    @property
    def agreed(self) -> int:
        with self._lock:
            return self._log_start + len(self._index)

    def _standby_log(self) -> CommittedLogReader:
        """The standby member's own committed log (held open: a registered reader keeps
        APUS from compacting frames a promotion may still need)."""
        if self._reader is None or self._reader_of != self.members.standby:
            if self._reader is not None:
                self._reader.close()
            self._reader = CommittedLogReader(self.members.spec.group_id, self.members.standby)
            self._reader_of = self.members.standby
            self._release_before_first()
        return self._reader

    def _release_before_first(self) -> None:
        """Let APUS compact the standby's log up to the oldest frame still needed."""
        assert self._reader is not None
        self._reader.applied(self._index[0] - 1 if self._index else self._last)

    def truncate(self, upto: int) -> None:
        """Frames before position `upto` are covered by a standby checkpoint."""
        with self._lock:
            drop = max(0, min(upto - self._log_start, len(self._index)))
            del self._index[:drop]
            self._log_start += drop
            self._standby_log()
            self._release_before_first()

    def frames_since(self, start: int) -> list[bytes]:
        """The frames agreed from position `start` on, read from the standby's log."""
        with self._lock:
            if start < self._log_start:
                raise ValueError(f"frames before {self._log_start} were truncated")
            indices = self._index[start - self._log_start :]
            log = self._standby_log()
        if not indices:
            return []
        if log.wait_commit(indices[-1] - 1, self.timeout) < indices[-1]:
            raise GaiaError("the standby has not committed every agreed frame",
                            "is the standby member running?")
        frames: dict[int, bytes] = {}
        for entry in log.entries(indices[0], indices[-1]):
            for event in decode_batch(entry.payload):
                (seq,) = FRAME_HEADER.unpack_from(event.payload)
                if seq >= start:  # a proposal retried over a failover commits twice
                    frames.setdefault(seq, event.payload[FRAME_HEADER.size :])
        return [frames[s] for s in sorted(frames)]

    def close(self) -> None:
        self.client.close()
        if self._reader is not None:
            self._reader.close()
            self._reader = None
