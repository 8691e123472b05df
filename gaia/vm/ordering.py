"""Agreement on inbound Ethernet frames: the InputOrderer interface and its in-process
implementation.

Why an interface: in GAIA every frame a client sends to the replicated VM is agreed by
APUS before any VM sees it (the proposal's tap_send hook), so the leader and the major
backup receive identical frames in an identical order, and the standby keeps them without
executing. The switch only needs "agree on this frame, tell me its position"; APUS binds
in by implementing `order`. `LocalOrderer` is the single-host version: a sequence number
under a lock, with the agreed frames kept as the standby's log.
"""

from __future__ import annotations

import threading
from typing import Protocol


class InputOrderer(Protocol):
    def order(self, frame: bytes) -> int:
        """Return once `frame` is agreed; its position in the agreed sequence (0, 1, ...)."""
        ...


class LocalOrderer:
    """Frames agreed in arrival order within one process; keeps the log since a mark."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next = 0
        self._log: list[bytes] = []
        self._log_start = 0

    def order(self, frame: bytes) -> int:
        with self._lock:
            seq = self._next
            self._next += 1
            self._log.append(frame)
            return seq

    @property
    def agreed(self) -> int:
        """How many frames have been agreed so far."""
        with self._lock:
            return self._next

    def truncate(self, upto: int) -> None:
        """Forget frames before position `upto` (a standby checkpoint now covers them)."""
        with self._lock:
            drop = max(0, min(upto, self._next) - self._log_start)
            del self._log[:drop]
            self._log_start += drop

    def frames_since(self, start: int) -> list[bytes]:
        """The agreed frames from position `start` on (what a promoted standby replays)."""
        with self._lock:
            if start < self._log_start:
                raise ValueError(f"frames before {self._log_start} were truncated")
            return list(self._log[start - self._log_start :])
