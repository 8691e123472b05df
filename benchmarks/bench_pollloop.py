"""The poll loop: numba code spinning on memory with acquire loads until a peer's store.

Every APUS entry and ack crosses such a loop, so a slower loop shows up in every
consensus latency; these benchmarks catch it without starting a replica group.

- `PingPongThreads.time_round_trips`: ROUND_TRIPS round trips between two pinned threads via
  gaia.apus.transport.pingpong's `shm_ping`/`shm_echo` (the loops the latency floor uses).
- `RingStream.time_entries`: STREAM_ENTRIES entries through a bounded single-producer
  ring; the consumer polls each slot with the transport's poll loop (`await_word`:
  load_acquire + backoff), the producer waits for room.
- `PingPongFloor.track_*`: the bare shared-memory ping-pong between two processes
  (`pingpong.run_shm`, pinned), p50 and p99 round trip in ns: the floor APUS is judged by.

Both sides of each loop run njit(nogil) code, so two Python threads really run in
parallel. Loops are compiled in `setup`, outside the timed region.
"""

from __future__ import annotations

import threading

import numpy as np
from numba import njit

from gaia.apus.transport import pingpong
from gaia.apus.transport.backoff import BackoffPolicy, await_word, backoff_idle
from gaia.apus.transport.libc import now_ns
from gaia.apus.transport.pinning import cpu_for, pin_thread, unpin_thread
from gaia.lowlevel.atomics import load_acquire, store_release

ROUND_TRIPS = 2_000
STREAM_ENTRIES = 20_000
RING_SLOTS = 64
FLOOR_ROUNDS = 50_000
GIVE_UP_NS = 10_000_000_000  # a side silent for 10 s has died: fail instead of hanging
POLICY = pingpong.PINGPONG_POLICY


def _run_pair(peer, peer_args: tuple, main, main_args: tuple, expected: int) -> None:
    """Run `peer` in a thread pinned to CPU 1 and `main` here pinned to CPU 0 (as
    pingpong.run_shm pins its two processes): unpinned, the two spinners often share a
    core and every hand-over costs a scheduler slice."""

    def pinned_peer() -> None:
        pin_thread(cpu_for(1, "spread"))
        peer(*peer_args)

    worker = threading.Thread(target=pinned_peer, daemon=True)
    worker.start()
    pin_thread(cpu_for(0, "spread"))
    try:
        done = main(*main_args)
    finally:
        unpin_thread()
        worker.join(timeout=30)
    if done != expected:
        raise RuntimeError(f"{main.__name__}: {done} of {expected} completed")


class PingPongThreads:
    """Round trips between two threads of one process (no process boundary)."""

    number = 1
    repeat = (20, 100, 10.0)
    timeout = 300

    def setup(self) -> None:
        self.words = np.zeros(pingpong.SEGMENT_BYTES // 8, dtype=np.uint64)
        self.samples = np.zeros(ROUND_TRIPS, dtype=np.int64)
        pingpong.shm_ping(self.words, 0, POLICY, self.samples)  # compile
        pingpong.shm_echo(self.words, 0, POLICY)

    def time_round_trips(self) -> None:
        self.words[:] = 0
        _run_pair(
            pingpong.shm_echo,
            (self.words, ROUND_TRIPS, POLICY),
            pingpong.shm_ping,
            (self.words, ROUND_TRIPS, POLICY, self.samples),
            ROUND_TRIPS,
        )


@njit(nogil=True, cache=True)
def _await_room(consumed: np.ndarray, entry: int, slots: int, policy: BackoffPolicy) -> bool:
    state = np.zeros(1, dtype=np.int64)
    start = now_ns()
    polls = 0
    while entry - np.int64(load_acquire(consumed, 0)) >= slots:
        backoff_idle(policy, state)
        polls += 1
        if polls % 4096 == 0 and now_ns() - start > GIVE_UP_NS:
            return False
    return True


@njit(nogil=True, cache=True)
def ring_produce(
    ring: np.ndarray, consumed: np.ndarray, entries: int, policy: BackoffPolicy
) -> int:
    """Publish entries 1..n into slot (i mod len), each once the consumer freed it."""
    slots = ring.size
    for i in range(entries):
        if not _await_room(consumed, i, slots, policy):
            return i
        store_release(ring, i % slots, i + 1)
    return entries


@njit(nogil=True, cache=True)
def ring_consume(
    ring: np.ndarray, consumed: np.ndarray, entries: int, policy: BackoffPolicy
) -> int:
    """Poll each slot until its entry is published, then hand the slot back."""
    slots = ring.size
    state = np.zeros(1, dtype=np.int64)
    for i in range(entries):
        if not await_word(ring, i % slots, i + 1, policy, state, GIVE_UP_NS):
            return i
        store_release(consumed, 0, i + 1)
    return entries


class RingStream:
    """STREAM_ENTRIES entries through a RING_SLOTS-slot ring from a producer thread."""

    number = 1
    repeat = (20, 100, 10.0)
    timeout = 300

    def setup(self) -> None:
        self.ring = np.zeros(RING_SLOTS, dtype=np.uint64)
        self.consumed = np.zeros(8, dtype=np.uint64)  # its own cache line
        ring_produce(self.ring, self.consumed, 0, POLICY)  # compile
        ring_consume(self.ring, self.consumed, 0, POLICY)

    def time_entries(self) -> None:
        self.ring[:] = 0
        self.consumed[:] = 0
        args = (self.ring, self.consumed, STREAM_ENTRIES, POLICY)
        _run_pair(ring_produce, args, ring_consume, args, STREAM_ENTRIES)


class PingPongFloor:
    """Round trips between two processes on one shared-memory segment (pinned)."""

    timeout = 600

    def setup_cache(self) -> dict[str, float]:
        return pingpong.summarize(pingpong.run_shm(FLOOR_ROUNDS, pinned=True))

    def track_p50(self, floor: dict[str, float]) -> float:
        return floor["p50_ns"]

    track_p50.unit = "ns"

    def track_p99(self, floor: dict[str, float]) -> float:
        return floor["p99_ns"]

    track_p99.unit = "ns"
