"""tcp transport: unreachable and stalled peers, refused strangers, wake-ups, membership."""

from __future__ import annotations

import socket
import threading
import time

import numpy as np
import pytest

from gaia.apus.transport import make, unlink_group
from gaia.apus.transport.frames import HELLO
from gaia.lowlevel.syscalls import futex_wait


def test_writes_to_an_unreachable_peer_are_dropped_not_blocking(group, book):
    a = make("tcp", group, 0, 4096, {0: book[0], 1: book[1]})  # nobody listens on book[1]
    try:
        assert not a.wait_connected(0.2)
        assert [a.write(1, 0, bytes(16)) for _ in range(100)] == [False] * 100
        assert a.counters(1) == {"sent": 0, "dropped": 100}
        assert a.last_error.get(1)  # the connector says why
    finally:
        a.close()


class StalledReceiver:
    """A peer that accepts the handshake and then does not read until released (a
    SIGSTOPped replica, as far as its socket is concerned)."""

    def __init__(self, port: int) -> None:
        self.server = socket.create_server(("127.0.0.1", port))
        self.server.settimeout(0.2)
        self.released = threading.Event()
        self.stop = threading.Event()
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.server.accept()
            except TimeoutError:
                self.drain()
                continue
            conn.recv(HELLO.size)
            conn.sendall(b"\x00")
            conn.setblocking(False)
            self.conns.append(conn)

    def drain(self) -> None:
        if self.released.is_set():
            for conn in self.conns:
                try:
                    while conn.recv(1 << 20):
                        pass
                except OSError:
                    pass

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        for conn in self.conns:
            conn.close()
        self.server.close()


def test_a_stalled_peer_neither_blocks_the_sender_nor_breaks_later_writes(group, book):
    _, port = book[1].rsplit(":", 1)
    peer = StalledReceiver(int(port))
    a = make("tcp", group, 0, 1 << 20, {0: book[0], 1: book[1]}, send_timeout_ns=1_000_000)
    try:
        assert a.wait_connected(10)
        chunk = np.ones(1 << 16, dtype=np.uint8)
        results = [a.write(1, 0, chunk) for _ in range(600)]  # ~39 MB: far over the buffers
        assert False in results  # the kernel buffers filled: later writes were dropped
        peer.released.set()
        assert a.counters(1)["dropped"] == results.count(False)
        deadline = time.monotonic() + 20
        recovered = False
        while not recovered and time.monotonic() < deadline:
            recovered = a.write(1, 0, chunk)
            time.sleep(0.05)
        assert recovered  # once the peer reads again, writes get through again
    finally:
        a.close()
        peer.close()


def test_a_peer_of_another_group_is_refused(group, book):
    stranger = make("tcp", group + "-other", 1, 4096, {1: book[1]})
    a = make("tcp", group, 0, 4096, {0: book[0], 1: book[1]})
    try:
        assert not a.wait_connected(1)
        assert "another group" in a.last_error[1]
        assert not a.write(1, 0, b"intruder" * 2)
        assert not stranger.local.any()
    finally:
        a.close()
        stranger.close()
        unlink_group(group + "-other")


def test_a_peer_with_another_region_size_is_refused(group, book):
    b = make("tcp", group, 1, 8192, {1: book[1]})
    a = make("tcp", group, 0, 4096, {0: book[0], 1: book[1]})
    try:
        assert not a.wait_connected(1)
        assert "another size" in a.last_error[1]
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("kind", ["shm", "tcp"])
def test_a_remote_wake_ends_a_futex_backoff_early(group, book, kind):
    peers = {0: book[0], 1: book[1]} if kind == "tcp" else [0, 1]
    a, b = make(kind, group, 0, 4096, peers), make(kind, group, 1, 4096, peers)
    try:
        assert a.wait_connected(10)
        word = b.local[128:132].view(np.uint32)
        result = {}
        waiter = threading.Thread(
            target=lambda: result.update(r=futex_wait(word.ctypes.data, 0, 30_000_000_000)))
        waiter.start()
        while waiter.is_alive():
            assert a.wake(1, 128)
            waiter.join(0.01)
        assert result["r"] == 0  # woken, not timed out
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("kind", ["shm", "tcp"])
def test_membership_add_then_remove_a_peer(group, book, kind):
    if kind == "tcp":
        a = make(kind, group, 0, 4096, {0: book[0]})
        c = make(kind, group, 2, 4096, {2: book[2]})
        a.add_peer(2, book[2])
        assert a.wait_connected(10)
    else:
        a, c = make(kind, group, 0, 4096, []), make(kind, group, 2, 4096, [])
        a.add_peer(2)
    try:
        assert a.peers == [2]
        deadline = time.monotonic() + 10
        while bytes(c.local[:8]) != b"learner!" and time.monotonic() < deadline:
            a.write(2, 0, b"learner!")
            time.sleep(0.01)
        assert bytes(c.local[:8]) == b"learner!"
        a.remove_peer(2)
        assert a.peers == []
        assert not a.write(2, 8, b"removed!")
    finally:
        a.close()
        c.close()
