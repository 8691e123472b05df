"""Merkle trees + tree adjustment + Algorithm 1 (proposal §2.3.2, Figure 6).

One test per claim: identical leaf sets give identical shapes; exactly the divergent
pages are found for random bitmaps and contents; comparisons grow as O(d log N); level
batching needs depth+1 round trips whatever d is.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gaia.vm.channel import BackupEndpoint, direct_channel
from gaia.vm.merkle import MerkleTree, TreeShape, union_leaves
from gaia.vm.track import comparison_bound, track


@st.composite
def replica_pair(draw, max_pages: int = 3000):
    """Two page-hash arrays equal at the last sync, then each side dirties pages; some
    dirty pages get the same new content on both sides (same inputs), some differ."""
    n = draw(st.integers(1, max_pages))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    p_dirty = draw(st.sampled_from([0.0, 0.001, 0.01, 0.1, 0.5, 1.0]))
    p_diverge = draw(st.sampled_from([0.0, 0.01, 0.2, 1.0]))
    synced = rng.integers(0, 2**63, n, dtype=np.uint64)
    both = rng.random(n) < p_dirty
    only_leader = rng.random(n) < p_dirty / 4
    only_backup = rng.random(n) < p_dirty / 4
    leader, backup = synced.copy(), synced.copy()
    fresh = rng.integers(0, 2**63, n, dtype=np.uint64)
    leader[both], backup[both] = fresh[both], fresh[both]
    diverge = both & (rng.random(n) < p_diverge)
    backup[diverge] = rng.integers(0, 2**63, int(diverge.sum()), dtype=np.uint64)
    leader[only_leader] = rng.integers(0, 2**63, int(only_leader.sum()), dtype=np.uint64)
    backup[only_backup] = rng.integers(0, 2**63, int(only_backup.sum()), dtype=np.uint64)
    # A page rewritten with its old content is not dirty (hash equal): keep it realistic.
    return synced, leader, backup


def _run(synced, leader, backup, batching="level"):
    leader_dirty, backup_dirty = leader != synced, backup != synced
    endpoint = BackupEndpoint(backup, backup_dirty)
    channel = direct_channel(endpoint)
    union = channel.exchange_dirty(leader_dirty)
    tree = MerkleTree.build(leader, np.flatnonzero(union))
    return tree, endpoint, channel, track(tree, channel, batching)


@settings(max_examples=300, deadline=None)
@given(replica_pair(), st.sampled_from(["level", "node"]))
def test_finds_exactly_the_divergent_pages(pair, batching) -> None:
    synced, leader, backup = pair
    _, _, _, found = _run(synced, leader, backup, batching)
    np.testing.assert_array_equal(found.pages, np.flatnonzero(leader != backup))


@settings(max_examples=300, deadline=None)
@given(replica_pair())
def test_adjusted_trees_have_identical_structure(pair) -> None:
    synced, leader, backup = pair
    tree, endpoint, _, _ = _run(synced, leader, backup)
    assert endpoint.tree is not None
    assert endpoint.tree.shape == tree.shape
    np.testing.assert_array_equal(endpoint.tree.leaf_pages, tree.leaf_pages)
    assert (tree.root == endpoint.tree.root) == bool(np.all(leader == backup))


@settings(max_examples=300, deadline=None)
@given(replica_pair(), st.sampled_from(["level", "node"]))
def test_comparisons_are_o_d_log_n(pair, batching) -> None:
    synced, leader, backup = pair
    tree, _, channel, found = _run(synced, leader, backup, batching)
    d, n = int(found.pages.size), tree.shape.n_leaves
    assert found.comparisons <= comparison_bound(d, n)
    # Each compared node travelled in exactly one COMPARE round trip.
    assert channel.stats.nodes_compared == found.comparisons
    if batching == "level" and n:
        assert found.round_trips <= tree.shape.depth + 1
    if batching == "node" and d:
        assert found.round_trips <= 1 + d * max(1, math.ceil(math.log2(n)))


def test_bound_is_tight_enough_to_matter() -> None:
    """With 1 divergent page of 2^17 the traversal compares 1 + 2*17 nodes, not 131,072."""
    n = 1 << 17
    leader = np.arange(n, dtype=np.uint64)
    backup = leader.copy()
    backup[12345] += 1
    synced = np.zeros(n, np.uint64)  # every page dirty on both sides
    _, _, _, found = _run(synced, leader, backup)
    assert found.pages.tolist() == [12345]
    assert found.comparisons == 1 + 2 * 17
    assert found.round_trips == 18


def test_tree_adjustment_uses_the_union() -> None:
    leader = np.array([1, 0, 0, 1, 0], dtype=bool)
    backup = np.array([0, 0, 1, 1, 0], dtype=bool)
    assert union_leaves(leader, backup).tolist() == [0, 2, 3]
    with pytest.raises(ValueError, match="different RAM sizes"):
        union_leaves(leader, backup[:4])


@pytest.mark.parametrize("n", [0, 1, 2, 3, 5, 8, 1000])
def test_shape_levels(n: int) -> None:
    shape = TreeShape.for_leaves(n)
    assert shape.n_leaves == n
    assert shape.depth == (math.ceil(math.log2(n)) if n > 1 else 0)
    if n:
        assert shape.sizes[-1] == 1


def test_empty_union_costs_nothing() -> None:
    hashes = np.arange(10, dtype=np.uint64)
    _, _, channel, found = _run(hashes, hashes, hashes.copy())
    assert found.pages.size == 0 and found.comparisons == 0
    assert channel.stats.round_trips == 1  # only the dirty-bitmap exchange


def test_compare_before_dirty_is_refused() -> None:
    endpoint = BackupEndpoint(np.zeros(4, np.uint64), np.zeros(4, bool))
    channel = direct_channel(endpoint)
    with pytest.raises(RuntimeError, match="before DIRTY"):
        channel.compare(np.array([0]), np.array([1], np.uint64))
