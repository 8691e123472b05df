"""What a backup consumes: committed events in log order (the APUS <-> intercept seam).

Two protocols, pick the one that is natural to implement:
  - `CommittedLog` — entry level: commit_index(), entry(i) (the payload bytes of a
    committed entry, events.py batch encoding or anything else), wait_commit(after,
    timeout). The APUS replica implements this over its log; `ShmLog` implements it over
    a shared-memory log for tests and single-host runs.
  - `CommittedFeed` — event level: events(after, stop) yields FeedEvent(log_index, kind,
    conn_id, payload, flags, last) in log order; `last` marks the final event of its
    entry, and an entry with no events (a no-op) yields one FeedEvent of kind EV_NONE, so
    a consumer always knows which entries it has finished. `LogFeed(log)` turns any
    CommittedLog into one, so APUS only needs the entry-level protocol.
numba code walks an entry's events with events.nb_batch_count / nb_event_at directly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import NamedTuple, Protocol

import numpy as np

from gaia.intercept.events import Event, decode_batch

EV_NONE = 0  # FeedEvent.kind of an entry that holds no intercepted event


class FeedEvent(NamedTuple):
    log_index: int
    kind: int
    conn_id: int
    payload: bytes
    flags: int = 0
    last: bool = True  # the last event of log entry `log_index`


class CommittedLog(Protocol):
    def commit_index(self) -> int:
        """Highest committed log index (0: none yet)."""

    def entry(self, index: int) -> bytes | memoryview | np.ndarray:
        """Payload of committed entry `index` (1-based)."""

    def wait_commit(self, after: int, timeout: float) -> int:
        """Block until commit_index() > after or `timeout` s pass; returns commit_index()."""


class CommittedFeed(Protocol):
    def events(self, after: int = 0, stop: Callable[[], bool] | None = None) -> Iterator[FeedEvent]:
        """Events of entries after index `after`, in log order, waiting for new commits;
        ends when stop() is true (checked whenever it waits)."""


class LogFeed:
    """A CommittedFeed over any CommittedLog. `decode` turns an entry payload into its
    events (default: the events.py batch encoding; entries without its magic, such as
    no-ops, hold none)."""

    def __init__(self, log: CommittedLog, poll_timeout: float = 0.05,
                 decode: Callable[[bytes | memoryview | np.ndarray], list[Event]] = decode_batch
                 ) -> None:
        self.log = log
        self.poll_timeout = poll_timeout
        self.decode = decode

    def events(self, after: int = 0, stop: Callable[[], bool] | None = None) -> Iterator[FeedEvent]:
        index = after
        while True:
            committed = self.log.commit_index()
            if committed <= index:
                if stop is not None and stop():
                    return
                self.log.wait_commit(index, self.poll_timeout)
                continue
            for i in range(index + 1, committed + 1):
                events = self.decode(self.log.entry(i))
                if not events:
                    yield FeedEvent(i, EV_NONE, 0, b"")
                for n, ev in enumerate(events, 1):
                    yield FeedEvent(i, ev.kind, ev.conn_id, ev.payload, ev.flags,
                                    n == len(events))
                index = i
