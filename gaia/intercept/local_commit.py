"""The replica side without consensus: commit ring events, in order, into a ShmLog.

Why: it is the real pipeline (shim -> ring -> batch -> log -> replayer) minus the
network, so the interception layer is tested end to end before APUS is bound to it, and
it is the loop APUS's replica runs with `append` replaced by "replicate, then commit".
It runs as a thread (numba, nogil: no GIL while it spins) or as its own process
(`python -m gaia.intercept.local_commit RING LOG`), which a test can kill -9.
"""

from __future__ import annotations

import argparse
import signal
import threading
from pathlib import Path

import numpy as np
from numba import njit

from gaia import proc
from gaia.intercept.ring import (
    Ring,
    nb_heartbeat,
    nb_mark_committed,
    nb_mark_failed,
    nb_poll_batch,
    nb_wait_events,
)
from gaia.intercept.shmlog import ShmLog, nb_log_append
from gaia.lowlevel.atomics import load_acquire, store_release
from gaia.lowlevel.syscalls import now_ns

HEARTBEAT_NS = 50_000_000
LOG_FULL = 1  # nb_mark_failed code

# control array: [stop, entries, events, abandoned]
STOP, ENTRIES, EVENTS, ABANDONED = range(4)


@njit(nogil=True, cache=True)
def nb_commit_loop(
    ring: np.ndarray,
    log: np.ndarray,
    out: np.ndarray,
    control: np.ndarray,
    max_events: int,
    spin_ns: int,
    sleep_ns: int,
) -> None:
    """Until control[STOP] != 0: heartbeat, take a batch, append it, mark it committed."""
    last_beat = 0
    while load_acquire(control, STOP) == 0:
        now = now_ns()
        if now - last_beat > HEARTBEAT_NS:
            nb_heartbeat(ring)
            last_beat = now
        if not nb_wait_events(ring, spin_ns, sleep_ns):
            continue
        count, nbytes, first = nb_poll_batch(ring, out, out.shape[0], max_events)
        if count == 0:
            continue
        index = nb_log_append(log, out, nbytes)
        if index == 0:
            nb_mark_failed(ring, first, count, LOG_FULL)
            continue
        abandoned = nb_mark_committed(ring, first, count, index)
        store_release(control, ENTRIES, control[ENTRIES] + 1)
        store_release(control, EVENTS, control[EVENTS] + count)
        store_release(control, ABANDONED, control[ABANDONED] + abandoned)


class LocalCommitter:
    """Runs nb_commit_loop on a thread. `stop()` ends it (the heartbeat stops too)."""

    def __init__(
        self,
        ring: Ring,
        log: ShmLog,
        max_events: int = 64,
        max_bytes: int = 256 * 1024,
        spin_ns: int = 20_000,
        sleep_ns: int = 20_000_000,
    ) -> None:
        self.ring = ring
        self.log = log
        self.control = np.zeros(4, dtype=np.int64)
        self.out = np.zeros(max(max_bytes, ring.max_payload + 64), dtype=np.uint8)
        self.args = (max_events, spin_ns, sleep_ns)
        self._thread: threading.Thread | None = None

    def start(self) -> LocalCommitter:
        args = (self.ring.seg, self.log.seg, self.out, self.control, *self.args)
        self.control[STOP] = 1
        nb_commit_loop(*args)  # compile now (returns at once), so start() means ready
        self.control[STOP] = 0
        self.ring.heartbeat()
        self._thread = threading.Thread(
            target=nb_commit_loop, args=args, name=f"commit-{self.ring.name}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self.control[STOP] = 1
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    @property
    def entries(self) -> int:
        return int(self.control[ENTRIES])

    @property
    def events(self) -> int:
        return int(self.control[EVENTS])

    @property
    def abandoned(self) -> int:
        return int(self.control[ABANDONED])

    def __enter__(self) -> LocalCommitter:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def spawn(ring_name: str, log_name: str, log_path: Path) -> proc.Process:
    """The committer as its own process (for tests that kill the replica side)."""
    import sys

    return proc.spawn(
        f"committer-{ring_name}",
        [sys.executable, "-m", "gaia.intercept.local_commit", ring_name, log_name],
        log_path,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("ring", help="shm name of an existing ring, e.g. /gaia-x-r0-ring")
    parser.add_argument("log", help="shm name of an existing ShmLog")
    args = parser.parse_args(argv)
    ring, log = Ring.open(args.ring), ShmLog.open(args.log)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    committer = LocalCommitter(ring, log).start()
    print(f"committing {args.ring} into {args.log}", flush=True)
    while not done.wait(0.2):
        pass
    committer.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
