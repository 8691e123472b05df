"""A Multi-Paxos replica: stable leader (replica 0), one accept round per entry, TCP.

Phase 1 runs once when the leader starts (PREPARE / PROMISE with its ballot over the
same connections); afterwards every proposal is one Phase 2 round: the leader sends
ACCEPT(ballot, commit, entry) to every acceptor, persists its own copy, and commits once
a majority (itself included) has persisted it and answered ACCEPTED. Acceptors persist
before answering (group commit: one fdatasync per batch of ACCEPTs read together) and
answer cumulatively. Every message goes through the kernel: blocking sends, poll(2) at
the leader, blocking recv at the acceptors — the traditional design APUS is compared to.
Both loops are numba nopython code, so the comparison is protocol and transport, not
interpreter overhead.

Messages (uint64 words; word 0 = kind | size << 8):
  PREPARE  [h, ballot]            PROMISE  [h, ballot, last index]
  ACCEPT   [h, ballot, commit] + entry record (gaia.apus.wire format)
  ACCEPTED [h, ballot, index]     STOP     [h]
"""

from __future__ import annotations

import socket
import struct
import time

import numpy as np
from numba import njit

from gaia.apus import wire
from gaia.apus.transport import libc
from gaia.apus.transport.frames import parse_address
from gaia.baselines import closedloop as cl
from gaia.baselines import control as ctl
from gaia.baselines import logbook as lg
from gaia.baselines import node as common
from gaia.baselines import stream
from gaia.lowlevel.atomics import store_release

PREPARE, PROMISE, ACCEPT, ACCEPTED, STOP = 1, 2, 3, 4, 5
ACCEPT_HEADER_WORDS = 3
BALLOT = 1  # the stable leader's ballot (replica 0, round 1)
ENDED, STOPPED, PROTOCOL_ERROR = 0, 1, 2
LOST_SEND, LOST_EOF, LOST_RECV = 1, 2, 3  # why the leader gave up on an acceptor (x1000 + errno)


@njit(nogil=True, cache=True)
def leader_run(fds: np.ndarray, lb: lg.Logbook, rounds: int, window: int, length: int,
               samples: np.ndarray, words: np.ndarray, bufs: np.ndarray, rss: np.ndarray,
               sendbuf: np.ndarray, lost: np.ndarray) -> int:
    """Propose `rounds` entries, at most `window` outstanding; samples[i] = propose->commit
    ns of the i-th. Returns entries committed (negated when a majority was lost)."""
    n = fds.size + 1
    majority = n // 2 + 1
    first = int(lb.meta[lg.LB_LAST]) + 1
    last = first - 1
    commit = first - 1
    persisted = np.full(n, first - 1, dtype=np.int64)  # [0] = the leader itself
    starts = np.zeros(window, dtype=np.int64)
    pollfds = np.zeros(2 * fds.size, dtype=np.int32)
    out64 = sendbuf.view(np.uint64)
    record = lb.slots.view(np.uint64)
    done = 0
    while done < rounds:
        while cl.may_propose(last, commit, first, window, rounds):
            index = last + 1
            cl.proposed(starts, index)
            off = lg.propose_entry(lb, index, BALLOT, commit, length)
            words_ = wire.entry_words(length)
            size = (ACCEPT_HEADER_WORDS + words_) * 8
            out64[0] = stream.header(ACCEPT, size)
            out64[1] = BALLOT
            out64[2] = commit
            out64[ACCEPT_HEADER_WORDS : ACCEPT_HEADER_WORDS + words_] = \
                record[off // 8 : off // 8 + words_]
            for f in range(fds.size):
                if fds[f] >= 0 and not libc.send_all(fds[f], sendbuf.ctypes.data, size):
                    lost[f] = LOST_SEND * 1000 + libc.errno()
                    fds[f] = -1  # acceptor gone (closed by Python afterwards)
            lg.sync(lb)  # our own accept, persisted while the acceptors persist theirs
            persisted[0] = index
            last = index
        for f in range(fds.size):
            pollfds[2 * f] = fds[f]
            pollfds[2 * f + 1] = libc.POLLIN
        if libc.poll(pollfds, 1000) > 0:
            for f in range(fds.size):
                if fds[f] < 0 or (pollfds[2 * f + 1] >> 16) == 0:
                    continue
                got = stream.fill(fds[f], bufs[f], rss[f], False)
                if got == 0 or got == -2:
                    lost[f] = (LOST_EOF if got == 0 else LOST_RECV * 1000 + libc.errno())
                    fds[f] = -1
                    continue
                while True:
                    at = stream.next_message(bufs[f], rss[f])
                    if at < 0:
                        break
                    msg = bufs[f][at:].view(np.uint64)
                    if stream.message_kind(msg[0]) == ACCEPTED and int(msg[1]) == BALLOT:
                        persisted[f + 1] = max(persisted[f + 1], int(msg[2]))
                    rss[f][stream.HEAD] += stream.message_size(msg[0])
        new_commit = min(lg.quorum_index(persisted, majority), last)
        done += cl.committed(starts, samples, first, commit, new_commit)
        commit = max(commit, new_commit)
        store_release(words, ctl.COMMITTED, done)
        alive = 1
        for f in range(fds.size):
            alive += fds[f] >= 0
        if alive < majority and commit < last:
            return -done
    return done


@njit(nogil=True, cache=True)
def acceptor_run(fd: int, lb: lg.Logbook, buf: np.ndarray, rs: np.ndarray,
                 sendbuf: np.ndarray, words: np.ndarray) -> int:
    """Accept the leader's entries in order until STOP or the connection ends."""
    max_payload = int(lb.meta[lg.LB_MAX_PAYLOAD])
    out64 = sendbuf.view(np.uint64)
    while True:
        newest = 0
        while True:
            at = stream.next_message(buf, rs)
            if at == -2:
                return PROTOCOL_ERROR
            if at < 0:
                break
            msg = buf[at:].view(np.uint64)
            kind = stream.message_kind(msg[0])
            rs[stream.HEAD] += stream.message_size(msg[0])
            if kind == STOP:
                lg.sync(lb)
                return STOPPED
            if kind != ACCEPT or int(msg[1]) < BALLOT:
                continue
            if not wire.entry_valid(msg, ACCEPT_HEADER_WORDS, max_payload):
                return PROTOCOL_ERROR
            if int(msg[ACCEPT_HEADER_WORDS + wire.E_INDEX]) == int(lb.meta[lg.LB_LAST]) + 1:
                newest = lg.accept_entry(lb, msg, ACCEPT_HEADER_WORDS)
        if newest > 0:
            lg.sync(lb)  # group commit: one sync for everything read together
            out64[0] = stream.header(ACCEPTED, 24)
            out64[1] = BALLOT
            out64[2] = newest
            if not libc.send_all(fd, sendbuf.ctypes.data, 24):
                return ENDED
            store_release(words, ctl.COMMITTED, newest)
        if fd < 0 or stream.fill(fd, buf, rs, True) <= 0:
            return ENDED


# ---- processes -------------------------------------------------------------------------

def _send_words(sock: socket.socket, *values: int) -> None:
    sock.sendall(struct.pack(f"<{len(values)}Q", *values))


def _recv_words(sock: socket.socket, count: int) -> tuple[int, ...]:
    data = b""
    while len(data) < 8 * count:
        chunk = sock.recv(8 * count - len(data))
        if not chunk:
            raise ConnectionError("peer closed during phase 1")
        data += chunk
    return struct.unpack(f"<{count}Q", data)


def _dial(address: tuple[str, int], timeout: float) -> socket.socket:
    deadline = time.monotonic() + timeout
    while True:
        try:
            sock = socket.create_connection(address, timeout=2)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            sock.settimeout(timeout)  # phase 1 waits while acceptors compile their loop
            return sock
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _stop_acceptor(sock: socket.socket) -> None:
    """Send STOP, then wait for the acceptor to close first. Closing while acks are still
    unread would make our kernel send a reset, and a reset makes the acceptor's kernel
    drop what it has not read yet — the last ACCEPT and the STOP itself."""
    try:
        _send_words(sock, int(stream.header(STOP, 8)))
        sock.shutdown(socket.SHUT_WR)
        sock.settimeout(10)
        while sock.recv(1 << 16):
            pass
    except OSError:
        pass


def leader_main(args, control: ctl.Control, lb: lg.Logbook) -> int:
    addresses = [parse_address(a) for a in args.addresses.split(",")]
    socks = [_dial(a, 60) for a in addresses[1:]]
    for sock in socks:  # phase 1, once for the whole run of this stable leader
        _send_words(sock, int(stream.header(PREPARE, 16)), BALLOT)
    promised = sum(_recv_words(s, 3)[1] == BALLOT for s in socks) + 1
    if promised < args.replicas // 2 + 1:
        raise RuntimeError("phase 1 found no majority")
    for sock in socks:
        sock.settimeout(None)
    fds = np.array([s.fileno() for s in socks], dtype=np.int64)
    bufs = np.zeros((len(socks), stream.BUFFER_BYTES), dtype=np.uint8)
    rss = np.zeros((len(socks), 2), dtype=np.int64)
    sendbuf = np.zeros(lg.slot_bytes_for(args.max_payload) + 64, dtype=np.uint8)
    lost = np.zeros(len(socks), dtype=np.int64)
    leader_run(fds[:0], lb, 0, 1, 8, np.zeros(1, np.int64), control.words, bufs[:0],
               rss[:0], sendbuf, lost[:0])  # compile before READY

    def run_once(rounds, window, payload, samples, words):
        return leader_run(fds, lb, rounds, window, payload, samples, words, bufs, rss, sendbuf,
                          lost)

    code = common.serve_commands(args, control, run_once)
    for f, sock in enumerate(socks):
        if fds[f] >= 0:
            _stop_acceptor(sock)
        sock.close()
    common.write_state(args.run_dir, args.id, lb,
                       lost={f + 1: int(v) for f, v in enumerate(lost) if v})
    return code


def acceptor_main(args, control: ctl.Control, lb: lg.Logbook) -> int:
    host, port = parse_address(args.addresses.split(",")[args.id])
    listener = socket.create_server((host, port), reuse_port=False)
    buf, rs = stream.new_reader()
    sendbuf = np.zeros(64, dtype=np.uint8)
    acceptor_run(-1, lb, buf, rs, sendbuf, control.words)  # compile before READY
    control.set_state(ctl.READY)
    conn, _ = listener.accept()
    listener.close()
    conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    _, ballot = _recv_words(conn, 2)
    _send_words(conn, int(stream.header(PROMISE, 24)), ballot, int(lb.meta[lg.LB_LAST]))
    control.set_state(ctl.RUNNING)
    reason = acceptor_run(conn.fileno(), lb, buf, rs, sendbuf, control.words)
    conn.close()
    common.write_state(args.run_dir, args.id, lb, reason=int(reason))
    return 0 if reason != PROTOCOL_ERROR else 1


def main() -> None:
    common.run_replica(__doc__.splitlines()[0], leader_main, acceptor_main, addresses=True)


if __name__ == "__main__":
    main()
