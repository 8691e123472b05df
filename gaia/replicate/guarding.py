"""The guard (gaia.intercept.guard) on a real APUS replica: checkpoints of a backup,
served to peers, and recovery of a restarted replica from a peer's checkpoint + the log.

`ReplicaLog` gives the guard the log interface it needs (guard_log.TruncatableLog) over
the replica's committed-log reader: APUS compacts its own log (never past a reader's
applied cursor), so truncate_before() changes nothing here; entries APUS compacted raise
LogTruncated, which sends a lagging replica to a checkpoint.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from gaia.apus.reader import CommittedLogReader
from gaia.intercept.checkpoint_store import Checkpoint, CheckpointStore
from gaia.intercept.checkpoint_transfer import CheckpointServer
from gaia.intercept.guard import Guard
from gaia.intercept.guard_log import LogTruncated
from gaia.intercept.guard_policy import GuardPolicy
from gaia.intercept.guard_session import Session
from gaia.intercept.local_group import LocalReplica
from gaia.intercept.replayer import Replayer


class ReplicaLog:
    """guard_log.TruncatableLog over a CommittedLogReader."""

    def __init__(self, reader: CommittedLogReader) -> None:
        self.reader = reader

    def commit_index(self) -> int:
        return self.reader.commit_index()

    def entry(self, index: int) -> bytes | np.ndarray:
        first = self.first_index()
        if index < first:
            raise LogTruncated(index, first)
        return self.reader.entry(index)

    def wait_commit(self, after: int, timeout: float) -> int:
        return self.reader.wait_commit(after, timeout)

    def first_index(self) -> int:
        return self.reader.log.first

    def truncate_before(self, index: int) -> int:
        return self.first_index()  # APUS compacts by itself, behind every reader


def make_guard(member: LocalReplica, reader: CommittedLogReader, store: CheckpointStore,
               app: str, replayer: Callable[[int, Sequence[Session]], Replayer],
               every_entries: int) -> Guard:
    """A guard for one replica's agent (its loop is started only when checkpoints are
    periodic: every_entries > 0; `checkpoint()` works either way)."""
    policy = GuardPolicy(every_entries=every_entries, truncate=False)
    return Guard(member, ReplicaLog(reader), store, app,
                 lambda m, after, sessions: replayer(after, sessions), policy, tick_s=0.5)


def serve_checkpoints(store: CheckpointStore, host: str, port: int = 0,
                      take: Callable[[], Checkpoint] | None = None) -> CheckpointServer:
    return CheckpointServer(store, host=host, port=port, take=take).start()
