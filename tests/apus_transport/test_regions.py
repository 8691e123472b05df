"""Behaviour every transport shares: whole writes, per-sender order, in-place restart."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from numba import njit

from gaia.apus.transport import RegionTransport, make, remote_read_word, unlink_group
from gaia.errors import ConfigError, GaiaError
from gaia.net import free_ports
from tests.apus_transport import harness

REGION = 1 << 20
ENTRY = 4096


def open_pair(kind: str, group: str, size: int = REGION) -> tuple[RegionTransport, RegionTransport]:
    if kind == "shm":
        return make("shm", group, 0, size, [1]), make("shm", group, 1, size, [0])
    ports = free_ports(2)
    book = {0: f"127.0.0.1:{ports[0]}", 1: f"127.0.0.1:{ports[1]}"}
    a, b = make("tcp", group, 0, size, book), make("tcp", group, 1, size, book)
    assert a.wait_connected(10) and b.wait_connected(10)
    return a, b


@pytest.fixture(params=["shm", "tcp"])
def pair(request, group) -> Iterator[tuple[RegionTransport, RegionTransport]]:
    a, b = open_pair(request.param, group)
    yield a, b
    a.close()
    b.close()


def run_threads(*targets) -> list:
    """Run callables concurrently (njit nogil loops) and return their results."""
    results: list = [None] * len(targets)

    def call(i, fn):
        results[i] = fn()

    threads = [threading.Thread(target=call, args=(i, fn)) for i, fn in enumerate(targets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not any(t.is_alive() for t in threads), "a loop never finished"
    return results


def test_a_concurrent_poller_only_ever_sees_whole_writes(pair):
    a, b = pair
    n = 3000
    writer = lambda: harness.stream_writer(a.numba_handle(), 1, n, ENTRY,  # noqa: E731
                                           a.local.view(np.uint64))
    checker = lambda: harness.stream_checker(b.numba_handle(), 0, n, ENTRY, b.local)  # noqa: E731
    retries, bad = run_threads(writer, checker)
    assert retries != harness.TIMED_OUT and bad != harness.TIMED_OUT
    assert bad == 0


def test_the_checker_catches_a_canary_published_before_its_body(group):
    """The stream check can fail: a writer that stores the canary first is caught."""
    a, b = open_pair("shm", group)
    n = 20
    try:
        def broken_writer():
            buf = np.empty(ENTRY, dtype=np.uint8)
            for seq in range(1, n + 1):
                while seq - int(a.local.view(np.uint64)[0]) > harness.SLOTS:
                    time.sleep(0.001)
                harness.fill_entry(buf, seq)
                off = (seq % harness.SLOTS) * ENTRY
                b.local[off + ENTRY - 8 : off + ENTRY] = buf[-8:]  # canary first: wrong
                time.sleep(0.005)
                b.local[off : off + ENTRY - 8] = buf[:-8]

        checker = lambda: harness.stream_checker(b.numba_handle(), 0, n, ENTRY, b.local)  # noqa: E731
        _, bad = run_threads(broken_writer, checker)
    finally:
        a.close()
        b.close()
    assert bad > 0


def test_writes_from_one_sender_are_applied_in_order(pair):
    a, b = pair
    n = 20_000
    dropped, violations = run_threads(
        lambda: harness.order_writer(a.numba_handle(), 1, n),
        lambda: harness.order_checker(b.local.view(np.uint64), n),
    )
    assert dropped == 0
    assert violations == 0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(writes=st.lists(
    st.tuples(st.integers(0, REGION // 8 - 1), st.integers(1, 40_000), st.integers(0, 255)),
    min_size=1, max_size=12))
def test_random_writes_leave_the_region_equal_to_a_model(pair, writes):
    """Any sequence of valid writes (small, and large enough for the tcp receiver's
    direct-into-region path) leaves the peer's region byte-equal to a bytearray model."""
    a, b = pair
    b.local[:] = 0
    model = np.zeros(REGION, dtype=np.uint8)
    for word, words, seed in writes:
        length = 8 * min(words, REGION // 8 - word)
        offset = 8 * word
        data = np.random.default_rng(seed).integers(0, 256, length, dtype=np.uint8)
        assert a.write(1, offset, data)
        model[offset : offset + length] = data
    fence = np.full(8, 0xAB, dtype=np.uint8)  # a last write: when it is visible, all are
    assert a.write(1, REGION - 8, fence)
    model[-8:] = fence
    deadline = time.monotonic() + 30
    while not np.array_equal(b.local[-8:], fence) and time.monotonic() < deadline:
        time.sleep(0.001)
    assert np.array_equal(b.local, model)


def test_a_restarted_replica_reinitialises_in_place_and_peers_keep_writing(pair):
    a, b = pair
    kind, group = b.kind, b.group_id
    assert a.write(1, 0, b"entry-1\x00" * 2)
    deadline = time.monotonic() + 10
    while bytes(b.local[8:16]) != b"entry-1\x00" and time.monotonic() < deadline:
        time.sleep(0.001)
    peers = {0: a.address, 1: b.address} if kind == "tcp" else [0]
    b.close()
    kept = make(kind, group, 1, REGION, peers, reset=False)  # restart, keep the bytes
    assert bytes(kept.local[8:16]) == b"entry-1\x00"
    kept.close()
    fresh = make(kind, group, 1, REGION, peers)  # restart, re-initialise (zero) in place
    try:
        assert not fresh.local.any()
        assert a.wait_connected(10)
        deadline = time.monotonic() + 10
        while bytes(fresh.local[8:16]) != b"entry-2\x00" and time.monotonic() < deadline:
            a.write(1, 0, b"entry-2\x00" * 2)  # the first write after a restart may be lost
            time.sleep(0.01)
        assert bytes(fresh.local[8:16]) == b"entry-2\x00"
    finally:
        fresh.close()


def test_writing_into_ones_own_region_applies_locally(pair):
    a, _ = pair
    assert a.write(0, 64, b"selfselfSELFSELF")
    assert bytes(a.local[64:80]) == b"selfselfSELFSELF"


@pytest.mark.parametrize("offset,length", [(0, 4), (4, 8), (0, 12), (REGION - 8, 16), (-8, 8)])
def test_writes_that_break_the_rules_are_refused(pair, offset, length):
    a, _ = pair
    with pytest.raises(ValueError, match="need length >= 8"):
        a.write(1, offset, bytes(length))


def test_bad_configuration_is_a_clear_error(group):
    with pytest.raises(ConfigError, match="unknown transport"):
        make("carrier-pigeon", group, 0, 4096, [1])
    with pytest.raises(ConfigError, match="multiple of 8"):
        make("shm", group, 0, 4100, [1])
    with pytest.raises(ConfigError, match="cannot name"):
        make("shm", "no/slashes", 0, 4096, [1])
    with pytest.raises(ConfigError, match="peer addresses"):
        make("tcp", group, 0, 4096, [1])
    with pytest.raises(ConfigError, match=r"outside 0\.\.15"):
        make("shm", group, 16, 4096, [1])
    a = make("shm", group, 0, 4096, [1])
    try:
        with pytest.raises(GaiaError, match="holds 4096 bytes, this replica expects 8192"):
            make("shm", group, 1, 8192, [0])
    finally:
        a.close()
        unlink_group(group)


@njit
def read_word(h, peer, offset):
    return remote_read_word(h, peer, offset)


def test_remote_reads_see_the_peers_region_on_shm_and_are_refused_on_tcp(pair):
    a, b = pair
    b.local[64:72] = np.frombuffer(b"peerword", dtype=np.uint8)
    if a.kind == "shm":
        assert int(read_word(a.numba_handle(), 1, 64)).to_bytes(8, "little") == b"peerword"
    else:
        with pytest.raises(ValueError, match="no remote reads"):
            read_word(a.numba_handle(), 1, 64)
