"""A deterministic, seeded simulator for APUS: the real core and fast path, a fake network.

Each simulated replica is a real `Core` (with the numba fast path) over its own region,
log, input ring and storage; its writes go to an outbox instead of a transport. The
network is the set of writes in flight: the simulator delivers them in any order, drops,
duplicates and delays them, partitions replicas, crashes and restarts them (with their
durable state, or — memory mode — without their log), and replays old writes of a
deposed leader ("a late write from an old view"). Every step is followed by the checks:

  agreement     no two different entries are ever committed at one index
  one leader    at most one replica leads each view
  completeness  a new leader's log holds every entry committed before (so a committed
                entry is never lost across crashes; in memory mode as long as at most f
                replicas have lost their memory at a time, the mode's promise)
  state         each replica's applied state equals the committed prefix (snapshots and
                state transfer included)
  acked         every proposal a client saw committed is the entry at its index
and, at the end, `settle()` heals everything and checks progress: a new proposal commits
and every replica reaches it.

Same seed, same schedule, same result: failures are replayable from their seed.
"""

from __future__ import annotations

import hashlib
import random
import struct
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from gaia.apus import fastpath as fp
from gaia.apus import messages as M
from gaia.apus import ringio, wire
from gaia.apus.core import Core, CoreConfig, new_outbox
from gaia.apus.layout import LayoutConfig, init_region
from gaia.apus.logstore import Entry, LocalLog, LogConfig
from gaia.apus.messages import Config
from gaia.apus.storage import MemoryStorage, SimStorage, Storage
from gaia.apus.transport.handle import KIND_SHM, new_handle
from gaia.errors import GaiaError
from gaia.intercept import ring_layout as RL
from gaia.intercept.events import decode_batch

SMALL_LAYOUT = LayoutConfig(max_members=4, ring_slots=4, max_payload=96, reply_size=32,
                            mail_slots=4, mail_slot_size=2048)
SMALL_LOG = LogConfig(index_cap=16, arena_bytes=4096)
WIDE_LAYOUT = LayoutConfig(max_members=8, ring_slots=4, max_payload=96, reply_size=32,
                           mail_slots=4, mail_slot_size=2048)  # up to 8 replicas
SMALL_RING = (8, 128)  # input ring: slots, slot size (max event 64 bytes)


class Violation(AssertionError):
    """An invariant failed; the message names the seed and step to replay it."""


def chain(prev: bytes, entry: Entry) -> bytes:
    return hashlib.blake2b(prev + struct.pack("<qq", entry.index, entry.kind) + entry.payload,
                           digest_size=16).digest()


class ChainApp:
    """The simulated state machine: a hash chain over the applied entries."""

    def __init__(self) -> None:
        self.applied = 0
        self.digest = b""

    def apply(self, entry: Entry) -> None:
        assert entry.index == self.applied + 1, (entry.index, self.applied)
        self.digest = chain(self.digest, entry)
        self.applied = entry.index

    def snapshot(self) -> bytes:
        return struct.pack("<q", self.applied) + self.digest

    def restore(self, data: bytes) -> None:
        self.applied = struct.unpack_from("<q", data)[0] if data else 0
        self.digest = data[8:] if data else b""

    def reply(self, entry: Entry) -> bytes:
        return b"ok:" + entry.payload[:16]


@dataclass
class SimConfig:
    replicas: int = 3
    durability: str = "memory"
    seed: int = 0
    steps: int = 120
    layout: LayoutConfig = SMALL_LAYOUT
    log: LogConfig = SMALL_LOG
    election_ticks: int = 3
    unsafe: int = 0
    # action weights
    w_deliver: int = 40
    w_drop: int = 2
    w_duplicate: int = 2
    w_poll: int = 30
    w_tick: int = 12
    w_propose: int = 14
    w_request: int = 1
    w_crash: int = 2
    w_restart: int = 2
    w_partition: int = 2
    w_heal: int = 2
    w_late: int = 2
    w_round: int = 6  # a whole round: everyone polls, all writes land, everyone ticks
    torn_tail: bool = True
    members: Config | None = None  # default: every replica a voter of priority 1


@dataclass
class Write:
    src: int
    dst: int
    offset: int
    data: bytes
    view: int


class Node:
    """One simulated replica process plus its storage, which outlives crashes."""

    def __init__(self, sim: Simulator, rid: int, storage: Storage, incarnation: int) -> None:
        cfg = sim.cfg
        self.id = rid
        self.region = np.zeros(cfg.layout.region_size, dtype=np.uint8)
        init_region(self.region, cfg.layout, sim.group, rid)
        self.log = LocalLog.create(cfg.log, sim.group, rid)
        self.ring = ringio.private_ring(rid, *SMALL_RING)
        self.storage = storage
        self.outbox = new_outbox(1 << 16, 512)
        self.app = ChainApp()
        core_cfg = CoreConfig(rid, sim.group, sim.members, cfg.layout,
                              election_ticks=cfg.election_ticks, heartbeat_ticks=1,
                              retransmit_ticks=2, seed=cfg.seed, unsafe=cfg.unsafe,
                              batch_events=4, pend_cap=16)
        self.core = Core(core_cfg, self.region, self.log, self.ring, storage, sim.handle,
                         self.outbox, app=self.app, mail_seq_start=incarnation)
        self.core.start(storage.load(cfg.layout.max_payload))
        self.alive = True
        self.leading = False  # the completeness check ran for its current leadership
        self.checked = self.core.commit  # committed entries already checked
        self.tickets: dict[int, bytes] = {}  # ring ticket -> payload, awaiting outcome
        self.decided: dict[int, tuple[int, int]] = {}  # ring ticket -> (status, index)
        self.decisions_seen = 0


class Simulator:
    def __init__(self, cfg: SimConfig) -> None:
        self.cfg = cfg
        self.rng = random.Random(cfg.seed)
        self.group = f"{cfg.seed:032x}"
        self.members = cfg.members or Config({i: (True, True, 1) for i in range(cfg.replicas)})
        self.f = (cfg.replicas - 1) // 2
        # never used for writing: the replicas' writes are captured in their outboxes
        self.handle = new_handle(KIND_SHM, 0, cfg.layout.region_size, cfg.layout.max_members)
        self.incarnations = 0
        self.nodes: list[Node] = [self._boot(i, self._new_storage(i))
                                  for i in range(cfg.replicas)]
        self.inflight: list[Write] = []
        self.history: list[Write] = []
        self.cut: set[frozenset[int]] = set()
        self.committed: dict[int, tuple[int, int, bytes]] = {}
        self.digests: dict[int, bytes] = {0: b""}
        self.leaders: dict[int, int] = {}
        self.acked: dict[int, bytes] = {}
        self.proposals = 0
        self.step_no = 0
        self.trace: list[str] = []
        self.log_events = False
        self.lost_memory: set[int] = set()  # memory mode: down or still recovering
        self._menu = self._actions()
        self._total = sum(w for w, _ in self._menu)

    # ------------------------------------------------------------------ plumbing
    def _new_storage(self, rid: int) -> Storage:
        if self.cfg.durability == "fsync":
            return SimStorage(self.group, rid, capacity=1 << 18)
        return MemoryStorage(self.group, rid)

    def _boot(self, rid: int, storage: Storage) -> Node:
        self.incarnations += 1
        return Node(self, rid, storage, self.incarnations << 32)

    def fail(self, what: str) -> None:
        raise Violation(f"seed {self.cfg.seed} step {self.step_no} "
                        f"({self.cfg.durability}, {self.cfg.replicas} replicas): {what}")

    def _connected(self, a: int, b: int) -> bool:
        return frozenset((a, b)) not in self.cut

    def _collect(self, node: Node) -> None:
        if node.outbox[2][0] == 0 and not node.core.has_events():
            return
        ready = node.core.ready()
        view = node.core.view
        for dst, offset, data in ready.writes:
            w = Write(node.id, dst, offset, data, view)
            if dst == node.id:
                node.region[offset : offset + len(data)] = np.frombuffer(data, np.uint8)
            elif self._connected(node.id, dst):
                self.inflight.append(w)
        if self.log_events:
            self.trace.extend(ready.events)

    def _apply(self, w: Write) -> None:
        node = self.nodes[w.dst]
        if node.alive and self._connected(w.src, w.dst):
            node.region[w.offset : w.offset + len(w.data)] = np.frombuffer(w.data, np.uint8)
            self.history.append(w)
            if len(self.history) > 400:
                del self.history[:100]

    # ------------------------------------------------------------------ actions
    def deliver(self, k: int | None = None, keep: bool = False) -> None:
        if not self.inflight:
            return
        k = self.rng.randrange(len(self.inflight)) if k is None else k
        w = self.inflight[k] if keep else self.inflight.pop(k)
        self._apply(w)

    def drop(self) -> None:
        if self.inflight:
            self.inflight.pop(self.rng.randrange(len(self.inflight)))

    def poll(self, rid: int) -> None:
        node = self.nodes[rid]
        if node.alive:
            node.core.poll()
            self._collect(node)

    def tick(self, rid: int) -> None:
        node = self.nodes[rid]
        if node.alive:
            node.core.tick()
            self._collect(node)

    def propose(self, rid: int, payload: bytes | None = None) -> int:
        """A local client writes an event into replica rid's input ring."""
        node = self.nodes[rid]
        if not node.alive:
            return -1
        self.proposals += 1
        payload = payload or f"p{self.proposals}@{rid}".encode()
        t = ringio.try_produce(node.ring, payload)
        if t >= 0:
            node.tickets[t] = payload
        return t

    def request(self, rid: int) -> None:
        node = self.nodes[rid]
        if node.alive and node.core.is_leader:
            try:
                node.core.request(f"q{self.step_no}".encode())
            except GaiaError:
                pass  # not the leader any more, or the log is busy: a client retries
            self._collect(node)

    def add_node(self) -> Node:
        """Start a fresh replica that knows the group's current membership plus itself as
        a learner; it joins once the leader's config entry names it (membership change)."""
        rid = len(self.nodes)
        leader = self.leader()
        current = leader.core.config if leader else self.members
        saved = self.members
        self.members = M.Config({**current.members, rid: (False, True, 1)})
        node = self._boot(rid, self._new_storage(rid))
        self.members = saved
        self.nodes.append(node)
        self._note(f"add r{rid}")
        return node

    def crash(self, rid: int) -> None:
        node = self.nodes[rid]
        if not node.alive:
            return
        if self.cfg.durability == "memory":
            if len(self.lost_memory | {rid}) > self.f:
                return  # the mode's promise only covers f replicas losing memory
            self.lost_memory.add(rid)
        node.alive = False
        if isinstance(node.storage, SimStorage):
            torn = self.rng.randrange(0, 200) if self.cfg.torn_tail else 0
            node.storage.crash(torn)
        self._note(f"crash r{rid}")

    def restart(self, rid: int) -> None:
        old = self.nodes[rid]
        if old.alive:
            return
        node = self._boot(rid, old.storage)
        self.nodes[rid] = node
        if node.core.recovering and self.cfg.durability == "fsync":
            self.lost_memory.add(rid)
        self._note(f"restart r{rid}{' (recovering)' if node.core.recovering else ''}")

    def partition(self) -> None:
        ids = list(range(len(self.nodes)))
        self.rng.shuffle(ids)
        side = set(ids[: self.rng.randrange(1, len(ids))])
        for a in side:
            for b in set(ids) - side:
                self.cut.add(frozenset((a, b)))
        self._note(f"partition {sorted(side)}")

    def heal(self) -> None:
        self.cut.clear()

    def late_write(self) -> None:
        """Re-deliver an old write from a replica whose view has since been overtaken."""
        top = max(n.core.view for n in self.nodes if n.alive) if any(
            n.alive for n in self.nodes) else 0
        stale = [w for w in self.history if w.view < top]
        if stale:
            w = stale[self.rng.randrange(len(stale))]
            self._apply(Write(w.src, w.dst, w.offset, w.data, w.view))

    def _note(self, text: str) -> None:
        if self.log_events:
            self.trace.append(f"-- {text}")

    # ------------------------------------------------------------------ schedule
    def _actions(self) -> list[tuple[int, Callable[[int], object]]]:
        c = self.cfg
        return [
            (c.w_deliver, lambda n: self.deliver()),
            (c.w_drop, lambda n: self.drop()),
            (c.w_duplicate, lambda n: self.deliver(keep=True)),
            (c.w_poll, self.poll),
            (c.w_tick, self.tick),
            (c.w_propose, lambda n: self.propose(self._leader_or(n))),
            (c.w_request, self.request),
            (c.w_crash, self.crash),
            (c.w_restart, self.restart),
            (c.w_partition, lambda n: self.partition()),
            (c.w_heal, lambda n: self.heal()),
            (c.w_late, lambda n: self.late_write()),
            (c.w_round, lambda n: self.round()),
        ]

    def random_step(self) -> None:
        n = self.rng.randrange(len(self.nodes))
        pick = self.rng.randrange(self._total)
        for weight, action in self._menu:
            if pick < weight:
                action(n)
                break
            pick -= weight
        self.step_no += 1
        self.check()

    def _leader_or(self, n: int) -> int:
        for node in self.nodes:
            if node.alive and node.core.is_leader and self.rng.random() < 0.8:
                return node.id
        return n

    def run(self) -> None:
        self.bootstrap()
        for _ in range(self.cfg.steps):
            self.random_step()
        self.settle()

    def bootstrap(self, max_rounds: int = 100) -> None:
        """Rounds until a leader's first entry commits (so schedules start in the normal
        case; elections from scratch are covered by settle() after crashes)."""
        for _ in range(max_rounds):
            self.round()
            leader = self.leader()
            if leader is not None and leader.core.commit >= leader.core.st[fp.S_VIEW_START]:
                return
        self.fail(f"no leader after {max_rounds} rounds: {self.describe()}")

    def round(self) -> None:
        """Every live replica polls, every write in flight lands, everyone ticks."""
        for node in self.nodes:
            self.poll(node.id)
        while self.inflight:
            self.deliver(0)
        for node in self.nodes:
            self.poll(node.id)
        while self.inflight:
            self.deliver(0)
        for node in self.nodes:
            self.tick(node.id)
        self.check()

    def settle(self, max_rounds: int = 400) -> int:
        """Heal, restart everyone, and require progress: a new proposal commits on every
        replica. Returns its index."""
        self.heal()
        for node in self.nodes:
            if not node.alive:
                self.restart(node.id)
        ticket = -1
        target = -1
        for _ in range(max_rounds):
            self.round()
            leader = self.leader()
            if leader is not None and ticket < 0 and leader.core.commit >= \
                    leader.core.st[fp.S_VIEW_START]:
                ticket = self.propose(leader.id, b"settle")
                owner = leader
            if ticket >= 0 and ticket in owner.decided:
                status, index = owner.decided[ticket]
                if status == RL.ST_FAILED:
                    ticket = -1
                elif status == RL.ST_COMMITTED:
                    target = index
            if target > 0 and all(n.core.commit >= target and n.core.applied >= target
                                  for n in self.nodes):
                self.check_acked()
                return target
        self.fail(f"no progress after healing: {self.describe()}")
        return -1

    def leader(self) -> Node | None:
        best = None
        for node in self.nodes:
            if node.alive and node.core.is_leader and (best is None or
                                                        node.core.view > best.core.view):
                best = node
        return best

    def describe(self) -> str:
        return "; ".join(
            f"r{n.id} {'up' if n.alive else 'down'} {n.core.role_name()} v{n.core.view} "
            f"commit={n.core.commit} last={n.core.last} applied={n.core.applied}"
            for n in self.nodes)

    # ------------------------------------------------------------------ checks
    def check(self) -> None:
        for node in self.nodes:
            if not node.alive:
                continue
            core = node.core
            self._check_committed(node)
            if core.is_leader:
                owner = self.leaders.setdefault(core.view, node.id)
                if owner != node.id:
                    self.fail(f"two leaders in view {core.view}: r{owner} and r{node.id}")
                if not node.leading:
                    node.leading = True
                    self._check_complete(node)
            else:
                node.leading = False
            if node.app.applied and self.digests.get(node.app.applied) not in (
                    None, node.app.digest):
                self.fail(f"r{node.id}'s state at {node.app.applied} differs from the "
                          "committed prefix")
            if node.id in self.lost_memory and not core.recovering and core.normal:
                self.lost_memory.discard(node.id)
            self._collect_outcomes(node)

    def _check_committed(self, node: Node) -> None:
        core = node.core
        top = min(core.commit, core.last)
        if top <= node.checked:
            return
        start = max(node.checked + 1, core.log.first)
        for i in range(start, top + 1):
            e = core.log.entry(i)
            key = e.key()
            seen = self.committed.setdefault(i, key)
            if seen != key:
                self.fail(f"index {i} committed as {seen!r} and as {key!r} (r{node.id})")
            if i - 1 in self.digests and i not in self.digests:
                self.digests[i] = chain(self.digests[i - 1], e)
        node.checked = max(node.checked, top)

    def _check_complete(self, node: Node) -> None:
        log = node.core.log
        for i, key in self.committed.items():
            if i < log.first:
                continue
            if i > log.last or log.entry(i).key() != key:
                self.fail(f"committed entry {i} {key!r} is missing from the new leader "
                          f"r{node.id} of view {node.core.view}")

    def _collect_outcomes(self, node: Node) -> None:
        if not node.tickets:
            return
        decided = int(node.ring.u32[RL.H_COMMIT_FUTEX // 4])  # bumped at every decision
        if decided == node.decisions_seen:
            return
        node.decisions_seen = decided
        for t in list(node.tickets):
            status, index = ringio.outcome(node.ring, t)
            if status in (RL.ST_COMMITTED, RL.ST_FAILED):
                payload = node.tickets.pop(t)
                node.decided[t] = (status, index)
                if status == RL.ST_COMMITTED:
                    self.acked[index] = payload

    def check_acked(self) -> None:
        for index, payload in self.acked.items():
            key = self.committed.get(index)
            if key is None:
                continue  # compacted before we read it; its digest was still checked
            events = decode_batch(key[2]) if key[1] == wire.K_EVENTS else []
            if payload not in [ev.payload for ev in events]:
                self.fail(f"proposal {payload!r} was acknowledged at index {index}, "
                          f"which holds {key!r}")


def run_schedule(seed: int, **overrides: object) -> Simulator:
    """Run one random schedule (raises Violation on a broken invariant)."""
    sim = Simulator(SimConfig(seed=seed, **overrides))  # type: ignore[arg-type]
    sim.run()
    return sim


@dataclass
class SweepResult:
    schedules: int = 0
    violations: list[str] = field(default_factory=list)


def sweep(seeds: range, stop_at_first: bool = False, **overrides: object) -> SweepResult:
    result = SweepResult()
    for seed in seeds:
        result.schedules += 1
        try:
            run_schedule(seed, **overrides)
        except Violation as exc:
            result.violations.append(str(exc))
            if stop_at_first:
                break
    return result
