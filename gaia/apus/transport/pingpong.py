"""Ping-pong between two processes: the round-trip floor APUS is measured against.

`shm`: a bare numba ping-pong on one shared-memory segment (release store of a sequence
number, the peer spins with acquire loads and answers) — no protocol, no transport code,
the floor of any one-sided-write protocol on this host. `tcp`: the same exchange through
two tcp transports (frame, kernel, receiver thread, region, poller), for comparison.

The pinging side runs in the caller's process; the echo side is a child started with
gaia.proc (`python -m gaia.apus.transport.pingpong echo ...`). Returns per-round-trip
nanoseconds; warm-up rounds are dropped.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from numba import njit

from gaia.apus.transport.backoff import BackoffPolicy, await_word
from gaia.apus.transport.handle import NumbaHandle, remote_write
from gaia.apus.transport.libc import now_ns
from gaia.apus.transport.pinning import cpu_for, pin_thread, unpin_thread
from gaia.apus.transport.segments import SHM_DIR, map_segment
from gaia.errors import GaiaError
from gaia.lowlevel.atomics import store_release

PING, PONG, READY = 0, 8, 16  # uint64 word indices, one cache line apart
SEGMENT_BYTES = 4096
# Spin, then yield for as long as it takes: no sleeps inside a latency floor.
PINGPONG_POLICY = BackoffPolicy(spins=4000, yields=1 << 62, sleep_ns=0, futex=0)
WAIT_LIMIT_NS = 10_000_000_000  # a round that takes 10 s means the echo side died
WARMUP_ROUNDS = 1000


@njit(nogil=True, cache=True)
def _await(
    words: np.ndarray, index: int, value: int, policy: BackoffPolicy, state: np.ndarray
) -> bool:
    return await_word(words, index, value, policy, state, WAIT_LIMIT_NS)


@njit(nogil=True, cache=True)
def shm_ping(words: np.ndarray, rounds: int, policy: BackoffPolicy, samples: np.ndarray) -> int:
    """Store seq into PING, wait for it in PONG; returns rounds completed."""
    state = np.zeros(1, dtype=np.int64)
    for r in range(rounds):
        seq = r + 1
        start = now_ns()
        store_release(words, PING, seq)
        if not _await(words, PONG, seq, policy, state):
            return r
        samples[r] = now_ns() - start
    return rounds


@njit(nogil=True, cache=True)
def shm_echo(words: np.ndarray, rounds: int, policy: BackoffPolicy) -> int:
    state = np.zeros(1, dtype=np.int64)
    for r in range(rounds):
        if not _await(words, PING, r + 1, policy, state):
            return r
        store_release(words, PONG, r + 1)
    return rounds


@njit(nogil=True, cache=True)
def transport_pingpong(
    h: NumbaHandle,
    peer: int,
    local_words: np.ndarray,
    rounds: int,
    policy: BackoffPolicy,
    samples: np.ndarray,
    initiator: bool,
) -> int:
    """Each side polls word 0 of its own region; the initiator writes seq into the peer's
    word 0 and waits for the echo. Works over any transport with a numba handle."""
    state = np.zeros(1, dtype=np.int64)
    msg = np.zeros(8, dtype=np.uint8)
    for r in range(rounds):
        seq = r + 1
        for i in range(8):
            msg[i] = (seq >> (8 * i)) & 0xFF
        start = now_ns()
        if initiator:
            remote_write(h, peer, 0, msg, 0, 8)
        if not _await(local_words, 0, seq, policy, state):
            return r
        if initiator:
            samples[r] = now_ns() - start
        else:
            remote_write(h, peer, 0, msg, 0, 8)
    return rounds


def summarize(samples_ns: np.ndarray) -> dict[str, float]:
    """p50 / p99 / p99.9 / mean in ns of one run's round trips."""
    if samples_ns.size == 0:
        return {"n": 0}
    p50, p99, p999 = np.percentile(samples_ns, [50, 99, 99.9])
    return {
        "n": int(samples_ns.size),
        "p50_ns": float(p50),
        "p99_ns": float(p99),
        "p999_ns": float(p999),
        "mean_ns": float(samples_ns.mean()),
    }


def _spawn_echo(args: list[str], log_dir: Path):
    from gaia import proc

    argv = [sys.executable, "-m", "gaia.apus.transport.pingpong", "echo", *args]
    return proc.spawn("pingpong-echo", argv, log_dir / "pingpong-echo.log")


def _wait_ready(words: np.ndarray, echo, timeout_s: float = 180.0) -> None:
    """The echo side compiles its loop first (seconds on a busy machine), then says READY."""
    deadline = time.monotonic() + timeout_s
    while int(words[READY]) != 1:
        if not echo.alive() or time.monotonic() > deadline:
            raise GaiaError(
                "the ping-pong echo process never became ready",
                f"see its log: {echo.log_tail(5) or 'no output'}",
            )
        time.sleep(0.005)


def _check_completed(echo, completed: int, rounds: int) -> None:
    if completed < rounds:
        raise GaiaError(
            f"ping-pong stopped after {completed} of {rounds} rounds "
            f"(echo side: {echo.log_tail(5) or 'no output'})",
            "check that numba works in a child process and /dev/shm is writable",
        )


def run_shm(
    rounds: int = 100_000, pinned: bool = True, policy: BackoffPolicy = PINGPONG_POLICY
) -> np.ndarray:
    """Bare shared-memory ping-pong between this process and a child. Pinned: ping on
    CPU 0, echo on CPU 1 (when the machine has two)."""
    total = rounds + WARMUP_ROUNDS
    name = f"gaia-pingpong-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    region = map_segment(SHM_DIR / name, SEGMENT_BYTES, zero=True)
    words = region.array.view(np.uint64)
    samples = np.zeros(total, dtype=np.int64)
    shm_ping(words, 0, policy, samples)  # compile before the child waits on us
    pin = "spread" if pinned else None
    echo = _spawn_echo(
        [
            "--kind",
            "shm",
            "--segment",
            name,
            "--rounds",
            str(total),
            "--pin",
            str(cpu_for(1, pin)) if pinned else "none",
            *_policy_args(policy),
        ],
        Path(tempfile.gettempdir()),
    )
    completed = 0
    try:
        _wait_ready(words, echo)
        pin_thread(cpu_for(0, pin))
        completed = shm_ping(words, total, policy, samples)
    finally:
        unpin_thread()
        echo.stop(timeout=5)
        (SHM_DIR / name).unlink(missing_ok=True)
    _check_completed(echo, completed, total)
    return samples[WARMUP_ROUNDS:]


def run_tcp(
    rounds: int = 20_000, pinned: bool = False, policy: BackoffPolicy = PINGPONG_POLICY
) -> np.ndarray:
    """Round trips through two tcp transports (this process = replica 0, child = 1)."""
    from gaia.apus.transport import make, unlink_group
    from gaia.net import free_ports

    total = rounds + WARMUP_ROUNDS
    group = f"pingpong-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    ports = free_ports(2)
    book = {0: f"127.0.0.1:{ports[0]}", 1: f"127.0.0.1:{ports[1]}"}
    pin = "spread" if pinned else None
    transport = make("tcp", group, 0, SEGMENT_BYTES, book)
    samples = np.zeros(total, dtype=np.int64)
    local_words = transport.local.view(np.uint64)
    transport_pingpong(transport.numba_handle(), 1, local_words, 0, policy, samples, True)
    echo = _spawn_echo(
        [
            "--kind",
            "tcp",
            "--segment",
            group,
            "--rounds",
            str(total),
            "--pin",
            str(cpu_for(1, pin)) if pinned else "none",
            "--book",
            f"{book[0]},{book[1]}",
            *_policy_args(policy),
        ],
        Path(tempfile.gettempdir()),
    )
    completed = 0
    try:
        _wait_ready(local_words, echo)
        if not transport.wait_connected(60):  # our own direction may still be dialing
            raise GaiaError("the tcp ping-pong could not connect to its echo process",
                            f"connector says: {transport.last_error}")
        pin_thread(cpu_for(0, pin))
        completed = transport_pingpong(
            transport.numba_handle(), 1, local_words, total, policy, samples, True
        )
    finally:
        unpin_thread()
        echo.stop(timeout=5)
        transport.close()
        unlink_group(group)
    _check_completed(echo, completed, total)
    return samples[WARMUP_ROUNDS:]


def _policy_args(policy: BackoffPolicy) -> list[str]:
    return ["--policy", ",".join(str(int(v)) for v in policy)]


def _echo_main(args: argparse.Namespace) -> int:
    policy = BackoffPolicy(*(int(v) for v in args.policy.split(",")))
    pin_thread(None if args.pin == "none" else int(args.pin))
    if args.kind == "shm":
        region = map_segment(SHM_DIR / args.segment, SEGMENT_BYTES, zero=False)
        words = region.array.view(np.uint64)
        shm_echo(words, 0, policy)  # compile first
        store_release_py(words, READY, 1)
        done = shm_echo(words, args.rounds, policy)
        return 0 if done == args.rounds else 1
    from gaia.apus.transport import make

    ping_address, echo_address = args.book.split(",")
    transport = make("tcp", args.segment, 1, SEGMENT_BYTES, {0: ping_address, 1: echo_address})
    try:
        words = transport.local.view(np.uint64)
        handle = transport.numba_handle()
        transport_pingpong(handle, 0, words, 0, policy, np.zeros(1, np.int64), False)
        if not transport.wait_connected(120):
            return 1
        ready = np.zeros(SEGMENT_BYTES // 8, dtype=np.uint64)
        ready[READY] = 1
        transport.write(0, READY * 8, ready[READY : READY + 1].view(np.uint8))
        done = transport_pingpong(
            handle, 0, words, args.rounds, policy, np.zeros(1, np.int64), False
        )
    finally:
        transport.close()
    return 0 if done == args.rounds else 1


@njit(cache=True)
def store_release_py(words: np.ndarray, index: int, value: int) -> None:
    store_release(words, index, value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    echo = sub.add_parser("echo", help="internal: the answering side")
    echo.add_argument("--kind", choices=("shm", "tcp"), required=True)
    echo.add_argument("--segment", required=True)
    echo.add_argument("--rounds", type=int, required=True)
    echo.add_argument("--pin", default="none")
    echo.add_argument("--policy", required=True)
    echo.add_argument("--book", default="")
    run = sub.add_parser("run", help="measure and print p50/p99")
    run.add_argument("--kind", choices=("shm", "tcp"), default="shm")
    run.add_argument("--rounds", type=int, default=100_000)
    run.add_argument("--pinned", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "echo":
        return _echo_main(args)
    started = time.monotonic()
    runner = run_shm if args.kind == "shm" else run_tcp
    stats = summarize(runner(args.rounds, args.pinned))
    print(
        f"{args.kind} ping-pong ({'pinned' if args.pinned else 'unpinned'}, "
        f"{time.monotonic() - started:.1f} s): "
        + ", ".join(f"{k}={v:,.0f}" for k, v in stats.items())
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
