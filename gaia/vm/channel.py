"""The leader <-> major-backup conversation of a sync, as bytes an APUS ack can carry.

Why bytes: in GAIA the two messages of a sync travel through APUS (the leader proposes,
the backup's reply rides in its ack's small payload). Writing the protocol as request and
reply byte strings makes binding to APUS an adapter of one function, `transport(request)
-> reply`; in one process the transport is the backup endpoint's `handle` itself.

Messages (little-endian):
- DIRTY   request: b"D" u32 n_pages, page set -> reply: page set of the union. The backup
  builds its adjusted tree over the union when it answers. A page set is whichever is
  shorter: b"B" + the packed bitmap, or b"L" + u32 page numbers (sparse sets: a few
  thousand dirty pages of 131,072 cost less as a list).
- COMPARE request: b"C" u32 k, k x u32 node ids, k x u64 leader hashes -> reply: u32 m,
  m x u32 ids of the nodes whose backup hash differs.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from gaia.vm.merkle import MerkleTree, union_leaves

_DIRTY = b"D"
_COMPARE = b"C"
_U32 = struct.Struct("<I")


class ComparisonChannel(Protocol):
    """What the leader's side of a sync needs from the link to the major backup."""

    def exchange_dirty(self, leader_dirty: np.ndarray) -> np.ndarray:
        """Send our dirty bitmap; get back the union with the backup's (bool[n_pages])."""
        ...

    def compare(self, node_ids: np.ndarray, leader_hashes: np.ndarray) -> np.ndarray:
        """One round trip: the ids among `node_ids` whose backup hash differs."""
        ...


# ----------------------------------------------------------------------------- encoding
def encode_page_set(bitmap: np.ndarray) -> bytes:
    pages = np.flatnonzero(bitmap)
    if 4 * pages.size < (bitmap.size + 7) // 8:
        return b"L" + pages.astype("<u4").tobytes()
    return b"B" + np.packbits(bitmap).tobytes()


def decode_page_set(payload: bytes, n_pages: int) -> np.ndarray:
    kind, body = payload[:1], payload[1:]
    if kind == b"L":
        bitmap = np.zeros(n_pages, dtype=bool)
        bitmap[np.frombuffer(body, dtype="<u4").astype(np.int64)] = True
        return bitmap
    if kind == b"B":
        return np.unpackbits(np.frombuffer(body, dtype=np.uint8), count=n_pages).astype(bool)
    raise ValueError(f"unknown page-set encoding {kind!r}")


def encode_dirty(bitmap: np.ndarray) -> bytes:
    return _DIRTY + _U32.pack(bitmap.size) + encode_page_set(bitmap)


def encode_compare(node_ids: np.ndarray, hashes: np.ndarray) -> bytes:
    ids = np.asarray(node_ids, dtype="<u4")
    return _COMPARE + _U32.pack(ids.size) + ids.tobytes() + np.asarray(hashes, "<u8").tobytes()


def decode_ids(payload: bytes) -> np.ndarray:
    (m,) = _U32.unpack_from(payload)
    return np.frombuffer(payload, dtype="<u4", count=m, offset=4).astype(np.int64)


# ----------------------------------------------------------------------------- backup end
class BackupEndpoint:
    """The major backup's end: its page hashes and dirty bitmap; answers DIRTY/COMPARE."""

    def __init__(self, page_hashes: np.ndarray, dirty: np.ndarray) -> None:
        self.page_hashes = page_hashes
        self.dirty = dirty
        self.tree: MerkleTree | None = None
        self.union: np.ndarray | None = None

    def handle(self, request: bytes) -> bytes:
        kind, body = request[:1], request[1:]
        if kind == _DIRTY:
            return self._on_dirty(body)
        if kind == _COMPARE:
            return self._on_compare(body)
        raise ValueError(f"unknown sync message type {kind!r}")

    def _on_dirty(self, body: bytes) -> bytes:
        (n_pages,) = _U32.unpack_from(body)
        leader = decode_page_set(body[4:], n_pages)
        self.union = leader | self.dirty
        self.tree = MerkleTree.build(self.page_hashes, union_leaves(leader, self.dirty))
        return encode_page_set(self.union)

    def _on_compare(self, body: bytes) -> bytes:
        if self.tree is None:
            raise RuntimeError("COMPARE before DIRTY: the backup has no adjusted tree yet")
        (k,) = _U32.unpack_from(body)
        ids = np.frombuffer(body, dtype="<u4", count=k, offset=4).astype(np.int64)
        theirs = np.frombuffer(body, dtype="<u8", count=k, offset=4 + 4 * k)
        differ = ids[self.tree.nodes[ids] != theirs]
        return _U32.pack(differ.size) + differ.astype("<u4").tobytes()


# ----------------------------------------------------------------------------- leader end
@dataclass
class ChannelStats:
    round_trips: int = 0
    nodes_compared: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    per_round: list[int] = field(default_factory=list)


class WireComparisonChannel:
    """A ComparisonChannel over any request->reply transport; counts what crosses it."""

    def __init__(self, transport: Callable[[bytes], bytes]) -> None:
        self.transport = transport
        self.stats = ChannelStats()

    def _call(self, request: bytes) -> bytes:
        reply = self.transport(request)
        self.stats.round_trips += 1
        self.stats.bytes_sent += len(request)
        self.stats.bytes_received += len(reply)
        return reply

    def exchange_dirty(self, leader_dirty: np.ndarray) -> np.ndarray:
        bitmap = np.asarray(leader_dirty, dtype=bool)
        return decode_page_set(self._call(encode_dirty(bitmap)), bitmap.size)

    def compare(self, node_ids: np.ndarray, leader_hashes: np.ndarray) -> np.ndarray:
        self.stats.nodes_compared += len(node_ids)
        self.stats.per_round.append(len(node_ids))
        return decode_ids(self._call(encode_compare(node_ids, leader_hashes)))


def direct_channel(backup: BackupEndpoint) -> WireComparisonChannel:
    """Both ends in one process (process backend, tests, the single-host VM pair)."""
    return WireComparisonChannel(backup.handle)
