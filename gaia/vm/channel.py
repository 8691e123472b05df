"""The leader <-> major-backup conversation of a sync, as bytes an APUS ack can carry.

Why bytes: in GAIA the two messages of a sync travel through APUS (the leader proposes a
REQUEST entry, the backup's reply rides in the reply slot it writes before acking).
Writing the protocol as request and reply byte strings makes binding to APUS an adapter
of one function, `transport(request) -> reply`; in one process the transport is the
backup endpoint's `handle` itself.

Messages (little-endian):
- DIRTY   request: b"D" u32 n_pages, u32 first, u32 count, page set of pages
  [first, first+count) -> reply: page set of the union over that range. The backup
  builds its adjusted tree over the union when the last range arrives. A page set is
  whichever is shorter: b"B" + the packed bitmap, or b"L" + u32 page numbers relative to
  `first` (sparse sets: a few thousand dirty pages of 131,072 cost less as a list).
- COMPARE request: b"C" u32 k, k x u32 node ids, k x u64 leader hashes -> reply: the
  packed bitmap of the k nodes whose backup hash differs (k bits: a reply never grows
  with the divergence, so it fits a small ack payload).
A transport with size limits (APUS: max entry payload, reply slot size) gets messages
split to fit: DIRTY by page range, COMPARE by node batch; each piece is a round trip.
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
_RANGE = struct.Struct("<III")  # n_pages, first, count


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


def encode_dirty(bitmap: np.ndarray, first: int = 0, count: int | None = None) -> bytes:
    count = bitmap.size - first if count is None else count
    head = _DIRTY + _RANGE.pack(bitmap.size, first, count)
    return head + encode_page_set(bitmap[first : first + count])


def encode_compare(node_ids: np.ndarray, hashes: np.ndarray) -> bytes:
    ids = np.asarray(node_ids, dtype="<u4")
    return _COMPARE + _U32.pack(ids.size) + ids.tobytes() + np.asarray(hashes, "<u8").tobytes()


def decode_differ(payload: bytes, node_ids: np.ndarray) -> np.ndarray:
    """The ids among `node_ids` that a COMPARE reply marks as differing."""
    mask = np.unpackbits(np.frombuffer(payload, dtype=np.uint8), count=len(node_ids))
    return np.asarray(node_ids, dtype=np.int64)[mask.astype(bool)]


@dataclass(frozen=True)
class MessageLimits:
    """Largest request and reply a transport carries (bytes); None = unlimited."""

    request: int | None = None
    reply: int | None = None

    def dirty_pages_per_message(self) -> int | None:
        """Pages one DIRTY piece may cover so that request and reply fit."""
        budgets = [b for b in (self._less(self.request, 1 + _RANGE.size), self.reply) if b]
        return 8 * (min(budgets) - 1) if budgets else None

    def nodes_per_compare(self) -> int | None:
        budgets = []
        if self.request is not None:
            budgets.append((self.request - 1 - _U32.size) // 12)
        if self.reply is not None:
            budgets.append(8 * self.reply)
        return min(budgets) if budgets else None

    @staticmethod
    def _less(limit: int | None, by: int) -> int | None:
        return None if limit is None else limit - by


# ----------------------------------------------------------------------------- backup end
class BackupEndpoint:
    """The major backup's end: its page hashes and dirty bitmap; answers DIRTY/COMPARE."""

    def __init__(self, page_hashes: np.ndarray, dirty: np.ndarray) -> None:
        self.page_hashes = page_hashes
        self.dirty = dirty
        self.tree: MerkleTree | None = None
        self.union: np.ndarray | None = None
        self._leader_dirty = np.zeros(dirty.size, dtype=bool)
        self._received = 0  # pages of the leader's bitmap received so far

    def handle(self, request: bytes) -> bytes:
        kind, body = request[:1], request[1:]
        if kind == _DIRTY:
            return self._on_dirty(body)
        if kind == _COMPARE:
            return self._on_compare(body)
        raise ValueError(f"unknown sync message type {kind!r}")

    def _on_dirty(self, body: bytes) -> bytes:
        n_pages, first, count = _RANGE.unpack_from(body)
        if first + count == self._received and count:  # a repeated piece: same answer
            self._received = first
        if n_pages != self.dirty.size or first != self._received or first + count > n_pages:
            raise ValueError(
                f"DIRTY piece [{first}, {first + count}) of {n_pages} pages does not follow "
                f"the {self._received} pages received (the backup has {self.dirty.size})"
            )
        leader = decode_page_set(body[_RANGE.size :], count)
        self._leader_dirty[first : first + count] = leader
        self._received = first + count
        union = leader | self.dirty[first : first + count]
        if self._received == n_pages:
            self.union = self._leader_dirty | self.dirty
            self.tree = MerkleTree.build(
                self.page_hashes, union_leaves(self._leader_dirty, self.dirty)
            )
        return encode_page_set(union)

    def _on_compare(self, body: bytes) -> bytes:
        if self.tree is None:
            raise RuntimeError("COMPARE before DIRTY: the backup has no adjusted tree yet")
        (k,) = _U32.unpack_from(body)
        ids = np.frombuffer(body, dtype="<u4", count=k, offset=4).astype(np.int64)
        theirs = np.frombuffer(body, dtype="<u8", count=k, offset=4 + 4 * k)
        return np.packbits(self.tree.nodes[ids] != theirs).tobytes()


# ----------------------------------------------------------------------------- leader end
@dataclass
class ChannelStats:
    round_trips: int = 0
    nodes_compared: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    per_round: list[int] = field(default_factory=list)


class WireComparisonChannel:
    """A ComparisonChannel over any request->reply transport; counts what crosses it and
    splits messages to fit the transport's `limits`."""

    def __init__(
        self, transport: Callable[[bytes], bytes], limits: MessageLimits | None = None
    ) -> None:
        self.transport = transport
        self.limits = limits or MessageLimits()
        self.stats = ChannelStats()

    def _call(self, request: bytes) -> bytes:
        reply = self.transport(request)
        self.stats.round_trips += 1
        self.stats.bytes_sent += len(request)
        self.stats.bytes_received += len(reply)
        return reply

    def exchange_dirty(self, leader_dirty: np.ndarray) -> np.ndarray:
        bitmap = np.asarray(leader_dirty, dtype=bool)
        step = self.limits.dirty_pages_per_message() or max(1, bitmap.size)
        union = np.zeros(bitmap.size, dtype=bool)
        for first in range(0, max(1, bitmap.size), step):
            count = min(step, bitmap.size - first)
            reply = self._call(encode_dirty(bitmap, first, count))
            union[first : first + count] = decode_page_set(reply, count)
        return union

    def compare(self, node_ids: np.ndarray, leader_hashes: np.ndarray) -> np.ndarray:
        ids = np.asarray(node_ids, dtype=np.int64)
        hashes = np.asarray(leader_hashes, dtype=np.uint64)
        self.stats.nodes_compared += ids.size
        self.stats.per_round.append(ids.size)
        step = self.limits.nodes_per_compare() or max(1, ids.size)
        found = [
            decode_differ(self._call(encode_compare(ids[lo : lo + step], hashes[lo : lo + step])),
                          ids[lo : lo + step])
            for lo in range(0, max(1, ids.size), step)
        ]
        return np.concatenate(found) if found else np.empty(0, np.int64)


def direct_channel(backup: BackupEndpoint) -> WireComparisonChannel:
    """Both ends in one process (process backend, tests, the single-host VM pair)."""
    return WireComparisonChannel(backup.handle)
