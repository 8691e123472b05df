"""Reading committed entries from a replica's log segment, in order, from another process.

Why shared memory: the backup replayer, TRIPOD controllers and the VM switch run beside a
replica and must see each committed entry without a round trip through the replica's
Python. A reader maps the replica's log (logstore.py), registers an apply cursor (the log
is never compacted past it), reads entries up to the published commit index and sleeps
on the log's commit futex when it has caught up.

`CommittedLogReader` implements gaia.intercept.feed.CommittedLog (commit_index, entry,
wait_commit), so `LogFeed` and the replayer run on a real replica.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from numba import njit

from gaia.apus import logstore as lgs
from gaia.apus.logstore import Entry, LocalLog, log_name
from gaia.errors import GaiaError
from gaia.lowlevel.atomics import fetch_add, load_acquire
from gaia.lowlevel.syscalls import futex_wait


@njit(nogil=True, cache=True)
def _wait(w64: np.ndarray, seen: int, timeout_ns: int) -> None:
    """Sleep on the log's commit futex until it moves past `seen` (or the timeout)."""
    w32 = w64.view(np.uint32)
    fetch_add(w32, lgs.G_FUTEX_W * 2 + 1, 1)
    if load_acquire(w32, lgs.G_FUTEX_W * 2) == seen:
        futex_wait(w64.ctypes.data + lgs.G_FUTEX_W * 8, seen, timeout_ns)
    fetch_add(w32, lgs.G_FUTEX_W * 2 + 1, np.uint32(0xFFFFFFFF))


class CommittedLogReader:
    """Committed entries of replica `replica_id` of a group, from its shared log."""

    def __init__(self, group_id: str, replica_id: int, register: bool = True) -> None:
        self.group_id = group_id
        self.replica_id = replica_id
        self.log = LocalLog.open(log_name(group_id, replica_id), group_id)
        self.slot = self.log.claim_reader(self.log.first - 1) if register else -1

    @classmethod
    def of_run(cls, run_dir: Path | str, replica_id: int, register: bool = True
               ) -> CommittedLogReader:
        from gaia.apus.runtime.spec import GroupSpec

        return cls(GroupSpec.load(Path(run_dir)).group_id, replica_id, register)

    # -- gaia.intercept.feed.CommittedLog ---------------------------------------------
    def commit_index(self) -> int:
        return self.log.commit

    def entry(self, index: int) -> bytes:
        return self.read(index).payload

    def wait_commit(self, after: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        while self.commit_index() <= after:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            seen = int(self.log.w64[lgs.G_FUTEX_W]) & 0xFFFFFFFF
            if self.commit_index() > after:
                break
            _wait(self.log.w64, seen, int(min(left, 0.05) * 1e9))
        return self.commit_index()

    # -- more ---------------------------------------------------------------------
    def read(self, index: int) -> Entry:
        """Committed entry `index` (GaiaError when not committed yet or compacted away)."""
        if index > self.commit_index():
            raise GaiaError(f"entry {index} is not committed yet (commit index "
                            f"{self.commit_index()})", "wait_commit() first")
        if index < self.log.first:
            raise GaiaError(f"entry {index} was compacted into a snapshot",
                            "restore the replica's snapshot, then read on from there")
        return self.log.entry(index)

    def entries(self, start: int = 1, end: int | None = None) -> list[Entry]:
        end = self.commit_index() if end is None else min(end, self.commit_index())
        return [self.read(i) for i in range(max(start, self.log.first), end + 1)]

    def applied(self, index: int) -> None:
        """This reader is done with entries up to `index`: they may be compacted."""
        if self.slot >= 0:
            self.log.set_reader(self.slot, index)

    def close(self) -> None:
        if self.slot >= 0 and self.log.w64 is not None:
            self.log.release_reader(self.slot)
            self.slot = -1
        self.log.close()

    def __enter__(self) -> CommittedLogReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
