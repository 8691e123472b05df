"""One replayer, one thread: the guard's recovery used to start a replayer that the
agent's factory had already started, so two threads drained the same feed and executed
every entry of the log suffix twice (a recovered Redis ended with doubled counters)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

from gaia.intercept.feed import FeedEvent
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
