"""A closed loop of proposals generated inside the leader's own poll thread.

Why: the DARE-style and Multi-Paxos baselines are measured at their leader (the leader's
loop proposes, then polls until a majority holds the entry), while APUS's usual
benchmark times a client in another process, which adds a cross-CPU wake-up on both
ends. To compare like with like, the benchmark can ask the leader to do what the
baselines do: publish one event into its own input ring, run the ordinary hot loop
(same poll_once, same backoff) until that event is committed, time it, repeat. The
event takes the full normal path (ring -> L1 take -> L2 persist -> L3 write -> acks ->
commit -> ring slot marked); only the proposing client is gone.

Protocol over the stats segment's control words (segments.StatsSegment.control): the
benchmark writes C_ROUNDS, C_PAYLOAD, then bumps C_REQUEST; the leader serves it between
two ticks, writes the samples (int64 ns) to `leader-loop-<seq>.npy` in its replica dir
and sets C_RESULT (proposals committed; -1 not the leader, -2 a proposal failed) and
C_DONE = seq. A replica that is not the leader answers -1 at once.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
from numba import njit

from gaia.apus import fastpath as fp
from gaia.apus.runtime.loop import EV_WATCHED, watch_loop
from gaia.apus.transport.backoff import BackoffPolicy
from gaia.errors import GaiaError
from gaia.intercept import ring_layout as RL
from gaia.intercept.ring import nb_await, nb_produce, nb_slot_offset
from gaia.lowlevel.syscalls import now_ns

C_REQUEST = 0
C_ROUNDS = 1
C_PAYLOAD = 2
C_DONE = 3
C_RESULT = 4
NOT_LEADER = -1
FAILED = -2

D_NEXT = 0  # next sample to take
D_TICKET = 1  # ticket of the proposal in flight (-1: none)
D_T0 = 2
D_FAILED = 3
D_LEN = 4


def samples_path(replica_dir: Path, seq: int) -> Path:
    return Path(replica_dir) / f"leader-loop-{seq}.npy"


@njit(nogil=True, cache=True)
def drive(fa: fp.FastArrays, th, ob, deadline_ns: int, policy: BackoffPolicy, mask: int,
          bstate: np.ndarray, payload: np.ndarray, samples: np.ndarray, ds: np.ndarray,
          pid: int) -> int:
    """Propose, wait for the commit in watch_loop, record propose->commit; repeat until
    `samples` is full. Returns like hot_loop (mask flags or EV_TICK); the state in `ds`
    lets the caller handle those and call again."""
    while ds[D_NEXT] < samples.size and ds[D_FAILED] == 0:
        if ds[D_TICKET] < 0:
            ds[D_T0] = now_ns()
            ticket = nb_produce(fa.rg, RL.EV_RAW, 0, np.uint64(0), payload, pid)
            if ticket < 0:
                ds[D_FAILED] = 1
                break
            ds[D_TICKET] = ticket
        word = (nb_slot_offset(fa.rg, np.uint64(ds[D_TICKET])) + RL.S_STATUS) // 4
        flags = watch_loop(fa, th, ob, deadline_ns, policy, mask, bstate, word)
        if flags & EV_WATCHED:
            took = now_ns() - ds[D_T0]
            status, _ = nb_await(fa.rg, np.uint64(ds[D_TICKET]), 0, 0)  # frees the slot
            ds[D_TICKET] = -1
            if status != RL.ST_COMMITTED:
                ds[D_FAILED] = 1
                break
            samples[ds[D_NEXT]] = took
            ds[D_NEXT] += 1
        if flags & (mask | fp.EV_TICK):
            return flags & ~EV_WATCHED
    return fp.EV_TICK


class LeaderDriver:
    """The replica's side: serves one request at a time, between ticks."""

    def __init__(self, control: np.ndarray, replica_dir: Path) -> None:
        self.control = control
        self.dir = Path(replica_dir)
        self.served = int(control[C_REQUEST])
        self.seq = 0
        self.samples = np.zeros(0, dtype=np.int64)
        self.payload = np.zeros(8, dtype=np.uint8)
        self.state = np.zeros(D_LEN, dtype=np.int64)

    @property
    def active(self) -> bool:
        return self.seq != 0

    def check(self, is_leader: bool) -> None:
        """Start a new request, or finish the current one (called at every tick)."""
        if self.active:
            if self.state[D_FAILED] or self.state[D_NEXT] >= self.samples.size:
                self._finish(FAILED if self.state[D_FAILED] else int(self.state[D_NEXT]))
            elif not is_leader:
                self._finish(NOT_LEADER)
            return
        seq = int(self.control[C_REQUEST])
        if seq == self.served:
            return
        self.served = seq
        if not is_leader:
            self._answer(seq, NOT_LEADER)
            return
        self.seq = seq
        self.samples = np.zeros(int(self.control[C_ROUNDS]), dtype=np.int64)
        # writable, like the array `compile` used: a read-only one is another numba type
        self.payload = np.frombuffer(os.urandom(max(8, int(self.control[C_PAYLOAD]))),
                                     dtype=np.uint8).copy()
        self.state[:] = 0
        self.state[D_TICKET] = -1

    def compile(self, fa: fp.FastArrays, th, ob, policy: BackoffPolicy, mask: int) -> None:
        """Compile (or load) `drive` at start-up: compiling it while leading would stall
        the leader long enough for an election."""
        drive(fa, th, ob, 0, policy, mask, np.zeros(1, dtype=np.int64), self.payload,
              np.zeros(0, dtype=np.int64), np.zeros(D_LEN, dtype=np.int64), 0)

    def run(self, fa: fp.FastArrays, th, ob, deadline_ns: int, policy: BackoffPolicy,
            mask: int, bstate: np.ndarray) -> int:
        """In place of hot_loop while a request is active."""
        return drive(fa, th, ob, deadline_ns, policy, mask, bstate, self.payload,
                     self.samples, self.state, os.getpid())

    def _finish(self, result: int) -> None:
        np.save(samples_path(self.dir, self.seq), self.samples[: int(self.state[D_NEXT])])
        self._answer(self.seq, result)
        self.seq = 0

    def _answer(self, seq: int, result: int) -> None:
        self.control[C_RESULT] = result
        self.control[C_DONE] = seq  # after the result: x86 keeps store order


def leader_loop(control: np.ndarray, replica_dir: Path, rounds: int, payload: int,
                timeout: float = 120.0) -> np.ndarray:
    """The benchmark's side: ask the leader for `rounds` self-driven proposals and return
    their propose->commit latencies (ns)."""
    seq = int(control[C_REQUEST]) + 1
    control[C_ROUNDS] = rounds
    control[C_PAYLOAD] = payload
    control[C_REQUEST] = seq  # last (x86 keeps store order)
    deadline = time.monotonic() + timeout
    while int(control[C_DONE]) != seq:
        if time.monotonic() > deadline:
            raise GaiaError(f"the leader did not finish {rounds} self-driven proposals in "
                            f"{timeout:.0f} s", f"see the replica's log in {replica_dir}")
        time.sleep(0.005)
    result = int(control[C_RESULT])
    if result == NOT_LEADER:
        raise GaiaError("the replica asked for a leader-side loop is not the leader",
                        "ask the replica that leads (deployment.json)")
    path = samples_path(replica_dir, seq)
    samples = np.load(path)
    path.unlink(missing_ok=True)
    if result == FAILED:
        raise GaiaError(f"a self-driven proposal failed after {samples.size} committed",
                        f"see the replica's log in {replica_dir}")
    return samples
