"""TCP parsing, the output checker and the backup gate (pure logic, no VMs)."""

from __future__ import annotations

from gaia.vm.frames import (
    ACK,
    SYN,
    BackupGate,
    OutputChecker,
    OutputCommit,
    is_syn,
    is_syn_ack,
    parse_tcp,
)

from .packets import tcp, udp

C, G = "10.0.0.1", "10.0.0.2"


def test_parse_tcp_and_flags() -> None:
    seg = parse_tcp(tcp(C, G, 5000, 6379, 100, 0, SYN))
    assert seg is not None and (seg.sport, seg.dport, seg.seq) == (5000, 6379, 100)
    assert is_syn(seg) and not is_syn_ack(seg)
    assert is_syn_ack(parse_tcp(tcp(G, C, 6379, 5000, 7, 101, SYN | ACK)))
    assert parse_tcp(udp(C, G, 1, 2, b"x" * 40)) is None
    assert parse_tcp(tcp(C, G, 1, 2, 0, 0, ACK, b"hello")).payload == b"hello"


def test_checker_matches_equal_streams_and_counts_differences() -> None:
    checker = OutputChecker()
    for role in ("leader", "backup"):
        checker.feed(role, tcp(G, C, 6379, 5000, 1000, 1, ACK, b"+OK\r\n"))
    checker.feed("leader", tcp(G, C, 6379, 5000, 1005, 1, ACK, b"$1\r\na\r\n"))
    checker.feed("backup", tcp(G, C, 6379, 5000, 1005, 1, ACK, b"$1\r\nb\r\n"))
    assert checker.matched_bytes == 5 + 6
    assert checker.mismatched_bytes == 1


def test_checker_ignores_streams_with_different_isns_until_realigned() -> None:
    checker = OutputChecker()
    checker.feed("leader", tcp(G, C, 6379, 5000, 1000, 1, SYN | ACK))
    checker.feed("backup", tcp(G, C, 6379, 5000, 9000, 1, SYN | ACK))
    checker.feed("leader", tcp(G, C, 6379, 5000, 1001, 1, ACK, b"+OK\r\n"))
    checker.feed("backup", tcp(G, C, 6379, 5000, 9001, 1, ACK, b"+OK\r\n"))
    assert checker.matched_bytes == 0 and checker.mismatched_bytes == 0
    checker.realign()
    checker.feed("leader", tcp(G, C, 6379, 5000, 1006, 1, ACK, b"+OK\r\n"))
    checker.feed("backup", tcp(G, C, 6379, 5000, 1006, 1, ACK, b"+OK\r\n"))
    assert checker.matched_bytes == 5


def test_gate_holds_frames_acknowledging_unsent_backup_data() -> None:
    gate = BackupGate(timeout=60)
    # the leader has sent bytes up to 2000 on an established connection; a sync follows
    gate.outbound("leader", parse_tcp(tcp(G, C, 6379, 5000, 1990, 1, ACK, b"x" * 10)))
    gate.realign()
    req1 = tcp(C, G, 5000, 6379, 1, 2000, ACK, b"GET a\r\n")
    req2 = tcp(C, G, 5000, 6379, 8, 2005, ACK, b"GET b\r\n")  # acks the leader's reply
    other = udp(C, G, 1, 2, b"y" * 30)
    for frame in (req1, req2, other):
        gate.push(frame, now=0.0)
    assert gate.pop_ready(now=0.1) == [req1]  # req2 would be an ACK of unsent data
    assert gate.pop_ready(now=0.2) == []  # in-order: `other` waits behind req2
    gate.outbound("backup", parse_tcp(tcp(G, C, 6379, 5000, 2000, 8, ACK, b"$1\r\n")))
    assert gate.pop_ready(now=0.3) == []  # 2004 < 2005
    gate.outbound("backup", parse_tcp(tcp(G, C, 6379, 5000, 2004, 8, ACK, b"a")))
    assert gate.pop_ready(now=0.4) == [req2, other]


def test_gate_passes_unshared_connections_and_gives_up_after_timeout() -> None:
    gate = BackupGate(timeout=1.0)
    fresh = tcp(C, G, 6000, 6379, 1, 5000, ACK, b"PING\r\n")  # not present at the sync
    gate.push(fresh, now=0.0)
    assert gate.pop_ready(now=0.0) == [fresh]
    gate.outbound("leader", parse_tcp(tcp(G, C, 6379, 5000, 100, 1, ACK, b"z")))
    gate.realign()
    stuck = tcp(C, G, 5000, 6379, 1, 999, ACK, b"GET\r\n")
    gate.push(stuck, now=0.0)
    assert gate.pop_ready(now=0.5) == []
    assert gate.pop_ready(now=1.5) == [stuck]
    assert gate.gave_up == 1


def test_a_new_syn_unshares_a_reused_port() -> None:
    gate = BackupGate(timeout=60)
    gate.outbound("leader", parse_tcp(tcp(G, C, 6379, 5000, 100, 1, ACK, b"z")))
    gate.realign()
    gate.inbound(parse_tcp(tcp(C, G, 5000, 6379, 77, 0, SYN)))
    late = tcp(C, G, 5000, 6379, 78, 4242, ACK)
    gate.push(late, now=0.0)
    assert gate.pop_ready(now=0.0) == [late]


def _leader(frame: bytes, commit: OutputCommit, gate: BackupGate, now: float = 0.0) -> list:
    seg = parse_tcp(frame)
    if seg is not None:
        gate.outbound("leader", seg)
    return commit.offer(frame, seg, gate, now)


def test_a_reply_waits_until_the_backup_sent_the_same_bytes() -> None:
    gate, commit = BackupGate(timeout=60), OutputCommit(timeout=1.0)
    gate.outbound("leader", parse_tcp(tcp(G, C, 6379, 5000, 1990, 1, ACK, b"x" * 10)))
    gate.realign()  # a sync: the connection is shared
    reply = tcp(G, C, 6379, 5000, 2000, 8, ACK, b"+OK\r\n")
    bare_ack = tcp(G, C, 6379, 5000, 2005, 15, ACK)
    arp_like = udp(G, C, 1, 2, b"z" * 30)
    assert _leader(reply, commit, gate) == []
    assert _leader(bare_ack, commit, gate) == []  # in order: behind the held reply
    assert _leader(arp_like, commit, gate) == []
    gate.outbound("backup", parse_tcp(tcp(G, C, 6379, 5000, 2000, 8, ACK, b"+OK")))
    assert commit.ready(gate) == []  # 2003 < 2005: not the whole reply yet
    assert not commit.overdue(0.5) and commit.overdue(1.5) and commit.timeouts == 1
    assert not commit.overdue(1.6), "one sync request per timeout, not one per poll"
    gate.outbound("backup", parse_tcp(tcp(G, C, 6379, 5000, 2003, 8, ACK, b"\r\n")))
    assert commit.ready(gate) == [reply, bare_ack, arp_like]
    assert _leader(bare_ack, commit, gate) == [bare_ack]  # nothing held: straight out


def test_replies_on_unshared_connections_wait_for_a_sync_and_die_with_the_leader() -> None:
    gate, commit = BackupGate(timeout=60), OutputCommit()
    syn_ack = tcp(G, C, 6379, 6000, 500, 1, SYN | ACK)
    assert _leader(syn_ack, commit, gate) == [syn_ack]  # carries no data
    reply = tcp(G, C, 6379, 6000, 501, 9, ACK, b"+PONG\r\n")
    gate.outbound("backup", parse_tcp(tcp(G, C, 6379, 6000, 9000, 9, ACK, b"+PONG\r\n")))
    assert _leader(reply, commit, gate) == []  # the backup's guest has its own ISN here
    assert commit.release_all() == [reply]  # after a sync the backup is the leader's copy
    assert _leader(reply, commit, gate) == []
    assert commit.drop_all() == 1 and commit.held == []
