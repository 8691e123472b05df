"""Merkle trees over a set of pages, with the tree adjustment of the proposal's §2.3.2.

Why adjustment: each replica's dirty set differs, so trees built over each side's own
dirty pages have different shapes and cannot be compared node by node. Both sides build
over the UNION of the two dirty bitmaps instead (a page dirty on one side only is still a
leaf on the other), so the trees have identical leaves and identical structure; only the
hashes differ where pages diverge.

Shape: leaves (level 0) are the page hashes of the union pages in ascending page order;
node i of level k+1 hashes nodes 2i and 2i+1 of level k; a last node without a sibling is
carried up unchanged (its parent has one child and the same hash). Every node has a
global id: its index in the levels laid end to end (leaves first), so ids are identical on
both sides and fit in 32 bits for any RAM size we hash.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from gaia.vm.hashing import hash_u64_pair


@njit(nogil=True, cache=True)
def _parent_level(child: np.ndarray) -> np.ndarray:
    n = child.shape[0]
    out = np.empty((n + 1) // 2, dtype=np.uint64)
    for i in range(n // 2):
        out[i] = hash_u64_pair(child[2 * i], child[2 * i + 1])
    if n % 2:
        out[n // 2] = child[n - 1]
    return out


def level_sizes(n_leaves: int) -> list[int]:
    """Node counts per level, leaves first, root last ([] for an empty tree)."""
    sizes = []
    n = n_leaves
    while n > 0:
        sizes.append(n)
        if n == 1:
            break
        n = (n + 1) // 2
    return sizes


@dataclass(frozen=True)
class TreeShape:
    """The structure both sides share: level sizes and each level's first global id."""

    sizes: tuple[int, ...]

    @classmethod
    def for_leaves(cls, n_leaves: int) -> TreeShape:
        return cls(tuple(level_sizes(n_leaves)))

    @property
    def n_leaves(self) -> int:
        return self.sizes[0] if self.sizes else 0

    @property
    def depth(self) -> int:
        """Levels above the leaves (0 for a single leaf)."""
        return max(0, len(self.sizes) - 1)

    @property
    def offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)

    @property
    def n_nodes(self) -> int:
        return int(sum(self.sizes))

    @property
    def root_id(self) -> int:
        return self.n_nodes - 1


@dataclass
class MerkleTree:
    """A Merkle tree over `leaf_pages` (ascending page numbers) with their hashes."""

    leaf_pages: np.ndarray  # int64, ascending
    shape: TreeShape
    nodes: np.ndarray  # uint64 hashes of all nodes, indexed by global id

    @classmethod
    def build(cls, page_hashes: np.ndarray, leaf_pages: np.ndarray) -> MerkleTree:
        """Tree over `leaf_pages`, leaves taken from the full per-page hash array."""
        pages = np.asarray(leaf_pages, dtype=np.int64)
        if pages.size > 1 and np.any(np.diff(pages) <= 0):
            raise ValueError("leaf_pages must be strictly ascending")
        return cls.from_leaf_hashes(pages, np.ascontiguousarray(page_hashes[pages]))

    @classmethod
    def from_leaf_hashes(cls, leaf_pages: np.ndarray, leaf_hashes: np.ndarray) -> MerkleTree:
        shape = TreeShape.for_leaves(int(leaf_hashes.size))
        levels = [np.ascontiguousarray(leaf_hashes, dtype=np.uint64)]
        for _ in range(shape.depth):
            levels.append(_parent_level(levels[-1]))
        nodes = np.concatenate(levels) if levels[0].size else np.empty(0, np.uint64)
        return cls(np.asarray(leaf_pages, dtype=np.int64), shape, nodes)

    @property
    def root(self) -> int | None:
        return int(self.nodes[-1]) if self.nodes.size else None

    # -- navigation by global id -------------------------------------------------------
    def level_of(self, ids: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.shape.offsets, ids, side="right") - 1

    def children(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Children of internal nodes `ids` (all on one level above the leaves).

        Returns (left_ids, right_ids_or_-1): a carried-up node has no right child."""
        ids = np.asarray(ids, dtype=np.int64)
        offsets = self.shape.offsets
        level = self.level_of(ids)
        if np.any(level == 0):
            raise ValueError("leaves have no children")
        index = ids - offsets[level]
        child_level = level - 1
        left_index = 2 * index
        left = offsets[child_level] + left_index
        sizes = np.asarray(self.shape.sizes, dtype=np.int64)[child_level]
        right = np.where(left_index + 1 < sizes, left + 1, -1)
        return left, right

    def leaf_page(self, leaf_ids: np.ndarray) -> np.ndarray:
        """Page numbers of leaves given by global id (leaves have ids 0..n_leaves-1)."""
        return self.leaf_pages[np.asarray(leaf_ids, dtype=np.int64)]


def union_leaves(leader_dirty: np.ndarray, backup_dirty: np.ndarray) -> np.ndarray:
    """Tree adjustment: the leaf set both sides use, the union of two dirty bitmaps."""
    if leader_dirty.shape != backup_dirty.shape:
        raise ValueError(
            f"dirty bitmaps cover different RAM sizes ({leader_dirty.size} vs "
            f"{backup_dirty.size} pages)"
        )
    return np.flatnonzero(leader_dirty | backup_dirty).astype(np.int64)
