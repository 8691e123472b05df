"""Algorithm 1 of the proposal: find the divergent leaves by walking down from the root.

The leader compares a node's children with the backup's (through the ComparisonChannel,
i.e. an APUS round trip) only where the node itself diverged, so d divergent leaves of N
cost at most 1 + 2·d·ceil(log2 N) node comparisons instead of N.

Two batchings, same comparisons:
- "level": all children of the divergent nodes of one level travel in one round trip, so
  a sync costs depth+1 round trips whatever d is (what we run; round trips are the
  expensive part of a consensus message).
- "node": one round trip per divergent internal node, as Algorithm 1 is written
  (APUS(i, i.left, i.right) for each diverged i): up to d·log2 N round trips.
A node carried up without a sibling has its child's hash, so when it diverges its child
does too and is taken without comparing it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gaia.vm.channel import ComparisonChannel
from gaia.vm.merkle import MerkleTree

BATCHINGS = ("level", "node")


@dataclass(frozen=True)
class TrackResult:
    pages: np.ndarray  # divergent page numbers, ascending
    round_trips: int
    comparisons: int  # node hashes sent for comparison


def comparison_bound(n_divergent: int, n_leaves: int) -> int:
    """Upper bound on comparisons: the root, then two children per divergent node/level."""
    if n_leaves == 0 or n_divergent == 0:
        return 1 if n_leaves else 0
    depth = int(np.ceil(np.log2(n_leaves))) if n_leaves > 1 else 0
    return 1 + 2 * n_divergent * depth


def _expand(tree: MerkleTree, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Children of divergent internal nodes: (to compare, known divergent already)."""
    left, right = tree.children(ids)
    has_right = right >= 0
    to_compare = np.concatenate([left[has_right], right[has_right]])
    inherited = left[~has_right]  # carried-up child: same hash as its divergent parent
    return np.sort(to_compare), inherited


def track(tree: MerkleTree, channel: ComparisonChannel, batching: str = "level") -> TrackResult:
    """Divergent pages between the leader's `tree` and the backup's (same shape)."""
    if batching not in BATCHINGS:
        raise ValueError(f"batching must be one of {BATCHINGS}, got {batching!r}")
    if tree.shape.n_leaves == 0:
        return TrackResult(np.empty(0, np.int64), 0, 0)
    n_leaves = tree.shape.n_leaves
    root = np.array([tree.shape.root_id], dtype=np.int64)
    round_trips, comparisons = 1, 1
    frontier = channel.compare(root, tree.nodes[root])
    leaves: list[np.ndarray] = []
    while frontier.size:
        done = frontier[frontier < n_leaves]
        leaves.append(done)
        internal = frontier[frontier >= n_leaves]
        if internal.size == 0:
            break
        groups = (
            [internal]
            if batching == "level"
            else [internal[i : i + 1] for i in range(internal.size)]
        )
        found = []
        for group in groups:
            to_compare, inherited = _expand(tree, group)
            found.append(inherited)
            if to_compare.size:
                round_trips += 1
                comparisons += to_compare.size
                found.append(channel.compare(to_compare, tree.nodes[to_compare]))
        frontier = np.sort(np.concatenate(found)).astype(np.int64)
    leaf_ids = np.sort(np.concatenate(leaves)) if leaves else np.empty(0, np.int64)
    return TrackResult(tree.leaf_page(leaf_ids), round_trips, comparisons)
