"""`DecisionLog`: how TRIPOD controllers agree on scheduling decisions.

The controllers only need an ordered, replicated log of opaque entries and to know who
leads it. Two implementations fit behind this interface:

- `apus_log.ApusDecisionLog` (the default, `apus`): the controllers form an APUS group,
  each embedding its replica; `propose` = the APUS leader's propose, committed decisions
  reach every controller in order, `leader()` = the APUS view's leader, snapshots ride
  on APUS's snapshot + log truncation. Controllers may live on different hosts (tcp).
- `file_log.SharedFileLog` (`file`): one durable log file shared by the controllers of
  one machine; the leader is whoever holds an flock on it (the kernel releases it when
  the leader dies, so another controller takes over and keeps scheduling). It is real
  (fsync'd, survives restarts, supports snapshots and truncation), but all controllers
  must share a filesystem: it does not survive the loss of that machine.

Contract:
- `propose(entry)` appends on the leader and returns the entry's index once committed
  (durable on a majority); on a non-leader it raises `NotLeaderError`.
- `read_committed(after)` returns committed (index, entry) pairs with index > after, in
  order, without blocking; `wait_committed(after, timeout)` blocks until one exists.
  Indices start at 1 and have no gaps. If entries <= `after` + 1 were truncated away
  behind a snapshot, it raises `LogTruncatedError(snapshot_index)`.
- `leader()` names the current leader's controller id (None while there is none);
  `is_leader()` says whether this controller leads now.
- `save_snapshot(index, data)` / `latest_snapshot()`: state-machine snapshots, after
  which `compact(index)` may drop entries <= index.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from gaia.errors import GaiaError


class NotLeaderError(GaiaError):
    def __init__(self, leader: int | None) -> None:
        super().__init__(
            f"this controller does not lead the decision log (leader: {leader})",
            "send the request to the leading controller",
        )
        self.leader = leader


class LogTruncatedError(Exception):
    """The entries asked for were compacted behind the snapshot at `snapshot_index`."""

    def __init__(self, snapshot_index: int) -> None:
        super().__init__(f"log truncated up to {snapshot_index}; restore the snapshot")
        self.snapshot_index = snapshot_index


@runtime_checkable
class DecisionLog(Protocol):
    controller_id: int

    def propose(self, entry: bytes, timeout: float = 5.0) -> int: ...

    def read_committed(self, after: int, limit: int = 1000) -> list[tuple[int, bytes]]: ...

    def wait_committed(self, after: int, timeout: float) -> bool: ...

    def commit_index(self) -> int: ...

    def leader(self) -> int | None: ...

    def is_leader(self) -> bool: ...

    def save_snapshot(self, index: int, data: bytes) -> None: ...

    def latest_snapshot(self) -> tuple[int, bytes] | None: ...

    def compact(self, index: int) -> None: ...

    def close(self) -> None: ...


def open_log(kind: str, directory: Path, controller_id: int, campaign: bool = True) -> DecisionLog:
    """The DecisionLog named in a deployment's config: `apus` (an APUS group whose spec
    the deployer wrote into `directory`) or `file` (a SharedFileLog there)."""
    if kind == "file":
        from gaia.tripod.file_log import SharedFileLog

        return SharedFileLog(directory, controller_id, campaign=campaign)
    if kind == "apus":
        from gaia.tripod.apus_log import ApusDecisionLog

        return ApusDecisionLog(directory, controller_id, campaign=campaign)
    raise GaiaError(f"unknown decision log {kind!r}", "use `apus` (default) or `file`")
