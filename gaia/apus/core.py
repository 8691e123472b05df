"""The APUS replica as a value you poll and tick (etcd-raft style): the slow path.

`Core` owns the replica's state arrays (shared with the numba fast path), its local log,
its input ring and its durable storage, and is driven from outside: `poll()` runs the
fast path once (fastpath.poll_once) and handles whatever it flagged; `tick()` advances
the logical clock (timeouts, heartbeats, retransmissions). There are no sockets, clocks
or threads in here: writes into peers' regions go through the `write` function the
owner passes in (the transport's numba handle in the runtime; an outbox in the
simulator, which `ready()` drains), durable state through a `Storage`. `ready()` hands back what happened
(the simulator's outbox writes, newly committed entries, view changes).

View change (after "Paxos made practical"): a replica whose leader goes silent becomes a
candidate for view v+1 and asks the voters for a promise; each voter promises at most
one candidate per view (durably) and reports its log state. With a majority of promises
the candidate adopts the most up-to-date log among them — highest view of the last
entry, then highest index — fetching what it lacks from that replica, appends a NOOP
entry of its view and leads. It then syncs each backup: the backup keeps its longest
prefix matching the leader's log (entries' views compared, so matching entries are never
dropped), cuts the rest, and the leader streams the missing entries through the ring.
Commit needs an entry of the leader's own view on a majority (Raft's rule), so entries
adopted from older views commit together with the NOOP.

A replica restarted without its log (memory mode) or with a corrupt one is
`recovering`: it refuses promises until a leader has synced it up to that leader's
commit index at the time, so its empty log can never outvote a committed entry.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numba import njit

from gaia.apus import fastpath as fp
from gaia.apus import logstore as lgs
from gaia.apus import messages as M
from gaia.apus import wire
from gaia.apus.layout import LayoutConfig
from gaia.apus.logstore import Entry, LocalLog, LogFullError
from gaia.apus.storage import (
    HardState,
    Recovered,
    Snapshot,
    Storage,
    decode_snapshot,
    encode_snapshot,
)
from gaia.errors import GaiaError
from gaia.intercept.ring import Ring


class AppHooks(Protocol):
    """What an application lends the replica (all optional; see NullApp)."""

    def apply(self, entry: Entry) -> None: ...
    def snapshot(self) -> bytes: ...
    def restore(self, data: bytes) -> None: ...
    def reply(self, entry: Entry) -> bytes: ...


class NullApp:
    """No state machine: entries are only logged (standalone `gaia apus`)."""

    def apply(self, entry: Entry) -> None:
        pass

    def snapshot(self) -> bytes:
        return b""

    def restore(self, data: bytes) -> None:
        pass

    def reply(self, entry: Entry) -> bytes:
        return b""


@dataclass
class CoreConfig:
    replica_id: int
    group_id: str
    members: M.Config
    layout: LayoutConfig = field(default_factory=LayoutConfig)
    election_ticks: int = 10  # base election timeout
    heartbeat_ticks: int = 1
    retransmit_ticks: int = 3
    seed: int = 0
    compact_at: float = 0.75  # compact when the log is this full (entries or bytes)
    batch_events: int = 64
    pend_cap: int = 4096
    unsafe: int = 0  # fastpath.UNSAFE_*: a broken variant for checker tests
    snapshot_chunk: int = 0  # 0: as large as the mailbox allows


@dataclass
class Ready:
    """What happened since the last `ready()`."""

    writes: list[tuple[int, int, bytes]] = field(default_factory=list)
    committed: tuple[int, int] | None = None  # (first, last) newly committed indices
    view_changed: bool = False
    events: list[str] = field(default_factory=list)


@dataclass
class _Fetch:
    peer: int
    target: int  # the peer's last index when it promised
    asked: int = -1  # tick of the last Fetch sent


@dataclass
class _SnapIn:
    peer: int
    index: int
    total: int
    buf: bytearray = field(default_factory=bytearray)
    asked: int = -1


@njit(cache=True)
def _view_runs(lg64: np.ndarray, lo: int, hi: int, out: np.ndarray) -> int:
    """Runs (first index, view) of the log's views over lo..hi; returns how many."""
    n = 0
    prev = -1
    for i in range(lo, hi + 1):
        v = lgs.log_view(lg64, i)
        if v != prev:
            out[n, 0] = i
            out[n, 1] = v
            n += 1
            prev = v
    return n


@njit(cache=True)
def _log_bytes(lg64: np.ndarray, lo: int, hi: int) -> int:
    total = 0
    for i in range(lo, hi + 1):
        total += wire.entry_words(wire.entry_length(lg64, lgs.log_word(lg64, i))) * 8
    return total


@njit(cache=True)
def _persist(fa: fp.FastArrays) -> bool:
    return fp._persist(fa)


class Core:
    """One replica's protocol state. Not thread-safe: one owner polls and ticks it."""

    def __init__(self, cfg: CoreConfig, region: np.ndarray, log: LocalLog, ring: Ring,
                 storage: Storage, th: Any, outbox: Any = None, app: AppHooks | None = None,
                 mail_seq_start: int = 1, timing: bool = False) -> None:
        lay = cfg.layout
        self.cfg = cfg
        self.id = cfg.replica_id
        self.lay = lay
        self.log = log
        self.ring = ring
        self.storage = storage
        self.th = th
        self.outbox = outbox
        self.ob = outbox if outbox is not None else new_outbox(64, 1)
        self.app: AppHooks = app or NullApp()
        self.st, self.pr = fp.new_state(self.id, lay.max_members, storage.durable)
        self.st[fp.S_BATCH_EVENTS] = cfg.batch_events
        self.st[fp.S_UNSAFE] = cfg.unsafe
        self.st[fp.S_CAPTURE] = int(outbox is not None)
        self.st[fp.S_TIMING] = int(timing)
        scratch = np.zeros(lay.max_payload + 64, dtype=np.uint8)
        sm = np.zeros(128, dtype=np.uint8)
        self.fa = fp.FastArrays(
            self.st, self.pr, lay.array(), region, region.view(np.uint64), log.buf, log.w64,
            ring.seg, scratch, scratch.view(np.uint64), sm,
            sm.view(np.uint64), np.zeros((cfg.pend_cap, fp.PD_LEN), dtype=np.int64),
            storage.dbuf, storage.dmeta, np.zeros((fp.PH_LEN, fp.HIST_BUCKETS), np.int64))
        self.region64 = region.view(np.uint64)
        self.rng = random.Random(cfg.seed * 1000 + self.id)
        self.hs = HardState()
        self.base_config = cfg.members
        self.configs: list[tuple[int, M.Config]] = []
        self.config = cfg.members
        self.recovering = False
        self.recover_target = 0
        self.removed = False
        self.ticks = 0
        self.elapsed = 0
        self.timeout = self._new_timeout()
        self.hb_seen = -1
        self.promises: dict[int, M.Promise] = {}
        self.prevote_view = 0  # the view a pre-vote is running for (0: none)
        self.prevotes: set[int] = set()
        self.fetch: _Fetch | None = None
        self.snapshot: Snapshot | None = None
        self.snap_in: _SnapIn | None = None
        self.snap_offered: dict[int, int] = {}
        self.heard: dict[int, int] = {}  # leader: tick its ack counter last changed
        self.moved: dict[int, int] = {}  # leader: tick its acked index last advanced
        self.synced_at: dict[int, int] = {}  # leader: tick of the last Sync sent to it
        self.peer_commit: dict[int, int] = {}  # leader: commit index it last reported
        self.progress: dict[int, tuple[int, int]] = {}
        self.join_asked = -100
        self.asked_view: dict[int, int] = {}
        self.applied = 0
        self.mail_seq = mail_seq_start
        self.incarnation = mail_seq_start  # unique per run: tags this run's acks
        self.st[fp.S_INCARNATION] = mail_seq_start
        self.last_seq = [0] * lay.max_members
        self.mail_buf = np.zeros(lay.mail_slot_size, dtype=np.uint8)
        self.door = np.zeros(1, dtype=np.uint64)
        self._door_w = np.array([lay.doorbell(s) // 8 for s in range(lay.max_members)])
        self._mail_w = [[lay.mail_slot(s, k) // 8 for k in range(lay.mail_slots)]
                        for s in range(lay.max_members)]
        self._ready = Ready()
        self._committed_seen = 0

    # ---------------------------------------------------------------- properties
    @property
    def view(self) -> int:
        return int(self.st[fp.S_VIEW])

    @property
    def role(self) -> int:
        return int(self.st[fp.S_ROLE])

    @property
    def leader(self) -> int | None:
        lead = int(self.st[fp.S_LEADER])
        return lead if lead >= 0 and self.st[fp.S_NORMAL] else None

    @property
    def is_leader(self) -> bool:
        return self.role == fp.ROLE_LEADER and bool(self.st[fp.S_NORMAL])

    @property
    def normal(self) -> bool:
        return bool(self.st[fp.S_NORMAL])

    @property
    def commit(self) -> int:
        return int(self.st[fp.S_COMMIT])

    @property
    def last(self) -> int:
        return self.log.last

    @property
    def persisted(self) -> int:
        return int(self.st[fp.S_PERSISTED])

    def role_name(self) -> str:
        if self.removed or self.id not in self.config.members:
            return "removed"
        if self.role == fp.ROLE_LEADER:
            return "leader" if self.normal else "candidate"
        if self.role == fp.ROLE_CANDIDATE:
            return "candidate"
        if self.recovering:
            return "recovering"
        if not self.config.is_voter(self.id):
            return "learner"
        return "backup" if self.config.executing(self.id) else "standby"

    # ---------------------------------------------------------------- start
    def start(self, rec: Recovered) -> None:
        """Load what storage recovered; a fresh replica starts empty in view 0."""
        if rec.snapshot is not None:
            self._install_local(rec.snapshot)
        for r in rec.records:
            if int(r[wire.E_INDEX]) <= self.log.last:
                continue
            if int(r[wire.E_INDEX]) != self.log.last + 1:
                rec.lost_state = True
                break
            self.log.append_record(r)
        self.st[fp.S_PERSISTED] = self.log.last
        self._rebuild_configs()
        self.hs = HardState(rec.hard_state.view, rec.hard_state.voted_for)
        self.st[fp.S_VIEW] = self.hs.view
        self.st[fp.S_ROLE] = fp.ROLE_BACKUP
        if rec.lost_state or (not rec.fresh and not self.storage.durable):
            self.recovering = True
            self.note(f"recovering (state lost{': ' + rec.problem if rec.problem else ''})")
        elif rec.problem:
            self.note(rec.problem)
        if not self.storage.durable:
            self.storage.save_hard_state(self.hs)

    # ---------------------------------------------------------------- driving
    def poll(self) -> int:
        """Run the fast path once and handle what it flagged. Returns its flags."""
        flags = fp.poll_once(self.fa, self.th, self.ob)
        if flags & ~fp.EV_PROGRESS:
            self.handle(flags)
        return flags

    def handle(self, flags: int) -> None:
        """The slow path behind the fast path's flags (the runtime calls this too)."""
        if flags & fp.EV_MAIL:
            self._read_mail()
        if flags & fp.EV_HIGHER_VIEW:
            self._check_heartbeats()
        if flags & fp.EV_SLOW_ENTRY:
            self._slow_entry()
        if flags & fp.EV_ABANDONED:
            self.note("an abandoned input committed: stepping down")
            self._step_down(self.view)
        if flags & fp.EV_DISK_ERROR:
            raise GaiaError(f"replica {self.id}: writing the durable log failed",
                            "check the data directory's disk (space, permissions)")
        if flags & (fp.EV_LOG_FULL | fp.EV_COMMITTED):
            self._apply_committed()
        if flags & fp.EV_LOG_FULL:
            self.maybe_compact(force=True)
        if flags & fp.EV_NEED_SNAPSHOT:
            self._offer_snapshots()

    def tick(self) -> None:
        """Advance the logical clock by one tick."""
        self.ticks += 1
        self._read_mail()
        if self.role == fp.ROLE_LEADER and self.normal:
            self._leader_tick()
        elif self.role == fp.ROLE_CANDIDATE or self.role == fp.ROLE_LEADER:
            self._candidate_tick()
        else:
            self._backup_tick()
        if self.snap_in is not None and self.ticks - self.snap_in.asked >= \
                self.cfg.retransmit_ticks:
            self._pull_snapshot()
        self._apply_committed()
        self.maybe_compact()

    def ready(self) -> Ready:
        out = self._ready
        self._ready = Ready()
        if self.outbox is not None:
            out.writes = drain_outbox(self.outbox)
        if self.commit > self._committed_seen:
            out.committed = (self._committed_seen + 1, self.commit)
            self._committed_seen = self.commit
        return out

    def has_events(self) -> bool:
        return bool(self._ready.events) or self._ready.view_changed

    def note(self, text: str) -> None:
        self._ready.events.append(f"r{self.id} v{self.view}: {text}")

    # ---------------------------------------------------------------- proposals
    def propose(self, payload: bytes, kind: int = wire.K_APP) -> int:
        """Append an entry as leader (slow path; the hot path is the input ring)."""
        if not self.is_leader:
            raise NotLeaderError(self.id, self.leader)
        if len(payload) > self.lay.max_payload:
            raise GaiaError(f"entry of {len(payload)} bytes exceeds the maximum of "
                            f"{self.lay.max_payload}", "split it or raise max_payload")
        if self.log.last - self.commit >= int(self.log.w64[lgs.G_INDEX_CAP]) // 2:
            raise LogFullError(self.log.first, self.log.last)
        index = self.log.append(self.view, kind, payload)
        _persist(self.fa)
        return index

    def request(self, payload: bytes) -> int:
        """A request every backup answers before acking it (see `replies`)."""
        return self.propose(payload, wire.K_REQUEST)

    def replies(self, index: int) -> dict[int, bytes]:
        """Replies to request `index` found in our region (backups' reply slots)."""
        out = {}
        for p in self.config.members:
            if p == self.id:
                continue
            w = self.lay.reply(p) // 8
            if wire.blob_valid(self.region64, w, self.lay.reply_size) and \
                    int(self.region64[w + wire.B_KEY]) == index:
                n = int(self.region64[w + wire.B_LENKIND]) & 0xFFFFFFFF
                start = (w + wire.B_PAYLOAD) * 8
                out[p] = bytes(self.fa.region[start : start + n])
        return out

    def change_config(self, new: M.Config) -> int:
        """Propose a membership change (one at a time, after the view's NOOP committed)."""
        if not self.is_leader:
            raise NotLeaderError(self.id, self.leader)
        if self.commit < self.st[fp.S_VIEW_START] or \
                (self.configs and self.configs[-1][0] > self.commit):
            raise GaiaError("a membership change is still in progress",
                            "wait until the previous change committed and retry")
        index = self.propose(new.encode(), wire.K_CONFIG)
        self._set_config(new, index)
        return index

    # ---------------------------------------------------------------- config
    def _rebuild_configs(self) -> None:
        self.configs = []
        for i in range(self.log.first, self.log.last + 1):
            w = self.log.word(i)
            if wire.entry_kind(self.log.w64, w) == wire.K_CONFIG:
                self.configs.append((i, M.Config.decode(self.log.entry(i).payload)))
        self._use_config(self.configs[-1][1] if self.configs else self.base_config)

    def _set_config(self, cfg: M.Config, index: int) -> None:
        self.configs = [(i, c) for i, c in self.configs if i < index] + [(index, cfg)]
        self._use_config(cfg)

    def _use_config(self, cfg: M.Config) -> None:
        old = set(self.config.members)
        self.config = cfg
        for p in range(self.lay.max_members):
            self.pr[p, fp.P_VOTER] = int(cfg.is_voter(p))
            member = p in cfg.members and p != self.id
            if not member or (p not in old and self.is_leader):
                self.pr[p, fp.P_SENT] = 0
            self.pr[p, fp.P_MEMBER] = int(member)
        self.removed = self.id not in cfg.members

    def _config_at(self, index: int) -> M.Config:
        found = self.base_config
        for i, c in self.configs:
            if i <= index:
                found = c
        return found

    # ---------------------------------------------------------------- mailbox
    def _write(self, peer: int, offset: int, src: np.ndarray, start: int, length: int) -> None:
        fp.write(self.fa, self.th, self.ob, peer, offset, src, start, length)

    def _send(self, peer: int, msg: M.Message) -> None:
        payload = np.frombuffer(msg.encode(), dtype=np.uint8)
        if payload.size > self.lay.mail_payload:
            raise GaiaError(f"slow-path message of {payload.size} bytes exceeds the mailbox",
                            "raise mail_slot_size in the layout")
        seq = self.mail_seq
        self.mail_seq += 1
        n = wire.blob_build(self.mail_buf, self.mail_buf.view(np.uint64), 0, seq, msg.view,
                            msg.kind, payload, payload.size)
        self._write(peer, self.lay.mail_slot(self.id, seq), self.mail_buf, 0, n)
        self.door[0] = seq
        self._write(peer, self.lay.doorbell(self.id), self.door.view(np.uint8), 0, 8)
        fp.wake_peer(self.fa, self.th, self.ob, peer)  # a sleeping poller reads it now

    def _read_mail(self) -> None:
        lay = self.lay
        doors = self.region64[self._door_w]
        rang = np.nonzero(doors != self.pr[:, fp.P_DOORBELL].astype(np.uint64))[0]
        # nothing rang: every 8th tick look anyway (a doorbell that landed before its mail)
        for s in (range(lay.max_members) if self.ticks % 8 == 0 else rang.tolist()):
            if s == self.id:
                continue
            door = int(doors[s])
            got: list[tuple[int, int, int, bytes]] = []
            for w in self._mail_w[s]:
                if int(self.region64[w + wire.B_KEY]) <= self.last_seq[s]:
                    continue
                if not wire.blob_valid(self.region64, w, lay.mail_payload):
                    continue
                lk = int(self.region64[w + wire.B_LENKIND])
                start = (w + wire.B_PAYLOAD) * 8
                got.append((int(self.region64[w + wire.B_KEY]), lk >> 32,
                            int(self.region64[w + wire.B_VIEW]),
                            bytes(self.fa.region[start : start + (lk & 0xFFFFFFFF)])))
            self.pr[s, fp.P_DOORBELL] = door
            for seq, kind, view, payload in sorted(got):
                if seq <= self.last_seq[s]:
                    continue
                self.last_seq[s] = seq
                msg = M.decode(kind, view, payload)
                if msg is not None:
                    self._on_message(s, msg)

    def _on_message(self, src: int, msg: M.Message) -> None:
        if isinstance(msg, M.ViewReq):
            self._on_view_req(src, msg)
        elif isinstance(msg, M.Promise):
            self._on_promise(src, msg)
        elif isinstance(msg, M.Fetch):
            self._on_fetch(src, msg)
        elif isinstance(msg, M.Entries):
            self._on_entries(src, msg)
        elif isinstance(msg, M.Join):
            self._on_join(src, msg)
        elif isinstance(msg, M.Sync):
            self._on_sync(src, msg)
        elif isinstance(msg, M.SyncOk):
            self._on_sync_ok(src, msg)
        elif isinstance(msg, M.SnapOffer):
            self._on_snap_offer(src, msg)
        elif isinstance(msg, M.SnapPull):
            self._on_snap_pull(src, msg)
        elif isinstance(msg, M.SnapChunk):
            self._on_snap_chunk(src, msg)
        elif isinstance(msg, M.PreVote):
            self._on_prevote(src, msg)
        elif isinstance(msg, M.PreVoteReply):
            self._on_prevote_reply(src, msg)

    # ---------------------------------------------------------------- views
    def _new_timeout(self) -> int:
        e = self.cfg.election_ticks
        top = max((p for _, _, p in self.config.members.values()), default=1)
        mine = self.config.priority(self.id)
        return e + (top - mine) * e + self.rng.randrange(e)

    def _save_hs(self, view: int, voted_for: int) -> None:
        self.hs = HardState(view, voted_for)
        self.storage.save_hard_state(self.hs)
        if view != self.view:
            self._ready.view_changed = True
        self.st[fp.S_VIEW] = view

    def _step_down(self, view: int, leader: int = -1) -> None:
        """Become a backup of `view` (not yet synced)."""
        if self.role == fp.ROLE_LEADER and self.normal:
            fp.fail_pending(self.fa, fp.FAIL_VIEW_CHANGED)
        if view > self.view:
            self._save_hs(view, -1)
        self.st[fp.S_ROLE] = fp.ROLE_BACKUP
        self.st[fp.S_NORMAL] = 0
        self.st[fp.S_LEADER] = leader
        self.st[fp.S_SLOW_AT] = 0
        self.st[fp.S_HOLD_ACK] = 0
        self.promises = {}
        self.fetch = None
        self.prevote_view = 0
        self.elapsed = 0
        self.timeout = self._new_timeout()
        self._ready.view_changed = True

    def _eligible(self) -> bool:
        return (not self.recovering and not self.removed and self.config.is_voter(self.id)
                and self.config.priority(self.id) > 0)

    def _prevote(self) -> None:
        """Ask whether the voters miss the leader too before bumping the view (Raft's
        pre-vote): a replica cut off from the group never inflates its view, so when the
        partition heals it rejoins quietly instead of deposing a healthy leader."""
        self.elapsed = 0
        self.timeout = self._new_timeout()
        self.prevote_view = max(self.view, max(self.asked_view.values(), default=0)) + 1
        self.prevotes = {self.id}
        for p in self.config.voters():
            if p != self.id:
                self._send(p, M.PreVote(self.prevote_view))
        self._maybe_prevoted()

    def _repeat_prevote(self) -> None:
        """Voters that still heard the leader when we asked may miss it by now: ask them
        again soon rather than after a whole election timeout."""
        if self.prevote_view and self.elapsed and \
                self.elapsed % self.cfg.retransmit_ticks == 0:
            for p in self.config.voters():
                if p not in self.prevotes:
                    self._send(p, M.PreVote(self.prevote_view))

    def _on_prevote(self, src: int, msg: M.PreVote) -> None:
        if not self.config.is_voter(src):
            return
        heard = self.is_leader or (self.role == fp.ROLE_BACKUP and self.normal and
                                   self.elapsed < self.cfg.election_ticks)
        grant = msg.view > self.view and not heard and not self.recovering  # it would refuse
        self._send(src, M.PreVoteReply(msg.view, int(grant)))

    def _on_prevote_reply(self, src: int, msg: M.PreVoteReply) -> None:
        if msg.granted and msg.view == self.prevote_view and self.config.is_voter(src):
            self.prevotes.add(src)
            self._maybe_prevoted()

    def _maybe_prevoted(self) -> None:
        if self.prevote_view and len(self.prevotes) >= self.config.majority() and \
                self._eligible() and not self.is_leader:
            self.prevote_view = 0
            self._campaign()

    def _campaign(self) -> None:
        view = max(self.view, max(self.asked_view.values(), default=0)) + 1
        if self.role == fp.ROLE_LEADER and self.normal:
            fp.fail_pending(self.fa, fp.FAIL_VIEW_CHANGED)
        _persist(self.fa)
        self._save_hs(view, self.id)
        self.st[fp.S_ROLE] = fp.ROLE_CANDIDATE
        self.st[fp.S_NORMAL] = 0
        self.st[fp.S_LEADER] = -1
        self.st[fp.S_SLOW_AT] = 0
        self.st[fp.S_HOLD_ACK] = 0
        self.elapsed = 0
        self.timeout = self._new_timeout()
        self.fetch = None
        self.promises = {self.id: self._my_promise(view)}
        self.note("campaigns")
        self._ready.view_changed = True
        self._ask_votes()
        self._maybe_won()

    def _my_promise(self, view: int) -> M.Promise:
        return M.Promise(view, 1, self.log.view_of(self.persisted), self.persisted, self.commit)

    def _ask_votes(self) -> None:
        req = M.ViewReq(self.view, self.log.view_of(self.persisted), self.persisted,
                        self.commit)
        for p in self.config.voters():
            if p != self.id and p not in self.promises:
                self._send(p, req)

    def _on_view_req(self, src: int, msg: M.ViewReq) -> None:
        self.asked_view[src] = max(self.asked_view.get(src, 0), msg.view)
        if not self.config.is_voter(src):
            return
        if msg.view > self.view:
            self._step_down(msg.view)
        grant = (msg.view == self.view and self.hs.voted_for in (-1, src)
                 and self.role == fp.ROLE_BACKUP and not self.recovering
                 and self.config.is_voter(self.id))
        if grant:
            _persist(self.fa)
            if self.hs.voted_for != src:
                self._save_hs(self.view, src)
            self.elapsed = 0
            self._send(src, self._my_promise(self.view))
        else:
            self._send(src, M.Promise(self.view, 0))

    def _on_promise(self, src: int, msg: M.Promise) -> None:
        if msg.view > self.view:
            self._step_down(msg.view)
            return
        if msg.view != self.view or self.role != fp.ROLE_CANDIDATE:
            return
        if not msg.granted:
            self._retract(src)
        elif self.config.is_voter(src):
            self.promises[src] = msg
            self._maybe_won()

    def _retract(self, src: int) -> None:
        """`src` lost the log it promised with (it restarted without it): its promise no
        longer counts; if we were copying from it, choose again."""
        if self.promises.pop(src, None) is not None and self.fetch is not None and \
                self.fetch.peer == src:
            self.fetch = None
            self.note(f"r{src} lost its log: choosing again")
            self._maybe_won()

    def _maybe_won(self) -> None:
        if self.fetch is not None or len(self.promises) < self.config.majority():
            return
        best_id = max(self.promises, key=lambda p: (self.promises[p].last_view,
                                                    self.promises[p].last_index, p == self.id))
        best = self.promises[best_id]
        mine = self.promises[self.id]
        if (best.last_view, best.last_index) == (mine.last_view, mine.last_index):
            self._become_leader()
            return
        self.fetch = _Fetch(best_id, best.last_index)
        self.note(f"adopts the log of r{best_id} ({best.last_view}, {best.last_index})")
        self._ask_fetch()

    def _ask_fetch(self) -> None:
        assert self.fetch is not None
        self.fetch.asked = self.ticks
        self._send(self.fetch.peer, M.Fetch(self.view, max(self.commit, self.log.first - 1) + 1))

    def _on_fetch(self, src: int, msg: M.Fetch) -> None:
        if msg.view != self.view or self.hs.voted_for != src:
            return
        if self.recovering:
            self._send(src, M.Promise(self.view, 0))  # the log we promised with is gone
            return
        _persist(self.fa)
        if msg.start < self.log.first:
            self._send(src, M.Entries(self.view, msg.start, self.persisted, 0, 1, self.commit))
            self._offer_snapshot(src)
            return
        budget = self.lay.mail_payload - 64
        chunks = []
        i = msg.start
        while i <= self.persisted:
            rec = self.log.record(i).tobytes()
            if chunks and sum(map(len, chunks)) + len(rec) > budget:
                break
            chunks.append(rec)
            i += 1
        self._send(src, M.Entries(self.view, msg.start, self.persisted,
                                  int(i > self.persisted), 0, self.commit, b"".join(chunks)))

    def _on_entries(self, src: int, msg: M.Entries) -> None:
        f = self.fetch
        if msg.view != self.view or self.role != fp.ROLE_CANDIDATE or f is None or \
                f.peer != src or msg.need_snapshot or msg.start > self.log.last + 1:
            return  # stale, or a snapshot offer follows (the fetch resumes after it)
        if msg.last < self.commit:
            self._retract(src)  # shorter than what we know is committed: not its old log
            return
        covered = self._merge(split_records(msg.records, self.lay.max_payload), msg.start,
                              msg.commit)
        if msg.done and covered >= msg.last:
            self._cut_after(msg.last)
            self.fetch = None
            self._become_leader()
        elif covered >= msg.start:
            self._ask_fetch_from(covered + 1)

    def _ask_fetch_from(self, start: int) -> None:
        assert self.fetch is not None
        self.fetch.asked = self.ticks
        self._send(self.fetch.peer, M.Fetch(self.view, start))

    def _merge(self, records: list[np.ndarray], start: int, their_commit: int) -> int:
        """Take the best replica's records: keep our matching entries, cut at the first
        conflict, append the rest (so a matching entry is never dropped). Returns the
        last index now known to equal the sender's log."""
        covered = start - 1
        for r in records:
            i = int(r[wire.E_INDEX])
            if i != covered + 1 or i > self.log.last + 1:
                break
            covered = i
            if i < self.log.first:
                continue
            if i <= self.log.last:
                if self.log.view_of(i) == int(r[wire.E_VIEW]):
                    self._learn_commit(min(i, their_commit))
                    continue
                self._cut_after(i - 1)
            if lgs.log_reserve(self.log.w64, len(r)) < 0:
                self._apply_committed()
                self.maybe_compact(force=True)
                if lgs.log_reserve(self.log.w64, len(r)) < 0:
                    return i - 1  # no room yet: fetch the rest later
            self.log.append_record(r)
            self._learn_commit(min(i, their_commit))
            if wire.entry_kind(r, 0) == wire.K_CONFIG:
                self._set_config(M.Config.decode(self.log.entry(i).payload), i)
        _persist(self.fa)
        return covered

    def _learn_commit(self, index: int) -> None:
        """The peer we copy from knows `index` is committed (and we now hold it)."""
        if index > self.commit:
            self.st[fp.S_COMMIT] = index
            self.log.set_commit(index)

    def _cut_after(self, keep: int) -> None:
        """Drop our entries after `keep` (uncommitted by construction), durably."""
        if keep >= self.log.last:
            return
        keep = max(keep, self.log.first - 1)
        assert keep >= self.commit, "cutting a committed entry"
        if self.storage.durable and keep < self.persisted:
            self.storage.truncate(_log_bytes(self.log.w64, self.log.first, keep))
        self.log.truncate(keep)
        self.st[fp.S_PERSISTED] = min(self.persisted, keep)
        if self.configs and self.configs[-1][0] > keep:
            self.configs = [(i, c) for i, c in self.configs if i <= keep]
            self._use_config(self.configs[-1][1] if self.configs else self.base_config)

    def _become_leader(self) -> None:
        self.st[fp.S_ROLE] = fp.ROLE_LEADER
        self.st[fp.S_LEADER] = self.id
        self.st[fp.S_NORMAL] = 1
        self.st[fp.S_SLOW_AT] = 0
        self.st[fp.S_HOLD_ACK] = 0
        self.st[fp.S_TAKE] = 1
        if lgs.log_reserve(self.log.w64, wire.entry_words(0)) < 0:
            self._apply_committed()
            self.maybe_compact(force=True)
        index = self.log.append(self.view, wire.K_NOOP, b"")
        self.st[fp.S_VIEW_START] = index
        _persist(self.fa)
        self.pr[:, fp.P_SENT] = 0
        self.pr[:, fp.P_ACKED] = 0
        self.pr[:, fp.P_NEED] = 0
        self.heard = {p: self.ticks for p in self.config.members}
        self.moved = dict(self.heard)
        self.progress = {}
        self.note(f"leads from index {index}")
        self._ready.view_changed = True
        for p, promise in self.promises.items():
            if p != self.id:
                self._sync(p, promise.commit)
        self.promises = {}
        self.st[fp.S_HB_DUE] = 1

    # ---------------------------------------------------------------- sync
    def _sync(self, peer: int, their_commit: int) -> None:
        """Tell `peer` our log's views after its committed prefix (or offer a snapshot)."""
        if peer not in self.config.members or peer == self.id:
            return
        self.synced_at[peer] = self.ticks
        self.peer_commit[peer] = their_commit
        base = min(their_commit, self.log.last)
        if base < self.log.first - 1:
            self._offer_snapshot(peer)
            return
        out = np.zeros((max(1, self.log.last - base), 2), dtype=np.int64)
        n = _view_runs(self.log.w64, base + 1, self.log.last, out) if self.log.last > base else 0
        runs = [(int(a), int(b)) for a, b in out[:n]]
        limit = (self.lay.mail_payload - 64) // 16
        if len(runs) > limit:  # too many views to describe: fall back to our commit
            base = max(self.commit, base)
            n = _view_runs(self.log.w64, base + 1, self.log.last, out)
            runs = [(int(a), int(b)) for a, b in out[: min(n, limit)]]
        self._send(peer, M.Sync(self.view, base, self.log.last, self.commit, runs))

    def _on_join(self, src: int, msg: M.Join) -> None:
        if msg.view > self.view:
            self._step_down(msg.view)
            return
        if self.is_leader and msg.view == self.view and src in self.config.members:
            # What it really holds now: a restarted backup's earlier acks no longer count.
            self.pr[src, fp.P_INCARNATION] = msg.incarnation
            self.pr[src, fp.P_ACKED] = min(int(self.pr[src, fp.P_ACKED]), msg.last_index)
            self.pr[src, fp.P_SENT] = 0
            self._sync(src, msg.commit)

    def _on_sync(self, src: int, msg: M.Sync) -> None:
        if msg.view < self.view or (msg.view == self.view and self.role == fp.ROLE_LEADER):
            return
        if msg.view > self.view or self.role == fp.ROLE_CANDIDATE:
            self._step_down(msg.view, src)
        if self.snap_in is not None:
            return
        if msg.base > self.log.last:
            self.join_asked = -100
            self._join(src)  # it thinks we hold more than we do
            return
        match = self._matching_prefix(msg)
        self._cut_after(match)
        _persist(self.fa)
        self.st[fp.S_LEADER] = src
        self.st[fp.S_NORMAL] = 1
        self.st[fp.S_ROLE] = fp.ROLE_BACKUP
        self.st[fp.S_ACKED] = -1
        self.st[fp.S_SLOW_AT] = 0
        self.st[fp.S_HOLD_ACK] = 0
        self.elapsed = 0
        if self.recovering:
            self.recover_target = max(self.recover_target, msg.commit)
        self.note(f"synced with r{src} at {match}")
        self._ready.view_changed = True
        self._send(src, M.SyncOk(self.view, match, self.incarnation))

    def _matching_prefix(self, msg: M.Sync) -> int:
        """The end of our longest prefix equal to the leader's log. Beyond msg.last the
        leader's log holds only entries of its own view (it appends nothing else), so our
        entries of that view there are its entries too; committed ones always match."""
        start = max(msg.base, self.commit, self.log.first - 1) + 1
        for j in range(start, self.log.last + 1):
            theirs = msg.view_at(j) if j <= msg.last else msg.view
            if self.log.view_of(j) != theirs:
                return j - 1
        return self.log.last

    def _on_sync_ok(self, src: int, msg: M.SyncOk) -> None:
        if msg.view != self.view or not self.is_leader or src not in self.config.members:
            return
        if msg.match > self.log.last:
            return
        self.pr[src, fp.P_INCARNATION] = msg.incarnation
        self.pr[src, fp.P_ACKED] = msg.match
        self.pr[src, fp.P_SENT] = msg.match + 1
        self.pr[src, fp.P_NEED] = 0
        self.heard[src] = self.ticks

    # ---------------------------------------------------------------- heartbeats
    def _heartbeat_of(self, s: int) -> np.ndarray | None:
        hb = np.zeros(wire.HB_WORDS, dtype=np.uint64)
        if wire.small_read(self.region64, self.lay.hb(s) // 8, wire.HB_WORDS, hb):
            return hb
        return None

    def _check_heartbeats(self) -> None:
        """A leader of a higher view (or of ours, while we wait for one) exists."""
        best = None
        for s in range(self.lay.max_members):
            if s == self.id:
                continue
            hb = self._heartbeat_of(s)
            if hb is None:
                continue
            v = int(hb[wire.H_VIEW])
            waiting = v == self.view and not self.normal and self.role != fp.ROLE_LEADER
            if (v > self.view or waiting) and (best is None or v > best[0]):
                best = (v, s)
        if best is None:
            return
        v, s = best
        if v > self.view or int(self.st[fp.S_LEADER]) != s or self.role != fp.ROLE_BACKUP:
            self._step_down(v, s)
        self._join(s)

    def _join(self, leader: int) -> None:
        if self.ticks - self.join_asked < self.cfg.retransmit_ticks:
            return
        self.join_asked = self.ticks
        self._send(leader, M.Join(self.view, self.commit, self.log.last, self.log.last_view(),
                                  self.incarnation))

    # ---------------------------------------------------------------- ticks
    def _leader_tick(self) -> None:
        if self.ticks % self.cfg.heartbeat_ticks == 0:
            self.st[fp.S_HB_DUE] = 1
        live = 1 if self.config.is_voter(self.id) else 0
        for p in self.config.members:
            if p == self.id:
                continue
            acked = int(self.pr[p, fp.P_ACKED])
            counter = int(self.pr[p, fp.P_ACK_COUNTER])
            if self.progress.get(p, (-1, -1))[1] != counter:
                self.heard[p] = self.ticks
            if self.progress.get(p, (-1, -1))[0] != acked:
                self.moved[p] = self.ticks
            self.progress[p] = (acked, counter)
            if self.config.is_voter(p) and \
                    self.ticks - self.heard.get(p, self.ticks) < 2 * self.cfg.election_ticks:
                live += 1
            sent = int(self.pr[p, fp.P_SENT])
            if sent > acked + 1 and \
                    self.ticks - self.moved.get(p, self.ticks) >= self.cfg.retransmit_ticks:
                self.pr[p, fp.P_SENT] = acked + 1  # go back: a write was lost
                self.moved[p] = self.ticks
            if self.pr[p, fp.P_NEED]:
                self._offer_snapshot(p)
            elif sent == 0 and self.ticks - self.synced_at.get(p, -100) >= \
                    4 * self.cfg.retransmit_ticks:
                self._sync(p, self.peer_commit.get(p, 0))  # its SyncOk (or our Sync) got lost
        if live < self.config.majority():
            self.note("lost contact with a majority: steps down")
            self._step_down(self.view)
        if self.removed and (not self.configs or self.commit >= self.configs[-1][0]):
            self.note("removed from the group: steps down")
            self._step_down(self.view)

    def _candidate_tick(self) -> None:
        self.elapsed += 1
        self._check_heartbeats()  # another replica may have won our view
        if self.role != fp.ROLE_CANDIDATE:
            return
        self._repeat_prevote()
        if self.elapsed >= self.timeout:
            if self._eligible():
                self._prevote()
            else:
                self._step_down(self.view)
            return
        if self.fetch is not None:
            if self.ticks - self.fetch.asked >= self.cfg.retransmit_ticks:
                self._ask_fetch_from(self.log.last + 1 if self.log.last >= self.commit
                                     else self.commit + 1)
        elif self.elapsed % self.cfg.retransmit_ticks == 0:
            self._ask_votes()

    def _backup_tick(self) -> None:
        seen = int(self.st[fp.S_HB_SEEN])
        lead = int(self.st[fp.S_LEADER])
        if not self.normal and lead >= 0:
            hb = self._heartbeat_of(lead)
            if hb is not None and int(hb[wire.H_VIEW]) == self.view:
                seen = int(hb[wire.H_COUNTER])
        if seen != self.hb_seen:
            self.hb_seen = seen
            self.elapsed = 0
            self.prevote_view = 0  # the leader is alive after all
        else:
            self.elapsed += 1
            self._repeat_prevote()
        if not self.normal:
            self._check_heartbeats()
            lead = int(self.st[fp.S_LEADER])
            if lead >= 0 and not self.normal:
                self._join(lead)
        elif self.recovering and self.persisted >= self.recover_target:
            self.recovering = False
            self.note(f"recovered at index {self.persisted}")
        if self.elapsed >= self.timeout:
            if self._eligible():
                self._prevote()
            elif not self.normal:
                self._nudge_stale_leaders()

    def _nudge_stale_leaders(self) -> None:
        """We cannot campaign (recovering, learner, priority 0) and no leader of our view
        shows up: tell leaders of older views about our view, so they step down and the
        voters elect a leader we can join."""
        self.elapsed = 0
        for s in range(self.lay.max_members):
            hb = self._heartbeat_of(s) if s != self.id else None
            if hb is not None and int(hb[wire.H_VIEW]) < self.view:
                self.join_asked = -100
                self._join(s)

    # ---------------------------------------------------------------- slow entries
    def _slow_entry(self) -> None:
        """A backup accepted a CONFIG or REQUEST entry: act on it, then let acks go."""
        i = int(self.st[fp.S_SLOW_AT])
        if i == 0 or i > self.log.last:
            self.st[fp.S_SLOW_AT] = 0
            self.st[fp.S_HOLD_ACK] = 0
            return
        entry = self.log.entry(i)
        if entry.kind == wire.K_CONFIG:
            self._set_config(M.Config.decode(entry.payload), i)
        elif entry.kind == wire.K_REQUEST:
            data = b""
            if self.config.executing(self.id):
                data = self.app.reply(entry)
            data = data[: self.lay.reply_size]
            buf = np.zeros(self.lay.reply_slot_size, dtype=np.uint8)
            src = np.frombuffer(data, dtype=np.uint8) if data else np.zeros(1, np.uint8)
            n = wire.blob_build(buf, buf.view(np.uint64), 0, i, self.view, 0, src, len(data))
            self._write(int(self.st[fp.S_LEADER]), self.lay.reply(self.id), buf, 0, n)
        self.st[fp.S_SLOW_AT] = 0
        self.st[fp.S_HOLD_ACK] = 0

    # ---------------------------------------------------------------- apply, compact
    def _apply_committed(self) -> None:
        upto = min(self.commit, self.log.last)
        if upto <= self.applied:
            return
        if self.config.executing(self.id) and not isinstance(self.app, NullApp):
            for i in range(max(self.applied + 1, self.log.first), upto + 1):
                self.app.apply(self.log.entry(i))
        self.applied = upto

    def maybe_compact(self, force: bool = False) -> None:
        """Snapshot the application and drop applied entries when the log fills up."""
        log = self.log
        count = log.last - log.first + 1
        cap = int(log.w64[lgs.G_INDEX_CAP])
        used = lgs.log_used_words(log.w64)
        arena = int(log.w64[lgs.G_ARENA_WORDS])
        full = count >= cap * self.cfg.compact_at or used >= arena * self.cfg.compact_at
        if not (full or force):
            return
        upto = self.applied
        reader = log.min_reader()
        if reader >= 0:
            upto = min(upto, reader)
        if upto < log.first:
            return
        snap = Snapshot(upto, log.view_of(upto), self._config_at(upto).to_dict(),
                        self.app.snapshot() if self.config.executing(self.id) else b"")
        self.storage.save_snapshot(snap)
        self.snapshot = snap
        rest = [log.record(i).copy() for i in range(upto + 1, self.persisted + 1)]
        log.compact(upto)
        self.base_config = self._config_at(upto)
        self.configs = [(i, c) for i, c in self.configs if i > upto]
        if self.storage.durable:
            self.storage.rewrite(upto, snap.view, rest)
        self.st[fp.S_TAKE] = 1
        self.note(f"compacted the log up to {upto}")

    # ---------------------------------------------------------------- snapshots
    def _install_local(self, snap: Snapshot) -> None:
        if self.log.first <= snap.index <= self.log.last and \
                self.log.view_of(snap.index) == snap.view:
            self.log.compact(snap.index)  # our entries after it match: keep them
        else:
            self.log.reset(snap.index, snap.view)
        self.snapshot = snap
        self.base_config = M.Config.from_dict(snap.config)
        self.configs = []
        self._use_config(self.base_config)
        self.app.restore(snap.data)
        self.applied = snap.index
        if snap.index > self.commit:
            self.st[fp.S_COMMIT] = snap.index
        self.log.set_commit(self.commit)
        self.st[fp.S_PERSISTED] = max(snap.index, min(self.persisted, self.log.last))

    def _offer_snapshots(self) -> None:
        for p in range(self.lay.max_members):
            if self.pr[p, fp.P_NEED]:
                self._offer_snapshot(p)

    def _offer_snapshot(self, peer: int) -> None:
        if self.snapshot is None or self.ticks - self.snap_offered.get(peer, -100) < \
                self.cfg.retransmit_ticks:
            return
        self.snap_offered[peer] = self.ticks
        raw = encode_snapshot(self.snapshot, self.cfg.group_id)
        self._send(peer, M.SnapOffer(self.view, self.snapshot.index, self.snapshot.view,
                                     len(raw)))

    def _on_snap_offer(self, src: int, msg: M.SnapOffer) -> None:
        if msg.view < self.view:
            return
        if msg.index <= self.commit:
            if self.role == fp.ROLE_BACKUP and msg.view == self.view:
                self._join(src)  # it does not know what we hold: tell it
            return
        if self.snap_in is not None and self.snap_in.index >= msg.index:
            return
        self.snap_in = _SnapIn(src, msg.index, msg.size)
        self._pull_snapshot()

    def _pull_snapshot(self) -> None:
        s = self.snap_in
        assert s is not None
        s.asked = self.ticks
        self._send(s.peer, M.SnapPull(self.view, s.index, len(s.buf)))

    def _on_snap_pull(self, src: int, msg: M.SnapPull) -> None:
        if self.snapshot is None or self.snapshot.index != msg.index:
            return
        raw = encode_snapshot(self.snapshot, self.cfg.group_id)
        size = self.cfg.snapshot_chunk or (self.lay.mail_payload - 64)
        part = raw[msg.offset : msg.offset + size]
        self._send(src, M.SnapChunk(self.view, msg.index, msg.offset, len(raw), part))

    def _on_snap_chunk(self, src: int, msg: M.SnapChunk) -> None:
        s = self.snap_in
        if s is None or s.peer != src or s.index != msg.index or msg.offset != len(s.buf):
            return
        s.buf += msg.data
        if len(s.buf) < msg.total:
            self._pull_snapshot()
            return
        self.snap_in = None
        snap = decode_snapshot(bytes(s.buf), self.cfg.group_id, f"snapshot from r{src}")
        if snap is None or snap.index <= self.commit:
            return
        self.storage.save_snapshot(snap)
        self._install_local(snap)
        if self.storage.durable:
            rest = [self.log.record(i).copy() for i in range(snap.index + 1, self.persisted + 1)]
            self.storage.rewrite(snap.index, snap.view, rest)
        self.note(f"installed a snapshot at {snap.index} from r{src}")
        if self.fetch is not None:
            self._ask_fetch_from(self.log.last + 1)
        elif self.role == fp.ROLE_BACKUP:
            self.join_asked = -100
            self.st[fp.S_NORMAL] = 0
            self._join(src)


class NotLeaderError(GaiaError):
    def __init__(self, replica: int, leader: int | None) -> None:
        where = f"replica {leader}" if leader is not None else "no replica right now"
        super().__init__(f"replica {replica} is not the leader (the leader is {where})",
                         "send proposals to the leader (see `gaia status`)")
        self.leader = leader


def split_records(raw: bytes, max_payload: int) -> list[np.ndarray]:
    """Back-to-back wire records -> validated uint64 arrays (stops at a bad one)."""
    if not raw:
        return []
    w64 = np.frombuffer(raw[: len(raw) // 8 * 8], dtype=np.uint64).copy()
    out = []
    w = 0
    while w < w64.size and wire.entry_valid(w64, w, max_payload):
        n = wire.entry_words(wire.entry_length(w64, w))
        out.append(w64[w : w + n].copy())
        w += n
    return out


def new_outbox(nbytes: int = 1 << 20, nwrites: int = 4096) -> tuple:
    """The simulator's write handle for `fastpath.outbox_write`."""
    return (np.zeros(nbytes, dtype=np.uint8), np.zeros((nwrites, 4), dtype=np.int64),
            np.zeros(2, dtype=np.int64))


def drain_outbox(ob: tuple) -> list[tuple[int, int, bytes]]:
    data, meta, count = ob
    out = [(int(meta[k, 0]), int(meta[k, 1]),
            data[int(meta[k, 2]) : int(meta[k, 2] + meta[k, 3])].tobytes())
           for k in range(int(count[0]))]
    count[0] = 0
    return out
