"""What a checkpoint relies on from the replayer. One replayer, one thread: the guard's
recovery used to start a replayer that the agent's factory had already started, so two
threads drained the same feed and executed every entry of the log suffix twice (a
recovered Redis ended with doubled counters). And a pause lands only between log
entries, never between two events of one entry."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

from gaia.intercept.feed import EV_NONE, FeedEvent
from gaia.intercept.replayer import Replayer


class CountingFeed:
    """A feed that yields nothing and counts the threads reading it."""

    def __init__(self) -> None:
        self.readers = 0
        self.lock = threading.Lock()
        self.release = threading.Event()

    def events(self, after: int = 0, stop: Callable[[], bool] | None = None
               ) -> Iterator[FeedEvent]:
        with self.lock:
            self.readers += 1
        while not self.release.wait(0.01):
            if stop is not None and stop():
                return
        return
        yield  # a generator


def test_starting_a_started_replayer_runs_no_second_thread():
    feed = CountingFeed()
    replayer = Replayer(feed, ring=None, port=1)  # type: ignore[arg-type]
    assert replayer.start() is replayer
    assert replayer.start() is replayer  # e.g. Guard._replay_from on a factory's replayer
    threading.Event().wait(0.2)
    try:
        assert feed.readers == 1
    finally:
        feed.release.set()
        replayer._thread.join(5)  # type: ignore[union-attr]


class TwoEntryFeed:
    """Entry 5 batches two events (the leader's read of two connections in one entry);
    entry 6 follows. The first event of entry 5 is handed out, then the feed waits for
    `go` — the moment a checkpoint asks the replayer to pause."""

    def __init__(self) -> None:
        self.first_taken = threading.Event()
        self.go = threading.Event()

    def events(self, after: int = 0, stop: Callable[[], bool] | None = None
               ) -> Iterator[FeedEvent]:
        yield FeedEvent(5, EV_NONE, 0, b"", 0, False)
        self.first_taken.set()
        self.go.wait(10)
        yield FeedEvent(5, EV_NONE, 0, b"", 0, True)
        yield FeedEvent(6, EV_NONE, 0, b"", 0, True)
        while stop is None or not stop():
            threading.Event().wait(0.01)


def test_a_pause_never_lands_inside_an_entry():
    """A checkpoint labels the server's state with the replayer's index: pausing between
    two events of one entry would label a state holding half of entry 5 as "4", and the
    recovered replica would run that half again."""
    feed = TwoEntryFeed()
    replayer = Replayer(feed, ring=None, port=1, after=4).start()  # type: ignore[arg-type]
    try:
        assert feed.first_taken.wait(10)
        replayer.pause_at(replayer.applied)  # 4: entry 5 is half applied
        feed.go.set()
        assert replayer.wait_quiesced(10) == 5
        threading.Event().wait(0.1)
        assert replayer.applied == 5  # entry 6 waits for resume()
        replayer.resume()
        replayer.wait_applied(6, 10)
    finally:
        replayer.stop()
