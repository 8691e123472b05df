"""Messages split to fit a transport's limits (APUS: entry payload, reply slot) find the
same pages as unlimited ones, and no message crosses a limit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gaia.vm.channel import BackupEndpoint, MessageLimits, WireComparisonChannel, encode_dirty
from gaia.vm.merkle import MerkleTree
from gaia.vm.track import track

from .test_merkle_track import replica_pair


def _sync(synced, leader, backup, limits):
    leader_dirty, backup_dirty = leader != synced, backup != synced
    endpoint = BackupEndpoint(backup, backup_dirty)
    sizes: list[tuple[int, int]] = []

    def transport(request: bytes) -> bytes:
        reply = endpoint.handle(request)
        sizes.append((len(request), len(reply)))
        return reply

    channel = WireComparisonChannel(transport, limits)
    union = channel.exchange_dirty(leader_dirty)
    found = track(MerkleTree.build(leader, np.flatnonzero(union)), channel)
    return union, found, sizes, channel


@settings(max_examples=150, deadline=None)
@given(replica_pair(), st.integers(40, 600), st.integers(2, 200))
def test_split_messages_find_the_same_pages_within_limits(pair, request, reply) -> None:
    synced, leader, backup = pair
    limits = MessageLimits(request=request, reply=reply)
    union, found, sizes, channel = _sync(synced, leader, backup, limits)
    np.testing.assert_array_equal(union, (leader != synced) | (backup != synced))
    np.testing.assert_array_equal(found.pages, np.flatnonzero(leader != backup))
    assert all(q <= request and r <= reply for q, r in sizes)
    assert channel.stats.round_trips == len(sizes)


def test_unlimited_channel_sends_one_dirty_message() -> None:
    hashes = np.arange(5000, dtype=np.uint64)
    _, found, sizes, _ = _sync(hashes, hashes + 1, hashes + 1, MessageLimits())
    assert found.pages.size == 0
    assert len(sizes) == 2  # everything dirty, nothing divergent: DIRTY, then the root


def test_dirty_pieces_must_arrive_in_order() -> None:
    endpoint = BackupEndpoint(np.zeros(100, np.uint64), np.zeros(100, bool))
    with pytest.raises(ValueError, match="does not follow"):
        endpoint.handle(encode_dirty(np.zeros(100, bool), first=50, count=50))
