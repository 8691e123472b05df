"""The committed-log feed: events in log order, entry boundaries kept, no-ops visible."""

from __future__ import annotations

import threading

from gaia.intercept import ring_layout as L
from gaia.intercept.events import Event, encode_batch
from gaia.intercept.feed import EV_NONE, FeedEvent, LogFeed
from gaia.intercept.ring import wait_until


def test_events_in_log_order_with_entry_ends_and_noops(shm):
    log = shm.log(capacity=16, data_size=1 << 16)
    log.append(encode_batch([Event(L.EV_OPEN, 5, b"peer"), Event(L.EV_DATA, 5, b"GET a")]))
    log.append(b"a no-op entry written by the consensus layer")
    log.append(encode_batch([Event(L.EV_CLOSE, 5, b"")]))
    got = list(LogFeed(log).events(0, stop=lambda: True))
    assert got == [
        FeedEvent(1, L.EV_OPEN, 5, b"peer", 0, False),
        FeedEvent(1, L.EV_DATA, 5, b"GET a", 0, True),
        FeedEvent(2, EV_NONE, 0, b"", 0, True),
        FeedEvent(3, L.EV_CLOSE, 5, b"", 0, True),
    ]
    assert [e.log_index for e in LogFeed(log).events(2, stop=lambda: True)] == [3]


def test_the_feed_waits_for_new_commits_until_stopped(shm):
    log = shm.log(capacity=16, data_size=1 << 16)
    stop = threading.Event()
    seen: list[int] = []

    def consume() -> None:
        seen.extend(e.log_index for e in LogFeed(log, 0.01).events(0, stop=stop.is_set))

    reader = threading.Thread(target=consume)
    reader.start()
    for i in range(3):
        log.append(encode_batch([Event(L.EV_RAW, 0, b"%d" % i)]))
    wait_until(lambda: len(seen) == 3, 30, "the feed to deliver three entries")
    stop.set()
    reader.join(30)
    assert not reader.is_alive() and seen == [1, 2, 3]
