"""One sync of two paused memory images: dirty detection, tree adjustment, Algorithm 1,
divergent-page copy and verification. Backend-neutral: RAM files, process memory and
synthetic images all implement `PageStore`.

Why hash diffs for dirty detection: QEMU 7.2's dirty-bitmap and dirty-ring modes crash
under TCG, and soft-dirty bits are off in this kernel. Each side keeps the page hashes of
its last sync; a page is dirty when its hash now differs. The same hashes then serve as
the Merkle leaves, so a page is read once per sync.

Why verify: QEMU does not check that a backup's RAM matches the state it loads, and a
guest resumed on an incomplete copy panics later or silently corrupts data. After the
copy every page hash of the backup must equal the leader's, else `IncompleteSyncError`
and the caller must not resume the backup as an exact copy.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

import numpy as np

from gaia.errors import GaiaError
from gaia.vm.channel import BackupEndpoint, WireComparisonChannel, direct_channel
from gaia.vm.hashing import PAGE_SIZE, hash_pages, hash_pages_at
from gaia.vm.merkle import MerkleTree, union_leaves
from gaia.vm.track import track

HASH_BYTES = 8


class PageStore(Protocol):
    """Paged memory that can be hashed, read and (on a backup) written."""

    n_pages: int

    def hash_all(self) -> np.ndarray: ...
    def hash_at(self, pages: np.ndarray) -> np.ndarray: ...
    def read_pages(self, pages: np.ndarray) -> np.ndarray: ...
    def write_pages(self, pages: np.ndarray, data: np.ndarray) -> None: ...


class ArrayStore:
    """A PageStore over a numpy byte buffer: a synthetic image or a RAM file's memmap."""

    def __init__(self, buf: np.ndarray, page_size: int = PAGE_SIZE) -> None:
        if buf.dtype != np.uint8 or buf.ndim != 1:
            raise ValueError("ArrayStore needs a 1-D uint8 buffer")
        self.buf = buf
        self.page_size = page_size
        self.n_pages = buf.size // page_size

    def hash_all(self) -> np.ndarray:
        return hash_pages(self.buf[: self.n_pages * self.page_size], self.page_size)

    def hash_at(self, pages: np.ndarray) -> np.ndarray:
        return hash_pages_at(self.buf[: self.n_pages * self.page_size], pages, self.page_size)

    def _pages(self) -> np.ndarray:
        return self.buf[: self.n_pages * self.page_size].reshape(self.n_pages, self.page_size)

    def read_pages(self, pages: np.ndarray) -> np.ndarray:
        return self._pages()[np.asarray(pages, dtype=np.int64)]

    def write_pages(self, pages: np.ndarray, data: np.ndarray) -> None:
        self._pages()[np.asarray(pages, dtype=np.int64)] = data


class IncompleteSyncError(GaiaError):
    """The backup's pages do not all match the leader's after the copy."""

    def __init__(self, mismatched: np.ndarray) -> None:
        shown = ", ".join(str(int(p)) for p in mismatched[:8])
        more = f" (+{mismatched.size - 8} more)" if mismatched.size > 8 else ""
        super().__init__(
            f"sync incomplete: {mismatched.size} page(s) of the backup still differ from "
            f"the leader after the copy (pages {shown}{more}); the backup was NOT resumed",
            "re-clone the backup from the leader (a full copy), then sync again",
        )
        self.mismatched = mismatched


@dataclass
class SyncCounts:
    """What one sync found and what each strategy would send (bytes exclude device
    state, which the VM layer adds)."""

    n_pages: int
    dirty_leader: int
    dirty_backup: int
    dirty_union: int
    divergent: int
    round_trips: int
    comparisons: int
    channel_bytes: int  # dirty sets + node ids/hashes, both directions
    ours_bytes: int  # divergent pages + channel bytes
    primary_backup_bytes: int  # every page the leader dirtied
    plover_bytes: int  # 8 bytes per dirty page + divergent pages


@dataclass
class SyncOutcome:
    counts: SyncCounts
    divergent_pages: np.ndarray
    steps_ms: dict[str, float] = field(default_factory=dict)

    def as_metrics(self) -> dict[str, Any]:
        data = asdict(self.counts)
        data.update({f"{k}_ms": round(v, 3) for k, v in self.steps_ms.items()})
        return data


class StepTimer:
    """Named wall-clock steps of a pause, in milliseconds, in the order run."""

    def __init__(self) -> None:
        self.ms: dict[str, float] = {}

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        start = time.perf_counter_ns()
        try:
            yield
        finally:
            self.ms[name] = self.ms.get(name, 0.0) + (time.perf_counter_ns() - start) / 1e6


def copy_pages(leader: PageStore, backup: PageStore, pages: np.ndarray) -> None:
    """Divergent-page transfer (one host: a read and a write; across hosts: the wire)."""
    if pages.size:
        backup.write_pages(pages, leader.read_pages(pages))


Copier = Callable[[PageStore, PageStore, np.ndarray], None]


@dataclass
class SyncState:
    """Per-pair memory of the last sync: both sides' page hashes at that moment."""

    leader_synced: np.ndarray
    backup_synced: np.ndarray
    # True when the two images are not known to be equal at the baseline (a backup
    # promoted from an older checkpoint): the next sync treats every page as dirty, so
    # the union covers every possible difference; Algorithm 1 still sends only
    # divergent pages.
    resync_all: bool = False

    @classmethod
    def after_clone(cls, leader: PageStore) -> SyncState:
        """Right after cloning, both images equal the leader's."""
        hashes = leader.hash_all()
        return cls(hashes, hashes.copy())

    @classmethod
    def unknown(cls, n_pages: int) -> SyncState:
        empty = np.zeros(n_pages, dtype=np.uint64)
        return cls(empty, empty.copy(), resync_all=True)


def sync_pages(
    leader: PageStore,
    backup: PageStore,
    state: SyncState,
    timer: StepTimer | None = None,
    batching: str = "level",
    copier: Copier = copy_pages,
    make_channel: Callable[[BackupEndpoint], WireComparisonChannel] = direct_channel,
) -> SyncOutcome:
    """Make `backup`'s pages equal `leader`'s; both must be paused. Updates `state`."""
    if leader.n_pages != backup.n_pages:
        raise GaiaError(
            f"leader has {leader.n_pages} pages, backup {backup.n_pages}",
            "clone the backup from the leader so both images have the same size",
        )
    timer = timer or StepTimer()
    with timer.step("hash"):
        leader_now = leader.hash_all()
    with timer.step("hash_backup"):  # on its own host, in parallel, in a deployment
        backup_now = backup.hash_all()
    with timer.step("hash"):
        if state.resync_all:
            leader_dirty = np.ones(leader.n_pages, dtype=bool)
            backup_dirty = leader_dirty.copy()
        else:
            leader_dirty = leader_now != state.leader_synced
            backup_dirty = backup_now != state.backup_synced
    channel = make_channel(BackupEndpoint(backup_now, backup_dirty))
    with timer.step("tree"):
        union = channel.exchange_dirty(leader_dirty)
        if not np.array_equal(union, leader_dirty | backup_dirty):
            raise GaiaError("the backup returned a wrong union of dirty bitmaps", "")
        tree = MerkleTree.build(leader_now, union_leaves(leader_dirty, backup_dirty))
    with timer.step("traversal"):
        found = track(tree, channel, batching)
    with timer.step("copy"):
        copier(leader, backup, found.pages)
    with timer.step("verify"):
        backup_after = backup_now.copy()
        if found.pages.size:
            backup_after[found.pages] = backup.hash_at(found.pages)
        mismatched = np.flatnonzero(backup_after != leader_now)
        if mismatched.size:
            raise IncompleteSyncError(mismatched)
    state.leader_synced = leader_now
    state.backup_synced = backup_after
    state.resync_all = False
    counts = _counts(leader.n_pages, leader_dirty, backup_dirty, found, channel)
    return SyncOutcome(counts, found.pages, dict(timer.ms))


def _counts(n_pages, leader_dirty, backup_dirty, found, channel) -> SyncCounts:
    stats = channel.stats
    channel_bytes = stats.bytes_sent + stats.bytes_received
    divergent = int(found.pages.size)
    union = int(np.count_nonzero(leader_dirty | backup_dirty))
    return SyncCounts(
        n_pages=n_pages,
        dirty_leader=int(np.count_nonzero(leader_dirty)),
        dirty_backup=int(np.count_nonzero(backup_dirty)),
        dirty_union=union,
        divergent=divergent,
        round_trips=stats.round_trips,
        comparisons=found.comparisons,
        channel_bytes=channel_bytes,
        ours_bytes=divergent * PAGE_SIZE + channel_bytes,
        primary_backup_bytes=int(np.count_nonzero(leader_dirty)) * PAGE_SIZE,
        plover_bytes=union * HASH_BYTES + divergent * PAGE_SIZE,
    )
