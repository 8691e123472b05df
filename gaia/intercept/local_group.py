"""A replicated server group on one host without consensus: shim + ring + committed log.

Why: it wires every part of the interception layer the way a real deployment does —
each replica's server runs under the shim with its own ring, the leader's ring is
committed in order into one log (LocalCommitter, where APUS will replicate), and each
backup's server is fed from that log by a Replayer — so the tests prove order, fail-closed
behaviour, output checking and role switches on real servers, and binding APUS later only
replaces the committer.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import apps
from gaia.intercept import ring_layout as L
from gaia.intercept.build import preload_env
from gaia.intercept.checker import CheckReport, OutputChecker
from gaia.intercept.feed import LogFeed
from gaia.intercept.guard_log import ShmTruncatableLog
from gaia.intercept.guard_session import Session, framing
from gaia.intercept.local_commit import LocalCommitter
from gaia.intercept.replayer import Replayer
from gaia.intercept.ring import Ring
from gaia.intercept.shmlog import ShmLog
from gaia.intercept.trust import trusting
from gaia.net import free_port

# Servers that run inputs of different connections on different threads: their leader
# must execute inputs in log order too (the shim's GAIA_SHIM_SERIALIZE gate). Measured:
# SecantusDB (a thread per connection) ends with different digests on leader and backup
# under two concurrent writers without it, equal ones with it. MariaDB's deterministic
# one-thread pool still hands connections between two worker threads, so it is gated too.
SERIALIZE_BY_DEFAULT = frozenset({"mariadb", "mongodb"})


def shim_settings(app: str, serialize: bool | None = None) -> dict[str, str]:
    """Extra shim environment for `app` (serialize=None: the app's default)."""
    if serialize is None:
        serialize = app in SERIALIZE_BY_DEFAULT
    return {"GAIA_SHIM_SERIALIZE": "1"} if serialize else {}


@dataclass
class LocalReplica:
    name: str
    ring: Ring
    server: Any  # apps.base.Server
    committer: LocalCommitter | None = None
    replayer: Replayer | None = None

    @property
    def role(self) -> int:
        return self.ring.state


@dataclass
class LocalGroup:
    """`replicas` servers of `app`; replica 0 starts as the leader."""

    app: str
    replicas: int = 2
    server_args: dict[str, Any] = field(default_factory=dict)
    dead_ns: int = 0  # fail-closed heartbeat limit (0: the header's default)
    shim_env: dict[str, str] = field(default_factory=dict)
    serialize: bool | None = None  # leader gate for multi-threaded servers (None: default)
    members: list[LocalReplica] = field(default_factory=list)
    log: ShmLog | None = None
    tag: str = ""
    # this process's own connections to every replica's server (digests, snapshots,
    # restores) may give a backup input (gaia/intercept/trust.py)
    trusted: ExitStack = field(default_factory=ExitStack)

    def start(self) -> LocalGroup:
        self.tag = uuid.uuid4().hex[:8]
        try:
            self.log = ShmLog.create(f"/gaia-{self.tag}-log", 1 << 18, 1 << 28)
            for i in range(self.replicas):
                self._new_member(L.REPLICA_LEADER if i == 0 else L.REPLICA_BACKUP)
            self.members[0].committer = LocalCommitter(self.members[0].ring, self.log).start()
            for member in self.members:
                member.server.start()
            for member in self.members[1:]:
                member.replayer = self.new_replayer(member).start()
        except BaseException:
            self.stop()
            raise
        return self

    def _new_member(self, state: int) -> LocalReplica:
        """A replica with its ring and a server object (not started yet)."""
        i = len(self.members)
        ring = Ring.create(f"/gaia-{self.tag}-r{i}", i + 1, state=state, dead_ns=self.dead_ns)
        member = LocalReplica(f"r{i}", ring, None)
        self.members.append(member)
        env = preload_env(ring.name, **shim_settings(self.app, self.serialize), **self.shim_env)
        port = free_port()
        self.trusted.enter_context(trusting(ring, port))
        member.server = apps.get(self.app)(port=port, env=env, deterministic=True,
                                           **self.server_args)
        return member

    def add_backup(self) -> LocalReplica:
        """A brand-new backup: its ring and server object, nothing started — the guard
        brings it up from a checkpoint (Guard.recover)."""
        return self._new_member(L.REPLICA_BACKUP)

    def truncatable_log(self) -> ShmTruncatableLog:
        assert self.log is not None
        return ShmTruncatableLog(self.log)

    def new_replayer(self, member: LocalReplica, after: int = 0,
                     sessions: Iterable[Session] = ()) -> Replayer:
        """A replayer feeding `member`'s server from entry after+1 (not started), through
        the truncation-aware log, re-opening `sessions` first (guard_session.py)."""
        return Replayer(LogFeed(self.truncatable_log()), member.ring, member.server.port,
                        after=after, sessions=sessions, framing=framing(self.app),
                        alive=member.server.alive)

    # -- queries ------------------------------------------------------------------------
    @property
    def leader(self) -> LocalReplica:
        return next(m for m in self.members if m.role == L.REPLICA_LEADER)

    @property
    def backups(self) -> list[LocalReplica]:
        return [m for m in self.members if m.role == L.REPLICA_BACKUP]

    def wait_caught_up(self, timeout: float = 60.0) -> int:
        """Every backup has applied everything committed so far; returns that index."""
        assert self.log is not None
        index = self.log.commit_index()
        for member in self.backups:
            assert member.replayer is not None
            member.replayer.wait_applied(index, timeout)
        return index

    def digests(self) -> dict[str, str]:
        return {m.name: m.server.digest() for m in self.members if m.server.alive()}

    def check_outputs(self) -> CheckReport:
        """Compare every replica's output snapshots with the leader's."""
        checker = OutputChecker(self.app, self.log)
        checker.add_rings_settled({m.name: m.ring for m in [self.leader, *self.backups]})
        return checker.check()

    # -- role changes ------------------------------------------------------------------
    def fail_leader(self) -> LocalReplica:
        """The leader's replica side stops (its ring goes DOWN, its server fails closed)."""
        old = self.leader
        if old.committer is not None:
            old.committer.stop()
            old.committer = None
        old.ring.state = L.REPLICA_DOWN
        return old

    def promote(self, member: LocalReplica, timeout: float = 60.0) -> None:
        """Make a backup the leader without restarting its server: apply everything
        committed, stop replaying, switch the ring's role, then end the replay
        connections (their ends are proposed as CLOSE events by the new leader)."""
        assert self.log is not None and member.replayer is not None
        member.replayer.wait_applied(self.log.commit_index(), timeout)
        member.replayer.stop(close_connections=False)
        member.committer = LocalCommitter(member.ring, self.log).start()
        member.ring.reclaim()
        member.ring.state = L.REPLICA_LEADER
        member.replayer.close_connections()
        member.replayer = None

    # -- teardown ----------------------------------------------------------------------
    def stop(self) -> None:
        for member in self.members:
            if member.replayer is not None:
                member.replayer.stop()
        for member in self.members:
            if member.committer is not None:
                member.committer.stop()
            if member.server is not None:
                member.server.stop()
                member.server.cleanup()
        self.trusted.close()
        for member in self.members:
            member.ring.close()
            member.ring.unlink()
        if self.log is not None:
            self.log.close()
            self.log.unlink()
        self.members.clear()
        self.log = None

    def __enter__(self) -> LocalGroup:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
