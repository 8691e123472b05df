"""One replica process: sets up its region, log, ring and storage, then alternates the
numba hot loop with the Python slow path (one tick at a time) until told to stop."""

from __future__ import annotations

import os
import queue
import time
from pathlib import Path

import numpy as np

from gaia.apus import fastpath as fp
from gaia.apus.core import AppHooks, Core, CoreConfig
from gaia.apus.layout import group_bytes, init_region
from gaia.apus.logstore import LocalLog, log_name
from gaia.apus.ringio import ring_name
from gaia.apus.runtime.loop import hot_loop, return_mask
from gaia.apus.runtime.segments import stats_segment
from gaia.apus.runtime.selfdrive import LeaderDriver
from gaia.apus.runtime.spec import GroupSpec
from gaia.apus.runtime.status import (
    STATUS_FILE,
    ReplicaStatus,
    deployment_of,
    read_statuses,
    write_status,
)
from gaia.apus.storage import make_storage
from gaia.apus.transport import (
    SHARED_CORES,
    SPIN_ONLY,
    BackoffPolicy,
    cpu_for,
    make,
    pin_thread,
    policy_for,
)
from gaia.apus.transport.pinning import fine_timer_slack
from gaia.deployment import Deployment
from gaia.errors import GaiaError
from gaia.intercept import ring_layout as RL
from gaia.intercept.ring import Ring, nb_heartbeat, nb_set_commit_index, nb_set_state, nb_set_view
from gaia.intercept.shm import shm_path

STATUS_EVERY_NS = 500_000_000
MAX_CATCH_UP = 8
# Pollers outnumber cores: a spinner steals the CPU its peer needs, so spin ~10 µs, yield a
# little, then sleep on the region's wake word (writers futex-wake it).
OVERSUBSCRIBED = BackoffPolicy(spins=200, yields=20, sleep_ns=500_000, futex=0)
# Never sleep, but hand the core to whoever else is runnable after a short spin: no wake-up
# syscalls and no timer ticks on the path, at the price of a busy CPU (benchmarks).
YIELDING = BackoffPolicy(spins=200, yields=1 << 62, sleep_ns=0, futex=0)
DEPLOYMENT_EVERY_NS = 200_000_000


class ReplicaRunner:
    def __init__(self, run_dir: Path, replica_id: int, app: AppHooks | None = None) -> None:
        self.app = app
        self.commands: queue.SimpleQueue = queue.SimpleQueue()  # (fn(core), Future)
        self.run_dir = Path(run_dir)
        self.spec = GroupSpec.load(self.run_dir)
        self.id = replica_id
        self.dir = self.spec.replica_dir(self.run_dir, replica_id)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.stop = False
        self.transport = None
        self.core: Core | None = None
        self._reported: tuple | None = None
        self._status_at = 0
        self._deploy_at = 0
        self._deployed: tuple | None = None
        self._members: set[int] = set()
        write_status(self.dir / STATUS_FILE, ReplicaStatus(  # so `down` finds us early
            replica_id, os.getpid(), "starting", 0, None, 0, 0, 0))

    # ---------------------------------------------------------------- setup
    def setup(self) -> None:
        spec = self.spec
        lay = spec.layout
        group = spec.group_id
        peers = spec.addresses if spec.transport == "tcp" else \
            [r for r in spec.replicas if r != self.id]
        self.storage = make_storage(spec.durability, group, self.id, self.dir)
        recovered = self.storage.load(lay.max_payload)  # refuses another group's files
        self.transport = make(spec.transport, group, self.id, lay.region_size, peers,
                              reset=True, max_replicas=lay.max_members)
        init_region(self.transport.local, lay, group, self.id)
        self.log = LocalLog.create(spec.log, group, self.id, name=log_name(group, self.id))
        shm_path(ring_name(group, self.id)).unlink(missing_ok=True)
        self.ring = Ring.create(ring_name(group, self.id), self.id, slot_count=spec.ring_slots,
                                slot_size=spec.ring_slot_size, group_id=group_bytes(group),
                                dead_ns=spec.ring_dead_ms * 1_000_000)
        self.stats = stats_segment(group, self.id, create=True)
        incarnation = time.time_ns() // 1000  # grows across restarts: tags mail and acks
        cfg = CoreConfig(self.id, group, spec.members(), lay,
                         election_ticks=spec.election_ticks, heartbeat_ticks=spec.heartbeat_ticks,
                         retransmit_ticks=spec.retransmit_ticks, seed=incarnation,
                         batch_events=spec.batch_events)
        self.core = Core(cfg, self.transport.local, self.log, self.ring, self.storage,
                         self.transport.numba_handle(), None, app=self.app,
                         mail_seq_start=incarnation, timing=spec.timing)
        self.core.fa = self.core.fa._replace(hist=self.stats.hist)
        self.driver = LeaderDriver(self.stats.control, self.dir)
        self.core.start(recovered)
        self._members = set(self.core.config.members)
        for line in self.core.ready().events:
            print(f"{time.time():.3f} {line}", flush=True)
        if spec.spin == "spin":
            self.policy = SPIN_ONLY
        elif spec.spin == "yield":
            self.policy = YIELDING
        elif spec.spin == "shared" or policy_for(len(spec.replicas) + 1) is SHARED_CORES:
            self.policy = OVERSUBSCRIBED  # more pollers than cores: sleep soon, be woken
        else:
            self.policy = SPIN_ONLY  # a core for every poller
        self.core.st[fp.S_WAKE] = int(self.policy.sleep_ns > 0)  # sleepers need waking
        self.driver.compile(self.core.fa, self.transport.numba_handle(), self.core.ob,
                            self.policy, return_mask(self.app is not None))
        self._report(force=True)

    # ---------------------------------------------------------------- running
    def run(self) -> None:
        core = self.core
        assert core is not None
        pin_thread(cpu_for(self.id, None if self.spec.pin == "none" else self.spec.pin))
        fine_timer_slack()
        tick_ns = self.spec.tick_us * 1000
        mask = return_mask(self.app is not None)
        bstate = np.zeros(1, dtype=np.int64)
        th = self.transport.numba_handle()
        next_tick = time.monotonic_ns()
        debug = os.environ.get("GAIA_APUS_DEBUG") == "1"
        returns: dict[int, int] = {}
        shown = next_tick
        while not self.stop:
            if self.driver.active:  # the benchmark's leader-side closed loop
                flags = self.driver.run(core.fa, th, core.ob, next_tick, self.policy, mask,
                                        bstate)
            else:
                flags = hot_loop(core.fa, th, core.ob, next_tick, self.policy, mask, bstate)
            if flags & mask:
                core.handle(flags)
            if debug:
                returns[flags] = returns.get(flags, 0) + 1
                if time.monotonic_ns() - shown > 2_000_000_000:
                    shown = time.monotonic_ns()
                    print(f"hot loop returns by flags: {returns}", flush=True)
                    returns.clear()
            now = time.monotonic_ns()
            if now >= next_tick:
                # ticks missed while starved of CPU are caught up (a few at most), so
                # timeouts follow the wall clock rather than our share of the CPU
                for _ in range(min(MAX_CATCH_UP, 1 + (now - next_tick) // tick_ns)):
                    core.tick()
                next_tick = now + tick_ns
                self._publish()
                self._track_members()
                self._report(now=now)
                self._run_commands()
                self.driver.check(core.is_leader)
            ready = core.ready()
            for line in ready.events:
                print(f"{time.time():.3f} {line}", flush=True)
            if ready.view_changed:
                self._report(force=True)

    def _run_commands(self) -> None:
        """Calls other threads of this process queued for the core (EmbeddedReplica)."""
        while not self.commands.empty():
            fn, future = self.commands.get_nowait()
            try:
                future.set_result(fn(self.core))
            except BaseException as exc:  # handed to the caller's thread
                future.set_exception(exc)

    def _serves(self) -> bool:
        """Whether local producers may send input now (subclasses gate it further)."""
        return self.core.is_leader

    def _publish(self) -> None:
        """What local producers check before every input (fail closed when stale). The
        view goes first: the shim ties a client connection to the view it was accepted
        in, and must never see LEADER next to an older view."""
        core = self.core
        seg = self.ring.seg
        nb_set_view(seg, np.uint64(core.view))
        nb_set_state(seg, RL.REPLICA_LEADER if self._serves() else RL.REPLICA_BACKUP)
        nb_set_commit_index(seg, np.uint64(core.commit))
        nb_heartbeat(seg)

    def _track_members(self) -> None:
        """Map the regions of replicas a membership change added, and the leader's: a
        member that joins with an empty log knows only the spec's first members until the
        log reaches it, yet must answer a leader elected since (its replies would be lost
        and it would never catch up)."""
        members = set(self.core.config.members)
        if self.core.leader is not None:
            members.add(self.core.leader)
        for new in members - self._members:
            if new == self.id:
                continue
            if self.spec.transport == "tcp":
                address = self.spec.addresses.get(new)
                if address:
                    self.transport.add_peer(new, address)
            else:
                self.transport.add_peer(new)
        self._members = members

    def _report(self, force: bool = False, now: int | None = None) -> None:
        core = self.core
        now = now or time.monotonic_ns()
        key = (core.role_name(), core.view, core.leader)
        if force or key != self._reported or now - self._status_at > STATUS_EVERY_NS:
            self._reported = key
            self._status_at = now
            write_status(self.dir / STATUS_FILE, ReplicaStatus(
                self.id, os.getpid(), key[0], core.view, core.leader, core.commit, core.last,
                core.incarnation))
        if core.is_leader and (force or now - self._deploy_at > DEPLOYMENT_EVERY_NS):
            self._deploy_at = now
            statuses = read_statuses(self.run_dir, self.spec)
            roles = tuple(sorted((r, s.role) for r, s in statuses.items()))
            if force or (core.view, roles) != self._deployed:
                self._deployed = (core.view, roles)
                try:
                    newer = Deployment.load(self.run_dir).view > core.view
                except GaiaError:
                    newer = False
                if not newer:  # a deposed leader never overwrites its successor's file
                    deployment_of(self.run_dir, self.spec, statuses, core.view,
                                  self.id).save()

    # ---------------------------------------------------------------- stopping
    def shutdown(self) -> None:
        if self.core is not None:
            nb_set_state(self.ring.seg, RL.REPLICA_DOWN)
            write_status(self.dir / STATUS_FILE, ReplicaStatus(
                self.id, os.getpid(), "down", self.core.view, None, self.core.commit,
                self.core.last, self.core.incarnation))
        if self.transport is not None:
            self.transport.close()
        self.storage.close()
