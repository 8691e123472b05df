"""njit writers and checkers shared by the transport tests (and by child processes).

The stream: the writer sends entries seq = 1..n into `SLOTS` rotating slots of the peer's
region; each entry's body is a pattern derived from seq and its last 8 bytes (the canary)
are seq. The checker waits for seq's canary and then checks the body: a body that became
visible after its canary shows up as a pattern mismatch. The checker acknowledges each
entry by writing seq into word 0 of the writer's region (flow control: the writer never
overwrites a slot the checker has not read), so both directions carry one-sided writes.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
from numba import njit

from gaia.apus.transport import make, remote_write
from gaia.apus.transport.libc import now_ns, yield_cpu
from gaia.lowlevel.atomics import load_acquire

SLOTS = 8
TIMEOUT_NS = 60_000_000_000  # liveness guard only: a stuck loop returns instead of hanging
TIMED_OUT = -1


@njit(nogil=True, cache=True)
def fill_entry(buf: np.ndarray, seq: int) -> None:
    body = buf.size - 8
    for i in range(body):
        buf[i] = (seq * 31 + i) & 0xFF
    for i in range(8):
        buf[body + i] = (seq >> (8 * i)) & 0xFF


@njit(nogil=True, cache=True)
def entry_mismatches(region: np.ndarray, offset: int, size: int, seq: int) -> int:
    bad = 0
    for i in range(size - 8):
        if region[offset + i] != (seq * 31 + i) & 0xFF:
            bad += 1
    return bad


@njit(nogil=True, cache=True)
def stream_writer(h, peer: int, n: int, entry_bytes: int, acks: np.ndarray) -> int:
    """Send n entries; returns how many sends were dropped and retried, or TIMED_OUT."""
    buf = np.empty(entry_bytes, dtype=np.uint8)
    start = now_ns()
    retries = 0
    for seq in range(1, n + 1):
        while seq - np.int64(load_acquire(acks, 0)) > SLOTS:
            yield_cpu()
            if now_ns() - start > TIMEOUT_NS:
                return TIMED_OUT
        fill_entry(buf, seq)
        while remote_write(h, peer, (seq % SLOTS) * entry_bytes, buf, 0, entry_bytes) == 0:
            retries += 1
            yield_cpu()
            if now_ns() - start > TIMEOUT_NS:
                return TIMED_OUT
    return retries


@njit(nogil=True, cache=True)
def stream_checker(h, writer: int, n: int, entry_bytes: int, region: np.ndarray) -> int:
    """Receive n entries; returns the number of body bytes that did not match their
    canary (0 when every entry was whole), or TIMED_OUT."""
    words = region.view(np.uint64)
    ack = np.empty(8, dtype=np.uint8)
    start = now_ns()
    bad = 0
    for seq in range(1, n + 1):
        offset = (seq % SLOTS) * entry_bytes
        while load_acquire(words, (offset + entry_bytes - 8) // 8) != seq:
            yield_cpu()
            if now_ns() - start > TIMEOUT_NS:
                return TIMED_OUT
        bad += entry_mismatches(region, offset, entry_bytes, seq)
        for i in range(8):
            ack[i] = (seq >> (8 * i)) & 0xFF
        while remote_write(h, writer, 0, ack, 0, 8) == 0:
            yield_cpu()
            if now_ns() - start > TIMEOUT_NS:
                return TIMED_OUT
    return bad


ORDER_A, ORDER_B = 0, 8  # word indices (a cache line apart)


@njit(nogil=True, cache=True)
def order_writer(h, peer: int, n: int) -> int:
    """For each seq write word A = seq, then word B = seq. Returns dropped writes."""
    msg = np.empty(8, dtype=np.uint8)
    dropped = 0
    for seq in range(1, n + 1):
        for i in range(8):
            msg[i] = (seq >> (8 * i)) & 0xFF
        dropped += 1 - remote_write(h, peer, ORDER_A * 8, msg, 0, 8)
        dropped += 1 - remote_write(h, peer, ORDER_B * 8, msg, 0, 8)
    return dropped


@njit(nogil=True, cache=True)
def order_checker(words: np.ndarray, n: int) -> int:
    """Watch A and B until B == n; count observations that break per-sender order
    (B ahead of A, or B going backwards). TIMED_OUT if B never reaches n."""
    start = now_ns()
    last_b = np.uint64(0)
    violations = 0
    while last_b != n:
        b = load_acquire(words, ORDER_B)
        a = load_acquire(words, ORDER_A)
        if a < b or b < last_b:
            violations += 1
        last_b = b
        if now_ns() - start > TIMEOUT_NS:
            return TIMED_OUT
    return violations


def child_checker(kind: str, group: str, region_size: int, peers, n: int, entry_bytes: int,
                  out: Path) -> None:
    """Replica 1 in a child process: receives a stream from replica 0 and acks it.
    Writes `out`.ready once it listens and has compiled, then the result into `out`."""
    transport = make(kind, group, 1, region_size, peers)
    try:
        stream_checker(transport.numba_handle(), 0, 0, entry_bytes, transport.local)  # compile
        transport.wait_connected(30)
        out.with_suffix(".ready").touch()
        bad = stream_checker(transport.numba_handle(), 0, n, entry_bytes, transport.local)
        out.write_text(str(bad))
    finally:
        transport.close()


if __name__ == "__main__":
    kind_, group_, size_, peers_, n_, entry_, out_ = sys.argv[1:]
    loaded = json.loads(peers_)
    book_ = {int(k): v for k, v in loaded.items()} if isinstance(loaded, dict) else loaded
    child_checker(kind_, group_, int(size_), book_, int(n_), int(entry_), Path(out_))
