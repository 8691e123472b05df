"""`ApusDecisionLog`: the controllers' DecisionLog as an APUS group (the default).

Each controller process embeds its APUS replica (`EmbeddedReplica`): the three
controllers ARE the group. Why embedded rather than a replica process per controller plus
a client: leadership must die with the controller. With a separate replica process, a
controller that crashed while its replica kept leading would stall scheduling (nobody
else may propose); embedded, the controller's death is the replica's death, APUS elects
another replica, and that replica's controller is the new scheduling leader.

Mapping of the DecisionLog contract onto APUS:
- `propose` = the core's propose (slow path, one call between two ticks of the replica's
  thread), then wait until the entry is applied here; the entry found at that APUS
  index must be ours (same view) — else a new leader overwrote it: `NotLeaderError`.
- committed entries reach `DecisionApp.apply` in log order in the replica thread; only
  APP entries are decisions. Decision indices are dense (1, 2, 3 ...) although APUS
  indices also count NOOP and CONFIG entries.
- `is_leader` = this replica leads in a normal view AND the NOOP of its view was applied
  here (every entry of earlier views is then committed and applied here: the new
  scheduling leader starts from the whole history).
- snapshots: the controller's own state-machine snapshot (`save_snapshot`) plus the
  committed decisions after it form the APUS application snapshot, so APUS's log
  truncation and state transfer (to a restarted or lagging controller) carry everything
  the controller needs; `compact` drops decisions behind the controller's snapshot and
  asks APUS to compact its log now.

Transport: tcp between the controllers' hosts (network namespaces: partitions act on
it), durability `fsync` by default (a controller restarted on the same disk keeps its
log; a majority in memory would also do).
"""

from __future__ import annotations

import struct
import threading
import time
import uuid
from collections import OrderedDict, deque
from pathlib import Path

from gaia.apus.core import NotLeaderError as ApusNotLeaderError
from gaia.apus.layout import LayoutConfig
from gaia.apus.logstore import Entry, LogConfig, LogFullError, log_name
from gaia.apus.ringio import ring_name
from gaia.apus.runtime.embedded import EmbeddedReplica
from gaia.apus.runtime.segments import stats_name
from gaia.apus.runtime.spec import GroupSpec
from gaia.apus.transport.segments import segment_path
from gaia.apus.wire import K_APP, K_NOOP
from gaia.errors import GaiaError
from gaia.intercept.shm import shm_path
from gaia.tripod.decision_log import LogTruncatedError, NotLeaderError

SNAP_MAGIC = b"TRPAPUS1"
SNAP_HEAD = struct.Struct("<8sQQQI")  # magic, last apus index, count, snapshot index, len
ITEM = struct.Struct("<QI")  # decision index, payload length
RECENT_PROPOSALS = 8192
# Scheduling decisions are few and a controller idles most of the time: a 10 ms tick
# (heartbeats every 20 ms) returns to Python 5x less often than 2 ms; the idle floor is
# then the poll loop's 0.5 ms naps (APUS's oversubscribed policy): ~7% of a core per
# controller here (~8.5% at 2 ms).
TICK_US = 10_000


def controller_group_spec(
    directory: Path,
    addresses: dict[int, str],
    durability: str = "fsync",
    election_ms: int = 400,
) -> GroupSpec:
    """The controllers' APUS group, written to `directory`/group.json (every controller
    reads the same file). `addresses`: controller id -> "host:port" (tcp)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    spec = GroupSpec(
        replicas=sorted(addresses),
        group_id=uuid.uuid5(uuid.NAMESPACE_URL, f"tripod-log:{directory.resolve()}").hex,
        transport="tcp",
        durability=durability,
        layout=LayoutConfig(max_members=max(4, len(addresses) + 1), ring_slots=16,
                            mail_slots=8),
        log=LogConfig(index_cap=1 << 12, arena_bytes=8 << 20),
        ring_slots=16,
        ring_slot_size=4096,
        addresses=dict(addresses),
        tick_us=TICK_US,
        election_ticks=max(4, election_ms * 1000 // TICK_US),
        heartbeat_ticks=2,
        retransmit_ticks=4,
        spin="shared",  # schedulers must not eat the CPU their tasks need
        ring_dead_ms=2000,
    )
    spec.save(directory)
    return spec


class DecisionApp:
    """The APUS application of one controller: the committed decisions not yet covered by
    the controller's latest snapshot, plus that snapshot. Runs in the replica's thread
    (apply/snapshot/restore); the controller's thread reads under `cond`."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.count = 0  # dense index of the last applied decision
        self.last_apus = 0  # last APUS index applied (any kind)
        self.entries: deque[tuple[int, bytes]] = deque()  # (index, payload) after snapshot
        self.saved: tuple[int, bytes] | None = None  # the controller's latest snapshot
        self.placed: OrderedDict[int, tuple[int, int]] = OrderedDict()  # apus -> (view, idx)
        self.noop_view = 0  # the highest view whose NOOP was applied here

    # -- AppHooks (replica thread) -------------------------------------------------------
    def apply(self, entry: Entry) -> None:
        with self.cond:
            self.last_apus = entry.index
            if entry.kind == K_NOOP:  # a leader's first entry of its view, now committed
                self.noop_view = max(self.noop_view, entry.view)
            if entry.kind == K_APP:
                self.count += 1
                self.entries.append((self.count, bytes(entry.payload)))
                self.placed[entry.index] = (entry.view, self.count)
                while len(self.placed) > RECENT_PROPOSALS:
                    self.placed.popitem(last=False)
            self.cond.notify_all()

    def snapshot(self) -> bytes:
        with self.cond:
            snap_index, snap = self.saved or (0, b"")
            parts = [SNAP_HEAD.pack(SNAP_MAGIC, self.last_apus, self.count, snap_index,
                                    len(snap)), snap, struct.pack("<Q", len(self.entries))]
            for index, payload in self.entries:
                parts += [ITEM.pack(index, len(payload)), payload]
            return b"".join(parts)

    def restore(self, data: bytes) -> None:
        if not data:
            return
        magic, last_apus, count, snap_index, size = SNAP_HEAD.unpack_from(data, 0)
        if magic != SNAP_MAGIC:
            raise GaiaError("the decision log snapshot is not a TRIPOD snapshot",
                            "the APUS group directory belongs to something else")
        pos = SNAP_HEAD.size
        snap = data[pos : pos + size]
        pos += size
        (n,) = struct.unpack_from("<Q", data, pos)
        pos += 8
        entries: deque[tuple[int, bytes]] = deque()
        for _ in range(n):
            index, length = ITEM.unpack_from(data, pos)
            pos += ITEM.size
            entries.append((index, data[pos : pos + length]))
            pos += length
        with self.cond:
            self.last_apus, self.count = last_apus, count
            self.saved = (snap_index, snap) if snap_index else None
            self.entries = entries
            self.cond.notify_all()

    def reply(self, entry: Entry) -> bytes:
        return b""

    # -- reading (controller thread) -----------------------------------------------------
    def read(self, after: int, limit: int) -> list[tuple[int, bytes]]:
        with self.cond:
            first = self.entries[0][0] if self.entries else self.count + 1
            if after + 1 < first and after < self.count:
                raise LogTruncatedError(self.saved[0] if self.saved else first - 1)
            start = after + 1 - first
            return [self.entries[i] for i in range(max(0, start), min(len(self.entries),
                                                                         start + limit))]

    def keep_snapshot(self, index: int, data: bytes) -> None:
        with self.cond:
            if self.saved is not None and self.saved[0] >= index:
                return
            if index > self.count:
                raise ValueError(f"snapshot at {index} is past the last decision {self.count}")
            self.saved = (index, bytes(data))
            self.drop_through(index)

    def drop_through(self, index: int) -> None:
        while self.entries and self.entries[0][0] <= index:
            self.entries.popleft()


class ApusDecisionLog:
    def __init__(self, directory: Path, controller_id: int, campaign: bool = True) -> None:
        """`campaign` is accepted for the DecisionLog signature: every APUS member may
        lead (priorities live in the group spec)."""
        self.directory = Path(directory)
        self.controller_id = controller_id
        self.spec = GroupSpec.load(self.directory)
        self.app = DecisionApp()
        self._closed = False
        self.replica = EmbeddedReplica(self.directory, controller_id, self.app).start()

    # -- leadership ------------------------------------------------------------------------
    def leader(self) -> int | None:
        return self.replica.leader

    def is_leader(self) -> bool:
        """Leads, and its view's NOOP is applied here (so is everything before it). Not
        `commit >= view start`: the core turns leader a moment before it records its
        view's start, and a controller thread reading in between would lead too early."""
        core = self.replica.core
        return core.is_leader and self.app.noop_view == core.view

    def wait_leader(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self.is_leader():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.005)
        return True

    # -- writing ---------------------------------------------------------------------------
    def propose(self, entry: bytes, timeout: float = 5.0) -> int:
        if not self.is_leader():
            raise NotLeaderError(self.leader())
        try:
            index, view = self.replica.call(lambda core: (core.propose(entry), core.view),
                                            timeout)
        except ApusNotLeaderError:
            raise NotLeaderError(self.leader()) from None
        except LogFullError as exc:
            raise GaiaError(f"the decision log is full: {exc.problem}",
                            "let controllers snapshot (snapshot_every) so it compacts") from None
        app = self.app
        with app.cond:
            done = app.cond.wait_for(lambda: app.last_apus >= index or self._closed, timeout)
            found = app.placed.get(index)
        if found is not None and found[0] == view:
            return found[1]
        if done:  # another entry committed at our index: a new leader replaced ours
            raise NotLeaderError(self.leader())
        if not self.is_leader():
            raise NotLeaderError(self.leader())
        raise GaiaError(f"decision at APUS index {index} not committed within {timeout:g} s",
                        "is a majority of the controllers running and connected?")

    # -- reading ---------------------------------------------------------------------------
    def commit_index(self) -> int:
        with self.app.cond:
            return self.app.count

    def read_committed(self, after: int, limit: int = 1000) -> list[tuple[int, bytes]]:
        return self.app.read(after, limit)

    def wait_committed(self, after: int, timeout: float) -> bool:
        app = self.app
        with app.cond:
            return app.cond.wait_for(lambda: app.count > after or self._closed, timeout) and \
                app.count > after

    # -- snapshots and compaction -------------------------------------------------------------
    def save_snapshot(self, index: int, data: bytes) -> None:
        self.app.keep_snapshot(index, data)

    def latest_snapshot(self) -> tuple[int, bytes] | None:
        with self.app.cond:
            return self.app.saved

    def compact(self, index: int) -> None:
        """Drop decisions <= index (a snapshot at >= index must exist) and let APUS
        truncate its log behind its own snapshot now (any controller may)."""
        snap = self.latest_snapshot()
        if snap is None or snap[0] < index:
            raise ValueError(f"no snapshot covers index {index}; save one before compacting")
        with self.app.cond:
            self.app.drop_through(index)
        self.replica.compact()

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        with self.app.cond:
            self.app.cond.notify_all()
        self.replica.stop()
        unlink_replica_segments(self.spec.group_id, self.controller_id)


def unlink_replica_segments(group_id: str, replica: int) -> None:
    """Remove one replica's shared memory (its region, log, ring, stats), not its peers'
    (in local mode the peers share /dev/shm and still run)."""
    for name in (log_name(group_id, replica), ring_name(group_id, replica),
                 stats_name(group_id, replica)):
        shm_path(name).unlink(missing_ok=True)
    segment_path(group_id, replica).unlink(missing_ok=True)
