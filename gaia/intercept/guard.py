"""The guard: checkpoints of a backup replica, log truncation, recovery from checkpoint +
log suffix, and a clear report when a backup's server dies.

Why: a replica whose server died (or a brand-new one) must become an exact copy of the
others without replaying the whole history, and the log must not grow for ever. CRIU
does not run on this kernel (DESIGN.md), so a checkpoint is the server's own snapshot
(apps: Redis SAVE, memcached dump, MariaDB datadir copy / mariadb-backup, MongoDB dump),
taken on a BACKUP — never the leader, since taking it pauses execution:
  1. the replayer stops at an entry boundary i (every entry <= i executed, none after);
  2. the server's digest, its snapshot and the client sessions open at i are taken;
  3. the replayer resumes (a server that its snapshot restarted gets its sessions back
     from the same place a recovery would); the snapshot is checksummed and listed in the
     store's manifest (checkpoint_store.py); old checkpoints beyond `keep` go;
  4. truncate(): the log drops entries up to the oldest retained checkpoint, never past
     what a live local reader still needs (guard_policy.py).
Recovery: stop what is left, pick the newest checkpoint that passes its checks and whose
suffix is still in the log (fetched from another guard if there is none here), restore
it into the server, check the digest recorded with it, then start a replayer from i+1
that re-opens the sessions and replays the suffix until the commit index seen at the
start; after that it is an ordinary backup. A checkpoint that fails a check is reported
and the previous one is used.

One Guard per replica (as with APUS, where each host's guard checkpoints its own
replica and truncates its own log). `group_guard()` wires one into a LocalGroup.
"""

from __future__ import annotations

import logging
import shutil
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from gaia.errors import GaiaError
from gaia.intercept import ring_layout as L
from gaia.intercept.checkpoint_store import Checkpoint, CheckpointError, CheckpointStore
from gaia.intercept.checkpoint_transfer import fetch_checkpoint
from gaia.intercept.guard_log import TruncatableLog
from gaia.intercept.guard_policy import GuardPolicy, checkpoint_due, truncation_point
from gaia.intercept.guard_session import Session
from gaia.intercept.local_group import LocalGroup, LocalReplica
from gaia.intercept.replayer import Replayer

log = logging.getLogger(__name__)

# apps whose restore() (re)starts the server itself; the others restore into a running one
RESTORE_STARTS_SERVER = frozenset({"redis", "mariadb"})
MakeReplayer = Callable[[LocalReplica, int, Sequence[Session]], Replayer]


@dataclass(frozen=True)
class ServerCrash:
    """A backup's server process is gone without the guard having stopped it."""

    replica: str
    app: str
    pid: int
    returncode: int | None
    applied: int  # every entry up to here had been executed (-1: unknown)
    log_path: str
    log_tail: str

    def describe(self) -> str:
        if self.returncode is not None and self.returncode < 0:
            sig = -self.returncode
            how = f"killed by signal {sig} ({signal.Signals(sig).name})"
        else:
            how = f"exited with code {self.returncode}"
        last = self.log_tail.strip().splitlines()[-1:] or ["(empty)"]
        return (f"backup {self.replica}: the {self.app} server (pid {self.pid}) died — {how} — "
                f"after executing log entries up to {self.applied}; its log {self.log_path} "
                f"ends: {last[0].strip()}")


@dataclass(frozen=True)
class Recovery:
    replica: str
    checkpoint: Checkpoint
    passed_over: tuple[str, ...]  # why newer checkpoints were not used
    fetched: bool  # the checkpoint came from another guard
    restore_s: float  # restore + digest check
    replay_s: float  # suffix replay until `target`
    target: int  # the commit index when the replay started
    total_s: float

    @property
    def suffix_entries(self) -> int:
        return self.target - self.checkpoint.index


@dataclass(frozen=True)
class _Taken:
    record: Checkpoint
    staging: Path
    restarted: bool  # the snapshot stopped and started the server (new pid)


@dataclass
class Guard:
    member: LocalReplica
    log: TruncatableLog
    store: CheckpointStore
    app: str
    make_replayer: MakeReplayer
    policy: GuardPolicy = field(default_factory=GuardPolicy)
    readers: Callable[[], Sequence[int]] = lambda: ()
    verify_digest: bool = True
    auto_recover: bool = False
    fetch_from: tuple[str, int] | None = None  # another guard's CheckpointServer
    tick_s: float = 0.2
    timeout: float = 120.0
    reports: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._started = time.time()
        self._reported: object = None

    # -- checkpoints ---------------------------------------------------------------------
    def checkpoint(self) -> Checkpoint:
        """Checkpoint the member where its replayer stands now; keep the newest
        policy.keep checkpoints. Returns the new (or unchanged newest) checkpoint."""
        with self._lock:
            m = self.member
            if m.role != L.REPLICA_BACKUP:
                raise GaiaError(
                    f"replica {m.name} is not a backup: a checkpoint pauses the server's "
                    "execution, so the leader is never checkpointed",
                    "checkpoint a backup's guard")
            crash = self.check()
            if crash is not None:
                raise CheckpointError(crash.describe(), "recover the replica first (recover())")
            if m.replayer is None:
                raise CheckpointError(f"replica {m.name} has no replayer",
                                      "recover it or start its replayer first")
            return self._checkpoint(m, m.replayer)

    def _checkpoint(self, m: LocalReplica, replayer: Replayer) -> Checkpoint:
        began = time.monotonic()
        replayer.pause_at(replayer.applied)
        try:
            index = replayer.wait_quiesced(self.timeout)
            newest = self.store.newest()
            if newest is not None and newest.index == index and \
                    self.store.problem(newest) is None:
                replayer.resume()
                return newest  # nothing new since
            taken = self._snapshot(m, replayer, index)
        except BaseException:
            replayer.resume()
            raise
        if taken.restarted:  # e.g. MariaDB's datadir copy stops and starts the server
            self._replay_from(index, taken.record.sessions)
        else:
            replayer.resume()
        pause_s = time.monotonic() - began
        record = replace(taken.record, pause_s=pause_s, total_s=pause_s)
        record = self.store.commit(taken.staging, record)
        self.store.prune(self.policy.keep)
        log.info("checkpoint of %s at %d: %d bytes, paused %.3f s", m.name, index,
                 record.size, pause_s)
        return record

    def _snapshot(self, m: LocalReplica, replayer: Replayer, index: int) -> _Taken:
        """Digest, sessions and the app's snapshot of the quiesced server, in a staging
        directory of the store."""
        sessions = tuple(replayer.open_sessions())
        began = time.monotonic()
        digest = m.server.digest() if self.verify_digest else ""
        digest_s = time.monotonic() - began
        pid = m.server.pid
        staging = self.store.staging(index)
        try:
            began = time.monotonic()
            path = m.server.snapshot(staging)
            snapshot_s = time.monotonic() - began
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        record = Checkpoint(index=index, app=self.app, snapshot=str(path.relative_to(staging)),
                            digest=digest, digest_s=digest_s, snapshot_s=snapshot_s,
                            taken_at=time.time(),
                            source=m.name, sessions=sessions)
        return _Taken(record, staging, m.server.pid != pid)

    def truncate(self) -> int:
        """Drop log entries no retained checkpoint and no live reader needs; returns the
        log's first index."""
        with self._lock:
            point = truncation_point([c.index for c in self.store.records()],
                                     self.readers())
            return self.log.truncate_before(point) if point else self.log.first_index()

    # -- recovery ------------------------------------------------------------------------
    def recover(self) -> Recovery:
        """Bring the member back (its server died, its host restarted, or it is brand
        new) from the newest usable checkpoint + the log suffix."""
        with self._lock:
            began = time.monotonic()
            m = self.member
            if m.role == L.REPLICA_LEADER:
                raise GaiaError(f"replica {m.name} is the leader: recovering it would stop "
                                "the service", "fail the leader over first (a backup takes "
                                "over), then recover the old leader as a backup")
            if m.replayer is not None:
                m.replayer.stop()
                m.replayer = None
            m.server.stop()
            m.ring.reclaim()  # connection entries of the dead server
            m.ring.state = L.REPLICA_BACKUP
            ck, passed, fetched = self._restore_newest()
            restored = time.monotonic()
            target = self.log.commit_index()
            self._replay_from(ck.index, ck.sessions)
            assert m.replayer is not None
            m.replayer.wait_applied(target, self.timeout)
            done = time.monotonic()
            self._reported = None
            rec = Recovery(m.name, ck, tuple(passed), fetched, restored - began,
                           done - restored, target, done - began)
            self._report(f"recovered {m.name} from checkpoint {ck.index} "
                         f"({rec.suffix_entries} entries replayed"
                         f"{'; passed over: ' + '; '.join(passed) if passed else ''})")
            return rec

    def _restore_newest(self) -> tuple[Checkpoint, list[str], bool]:
        """Restore the newest checkpoint that passes every check into the server: this
        guard's own first, then one fetched from `fetch_from`. Returns (checkpoint, why
        others were passed over, whether it was fetched)."""
        min_index = self.log.first_index() - 1  # its suffix must still be in the log
        passed: list[str] = []
        tried: set[tuple[int, str]] = set()
        for fetched in (False, True):
            if fetched:
                if self.fetch_from is None:
                    break
                try:  # the peer may take one now if its newest is older than needed
                    fetch_checkpoint(self.fetch_from, self.store,
                                     f"atleast {min_index}" if min_index > 0 else "newest")
                except CheckpointError as exc:
                    passed.append(exc.problem)
                    break
            good, problems = self.store.usable(min_index)
            passed += [p for p in problems if p not in passed]
            for ck in good:
                if (ck.index, ck.checksum) in tried:
                    continue
                tried.add((ck.index, ck.checksum))
                trouble = self._restore(ck)
                if trouble is None:
                    return ck, passed, fetched
                passed.append(trouble)
        raise CheckpointError(
            f"replica {self.member.name} cannot be recovered: no usable checkpoint in "
            f"{self.store.root}" + (f" ({'; '.join(passed)})" if passed else ""),
            "take a checkpoint on a live backup (Guard.checkpoint) and fetch it "
            "(fetch_from), or rebuild the replica from an empty server and the whole log")

    def _restore(self, ck: Checkpoint) -> str | None:
        """Restore `ck`; the reason it failed, or None."""
        server = self.member.server
        if self.app not in RESTORE_STARTS_SERVER and not server.alive():
            server.start()
        try:
            server.restore(self.store.snapshot_path(ck))
        except GaiaError as exc:
            return f"checkpoint {ck.index}: restore failed ({exc.problem})"
        if self.verify_digest and ck.digest:
            digest = server.digest()
            if digest != ck.digest:
                return (f"checkpoint {ck.index}: restored state has digest {digest}, "
                        f"{ck.digest} was recorded")
        return None

    def _replay_from(self, index: int, sessions: Sequence[Session]) -> None:
        m = self.member
        if m.replayer is not None:
            m.replayer.stop()
        m.ring.reclaim()
        m.replayer = self.make_replayer(m, index, sessions).start()

    # -- health ----------------------------------------------------------------------------
    def check(self) -> ServerCrash | None:
        """The member's server died (not stopped by the guard): what is known about it."""
        server = self.member.server
        process = getattr(server, "process", None)
        if server is None or process is None or server.alive():
            return None
        replayer = self.member.replayer
        return ServerCrash(self.member.name, self.app, process.pid, process.popen.poll(),
                           replayer.applied if replayer is not None else -1,
                           str(process.log_path), process.log_tail(3))

    def tick(self) -> None:
        """One round of the guard loop: report/recover a dead server or a replayer that
        stopped; otherwise checkpoint and truncate when the policy says so."""
        with self._lock:
            crash = self.check()
            replayer = self.member.replayer
            trouble = (crash.describe() if crash is not None else
                       f"backup {self.member.name}: its replayer stopped: {replayer.error}"
                       if replayer is not None and replayer.error is not None else None)
            if trouble is not None:
                if self._reported != trouble:
                    self._reported = trouble
                    self._report(trouble)
                if self.auto_recover:
                    self.recover()
                return
            if replayer is None or self.member.role != L.REPLICA_BACKUP:
                return
            newest = self.store.newest()
            last_index, last_time = (newest.index, newest.taken_at) if newest else \
                (0, self._started)
            if checkpoint_due(self.policy, last_index, last_time, replayer.applied,
                              time.time()):
                self.checkpoint()
                if self.policy.truncate:
                    self.truncate()

    def _report(self, line: str) -> None:
        self.reports.append(line)
        log.warning("guard: %s", line)

    # -- the loop ------------------------------------------------------------------------
    def start(self) -> Guard:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=f"guard-{self.member.name}",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.timeout)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self.tick_s):
            try:
                self.tick()
            except GaiaError as exc:
                self._report(exc.one_line())
            except Exception as exc:  # keep guarding; say what went wrong
                self._report(f"guard round failed: {exc!r}")

    def __enter__(self) -> Guard:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def group_readers(group: LocalGroup) -> list[int]:
    """Applied index of every live backup's replayer reading the group's log."""
    return [m.replayer.applied for m in group.backups
            if m.replayer is not None and m.replayer.error is None and m.server is not None
            and m.server.alive()]


def group_guard(group: LocalGroup, member: LocalReplica, store: CheckpointStore,
                policy: GuardPolicy | None = None, **kwargs) -> Guard:
    """A Guard for `member` of a LocalGroup (log, replayers and readers wired). Stop the
    guard before the group: a server the group stops would look like a crash to it."""
    return Guard(member, group.truncatable_log(), store, group.app,
                 lambda m, after, sessions: group.new_replayer(m, after, sessions),
                 policy or GuardPolicy(), lambda: group_readers(group), **kwargs)
