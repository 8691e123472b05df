"""Reading just enough of Ethernet/IPv4/TCP frames, and the output checker.

Why the output checker compares payload streams, not frames: the leader and the backup
segment, time-stamp and acknowledge differently (TCP timestamps, delayed ACKs), so their
frames differ even when they send the same bytes. What must agree is each connection's
byte stream at the same sequence numbers. Before a sync a connection opened since the
last sync has different initial sequence numbers in the two guests; its streams cannot
line up until the sync makes the backup a copy of the leader (`realign`).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

ETH_IPV4 = 0x0800
PROTO_TCP = 6
SYN, ACK, FIN, RST = 0x02, 0x10, 0x01, 0x04


@dataclass(frozen=True)
class TcpSegment:
    src: bytes
    dst: bytes
    sport: int
    dport: int
    seq: int
    flags: int
    payload: bytes

    @property
    def flow(self) -> tuple[bytes, int, bytes, int]:
        return (self.src, self.sport, self.dst, self.dport)


def parse_tcp(frame: bytes) -> TcpSegment | None:
    """The TCP segment inside an Ethernet frame, or None for anything else."""
    if len(frame) < 54 or struct.unpack_from("!H", frame, 12)[0] != ETH_IPV4:
        return None
    ihl = (frame[14] & 0x0F) * 4
    if frame[23] != PROTO_TCP:
        return None
    total = struct.unpack_from("!H", frame, 16)[0]
    tcp = 14 + ihl
    if len(frame) < tcp + 20:
        return None
    sport, dport, seq = struct.unpack_from("!HHI", frame, tcp)
    data_off = (frame[tcp + 12] >> 4) * 4
    flags = frame[tcp + 13]
    payload = frame[tcp + data_off : 14 + total]
    return TcpSegment(frame[26:30], frame[30:34], sport, dport, seq, flags, bytes(payload))


def is_syn(seg: TcpSegment | None) -> bool:
    return seg is not None and bool(seg.flags & SYN) and not seg.flags & ACK


def is_syn_ack(seg: TcpSegment | None) -> bool:
    return seg is not None and bool(seg.flags & SYN) and bool(seg.flags & ACK)


@dataclass
class _Stream:
    """In-order payload of one direction of one connection, as seen from one replica."""

    next_seq: int | None = None
    pending: bytearray = field(default_factory=bytearray)  # bytes not yet compared

    def feed(self, seg: TcpSegment) -> None:
        if seg.flags & SYN:
            self.next_seq = (seg.seq + 1) & 0xFFFFFFFF
            self.pending.clear()
            return
        if self.next_seq is None:
            self.next_seq = seg.seq
        if seg.seq == self.next_seq and seg.payload:
            self.pending += seg.payload
            self.next_seq = (self.next_seq + len(seg.payload)) & 0xFFFFFFFF
        # retransmissions and out-of-order segments carry nothing new for the comparison

    @property
    def start_seq(self) -> int | None:
        """Sequence number of pending[0]."""
        if self.next_seq is None:
            return None
        return (self.next_seq - len(self.pending)) & 0xFFFFFFFF


@dataclass
class OutputChecker:
    """Compares the leader's and the backup's outbound byte streams per connection."""

    matched_bytes: int = 0
    mismatched_bytes: int = 0
    mismatches: list[tuple[tuple[bytes, int, bytes, int], int]] = field(default_factory=list)
    _streams: dict[tuple[str, tuple[bytes, int, bytes, int]], _Stream] = field(default_factory=dict)
    limit: int = 1 << 20  # bytes kept per stream while the other side lags

    def feed(self, role: str, frame: bytes) -> None:
        seg = parse_tcp(frame)
        if seg is None:
            return
        stream = self._streams.setdefault((role, seg.flow), _Stream())
        stream.feed(seg)
        self._compare(seg.flow)

    def _compare(self, flow) -> None:
        lead = self._streams.get(("leader", flow))
        back = self._streams.get(("backup", flow))
        if lead is None or back is None or lead.start_seq != back.start_seq:
            return  # not lined up (different ISNs before a sync): nothing comparable yet
        n = min(len(lead.pending), len(back.pending))
        if n:
            a, b = bytes(lead.pending[:n]), bytes(back.pending[:n])
            bad = 0 if a == b else sum(x != y for x, y in zip(a, b, strict=True))
            self.matched_bytes += n - bad
            if bad:
                self.mismatched_bytes += bad
                self.mismatches.append((flow, bad))
            del lead.pending[:n]
            del back.pending[:n]
        for s in (lead, back):
            if len(s.pending) > self.limit:
                del s.pending[: len(s.pending) - self.limit]

    def realign(self) -> None:
        """After a sync the backup is a copy of the leader: restart its streams at the
        leader's positions and drop the leader's bytes no backup will ever send."""
        for (role, flow), stream in list(self._streams.items()):
            if role != "leader":
                continue
            stream.pending.clear()
            self._streams[("backup", flow)] = _Stream(next_seq=stream.next_seq)


# ----------------------------------------------------------------------------- backup gate
def seq_after(a: int, b: int) -> bool:
    """a is later than b in TCP's modulo-2^32 sequence space."""
    return 0 < ((a - b) & 0xFFFFFFFF) < 0x80000000


Conn = tuple[int, bytes, int]  # (guest port, client ip, client port)


def conn_of_inbound(seg: TcpSegment) -> Conn:
    return (seg.dport, seg.src, seg.sport)


def conn_of_outbound(seg: TcpSegment) -> Conn:
    return (seg.sport, seg.dst, seg.dport)


def segment_end(seg: TcpSegment) -> int:
    return (seg.seq + len(seg.payload) + bool(seg.flags & SYN) + bool(seg.flags & FIN)) & 0xFFFFFFFF


@dataclass
class BackupGate:
    """Hands client frames to a lagging backup only when its TCP will accept them.

    Why: the client acknowledges the LEADER's replies. A frame that acknowledges bytes the
    backup has not sent yet is an "ACK of unsent data", and Linux drops the whole segment,
    request included; the client never resends it (the leader acknowledged it), so the
    backup's connection stalls until the next sync. The gate keeps the backup's input in
    agreed order and releases the head frame once the backup has sent what the frame
    acknowledges, on connections whose state the backup shares with the leader (those
    present at the last sync). After `timeout` seconds it gives up waiting (the backup
    has diverged; the next sync repairs it) and counts it."""

    ack_offset: int = 8  # TCP ack field offset within the TCP header
    timeout: float = 2.0
    queue: list[tuple[bytes, float]] = field(default_factory=list)
    aligned: set[Conn] = field(default_factory=set)
    sent: dict[str, dict[Conn, int]] = field(default_factory=lambda: {"leader": {}, "backup": {}})
    gave_up: int = 0

    def outbound(self, role: str, seg: TcpSegment) -> None:
        conn, end = conn_of_outbound(seg), segment_end(seg)
        known = self.sent[role].get(conn)
        if known is None or seq_after(end, known):
            self.sent[role][conn] = end

    def inbound(self, seg: TcpSegment) -> None:
        if seg.flags & SYN:  # a new connection (or a reused port): not shared yet
            conn = conn_of_inbound(seg)
            self.aligned.discard(conn)
            for table in self.sent.values():
                table.pop(conn, None)

    def _ready(self, frame: bytes, since: float, now: float) -> bool:
        seg = parse_tcp(frame)
        if seg is None or not seg.flags & ACK:
            return True
        conn = conn_of_inbound(seg)
        if conn not in self.aligned:
            return True
        ack = struct.unpack_from("!I", frame, 14 + (frame[14] & 0x0F) * 4 + self.ack_offset)[0]
        sent = self.sent["backup"].get(conn)
        if sent is not None and not seq_after(ack, sent):
            return True
        if now - since > self.timeout:
            self.gave_up += 1
            return True
        return False

    def push(self, frame: bytes, now: float) -> None:
        self.queue.append((frame, now))

    def pop_ready(self, now: float) -> list[bytes]:
        """Frames from the head of the queue the backup can take now, in order."""
        n = 0
        while n < len(self.queue) and self._ready(self.queue[n][0], self.queue[n][1], now):
            n += 1
        out = [f for f, _ in self.queue[:n]]
        del self.queue[:n]
        return out

    def backup_behind(self) -> list[Conn]:
        """Shared connections on which the backup has not yet sent all the leader sent."""
        lead, back = self.sent["leader"], self.sent["backup"]
        return [c for c in self.aligned if c in lead and (c not in back or seq_after(lead[c], back[c]))]

    def realign(self) -> None:
        """After a sync the backup is the leader's copy: every connection the leader has
        is shared, and the backup has sent exactly what the leader has."""
        self.sent["backup"] = dict(self.sent["leader"])
        self.aligned = set(self.sent["leader"])


# ---------------------------------------------------------------------------- output commit
@dataclass
class OutputCommit:
    """Holds the leader's frames to the client until the backup has sent the same bytes.

    Why: a reply that reaches the client tells it its write happened. The backup gets the
    same input, but its guest may drop it (a full receive window, an ACK of data it has not
    sent) and the client never resends what the leader acknowledged; if the leader then
    dies, the promoted backup lacks an acknowledged write. So a frame carrying data on a
    connection the backup shares goes out only once the backup has sent up to the same
    sequence number (it executed the same input), or after a sync made the backup the
    leader's copy. Frames leave in the order the leader wrote them; `overdue()` says when
    the head waited `timeout` seconds (the switch then asks for a sync)."""

    timeout: float = 1.0
    held: list[tuple[bytes, Conn | None, int, float]] = field(default_factory=list)
    timeouts: int = 0

    def offer(self, frame: bytes, seg: TcpSegment | None, gate: BackupGate, now: float
              ) -> list[bytes]:
        """A leader frame with a backup present: the frames that may go out now."""
        needs = seg is not None and segment_end(seg) != seg.seq and not seg.flags & SYN
        if not needs and not self.held:
            return [frame]
        conn = conn_of_outbound(seg) if needs and seg is not None else None
        self.held.append((frame, conn, segment_end(seg) if seg is not None else 0, now))
        return self.ready(gate)

    def ready(self, gate: BackupGate) -> list[bytes]:
        """Held frames from the head whose bytes the backup has sent too."""
        n = 0
        for _, conn, end, _ in self.held:
            if conn is not None:
                sent = gate.sent["backup"].get(conn) if conn in gate.aligned else None
                if sent is None or seq_after(end, sent):
                    break
            n += 1
        out = [frame for frame, _, _, _ in self.held[:n]]
        del self.held[:n]
        return out

    def overdue(self, now: float) -> bool:
        if self.held and now - self.held[0][3] > self.timeout:
            self.timeouts += 1
            self.held[0] = (*self.held[0][:3], now)  # once per timeout, not every poll
            return True
        return False

    def release_all(self) -> list[bytes]:
        """After a sync (the backup is the leader's copy) or without a backup."""
        out = [frame for frame, _, _, _ in self.held]
        self.held.clear()
        return out

    def drop_all(self) -> int:
        """Failover: the dead leader's held replies never reach the client (the promoted
        backup answers from its own state; the client's TCP retransmits as needed)."""
        n = len(self.held)
        self.held.clear()
        return n
