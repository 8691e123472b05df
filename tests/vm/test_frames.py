"""TCP parsing, the output checker and the backup gate (pure logic, no VMs)."""

from __future__ import annotations

from gaia.vm.frames import ACK, SYN, BackupGate, OutputChecker, is_syn, is_syn_ack, parse_tcp

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
