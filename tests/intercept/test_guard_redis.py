"""The guard on real redis-server replicas: checkpoints under a write load, kill -9 of a
backup's server and recovery from checkpoint + log suffix, a brand-new replica joining
from a transferred checkpoint, truncation, a corrupt checkpoint, the guard loop, and a
request split across the checkpoint."""

from __future__ import annotations

import pytest

import apps
from gaia.errors import GaiaError
from gaia.intercept import ring_layout as L
from gaia.intercept.build import preload_env
from gaia.intercept.checkpoint_store import Checkpoint, CheckpointError, CheckpointStore
from gaia.intercept.checkpoint_transfer import CheckpointServer
from gaia.intercept.events import Event, encode_batch
from gaia.intercept.feed import LogFeed
from gaia.intercept.guard import Guard, group_guard
from gaia.intercept.guard_load import WriteLoad
from gaia.intercept.guard_log import LogTruncated, ShmTruncatableLog
from gaia.intercept.guard_policy import GuardPolicy
from gaia.intercept.guard_session import framing
from gaia.intercept.local_group import LocalGroup, LocalReplica
from gaia.intercept.replayer import BackupServerDied, Replayer
from gaia.intercept.ring import wait_until
from gaia.intercept.trust import trusting

pytestmark = pytest.mark.timeout(300)


def _settle(group: LocalGroup) -> None:
    """Every backup has applied what is committed now (so a checkpoint has content)."""
    index = group.log.commit_index()
    for member in group.backups:
        member.replayer.wait_applied(index, 60)


def _checkpoints_under_load(group: LocalGroup, guard: Guard, load: WriteLoad, count: int,
                            writes: int = 300) -> list[Checkpoint]:
    taken = []
    for _ in range(count):
        load.wait_ops(writes)
        _settle(group)
        taken.append(guard.checkpoint())
    return taken


def _assert_all_equal(group: LocalGroup, replicas: int, check_outputs: bool = True) -> None:
    group.wait_caught_up()
    if check_outputs:
        # An answer to an input the log no longer holds cannot be told known or not (the
        # checker quotes the input from the log): e.g. HELLO's client id, which differs
        # once a backup served a digest. The digests below still cover that state.
        first = group.truncatable_log().first_index()
        report = group.check_outputs()
        assert [d for d in report.unexpected if d.log_index >= first] == [], report.summary()
    digests = group.digests()
    assert len(digests) == replicas and len(set(digests.values())) == 1, digests


def test_kill9_of_a_backup_recovers_from_checkpoint_and_log_suffix(tmp_path):
    with LocalGroup("redis", replicas=3) as group:
        backup = group.members[1]
        guard = group_guard(group, backup, CheckpointStore(tmp_path / "r1"), GuardPolicy(keep=2))
        with WriteLoad("redis", group.leader.server) as load:
            first, second = _checkpoints_under_load(group, guard, load, 2)
            assert first.index < second.index and second.digest
            assert any(s.conn_id for s in second.sessions), "the long-lived client is recorded"
            log = group.truncatable_log()
            start = guard.truncate()
            assert start == first.index + 1
            with pytest.raises(LogTruncated):
                log.entry(start - 1)
            backup.server.process.kill()
            crash = guard.check()
            assert crash is not None and "killed by signal 9 (SIGKILL)" in crash.describe()
            wait_until(lambda: isinstance(backup.replayer.error, BackupServerDied), 30,
                       "the replayer to report the dead server")
            load.wait_ops(300)  # the leader serves on while the backup is down
            recovery = guard.recover()
            assert recovery.checkpoint.index == second.index and not recovery.passed_over
            assert recovery.suffix_entries > 0
            load.wait_ops(200)
        assert guard.check() is None
        assert backup.replayer.skipped == 0, "inputs of a connection older than the checkpoint"
        _assert_all_equal(group, 3)


def test_a_brand_new_replica_joins_from_a_transferred_checkpoint(tmp_path):
    with LocalGroup("redis", replicas=2) as group:
        source = CheckpointStore(tmp_path / "r1")
        guard = group_guard(group, group.members[1], source)
        with WriteLoad("redis", group.leader.server) as load, CheckpointServer(source) as server:
            [taken] = _checkpoints_under_load(group, guard, load, 1, writes=400)
            assert guard.truncate() == taken.index + 1 > 1  # the log alone cannot rebuild it
            load.wait_ops(200)
            with pytest.raises(GaiaError, match="the leader is never checkpointed"):
                group_guard(group, group.leader, CheckpointStore(tmp_path / "r0")).checkpoint()
            new = group.add_backup()
            alone = group_guard(group, new, CheckpointStore(tmp_path / "r2-alone"))
            with pytest.raises(CheckpointError, match="r2 cannot be recovered: no usable"):
                alone.recover()
            joiner = group_guard(group, new, CheckpointStore(tmp_path / "r2"),
                                 fetch_from=server.address)
            recovery = joiner.recover()
            assert recovery.fetched and recovery.checkpoint.index == taken.index
            load.wait_ops(200)
        _assert_all_equal(group, 3)


def test_a_corrupt_newest_checkpoint_falls_back_to_the_previous_one(tmp_path):
    with LocalGroup("redis", replicas=2) as group:
        backup = group.members[1]
        store = CheckpointStore(tmp_path / "r1")
        guard = group_guard(group, backup, store, GuardPolicy(keep=2))
        with WriteLoad("redis", group.leader.server) as load:
            older, newest = _checkpoints_under_load(group, guard, load, 2)
            guard.truncate()
            rdb = store.snapshot_path(newest)
            data = bytearray(rdb.read_bytes())
            data[len(data) // 2] ^= 0x5A
            rdb.write_bytes(bytes(data))
            backup.server.process.kill()
            recovery = guard.recover()
            load.wait_ops(200)
        assert recovery.checkpoint.index == older.index
        assert f"checkpoint {newest.index}: checksum" in recovery.passed_over[0]
        _assert_all_equal(group, 2)


def test_the_guard_loop_checkpoints_truncates_and_reports_a_crashed_backup(tmp_path):
    with LocalGroup("redis", replicas=2) as group:
        backup = group.members[1]
        store = CheckpointStore(tmp_path / "r1")
        policy = GuardPolicy(every_entries=150, keep=2)
        with WriteLoad("redis", group.leader.server) as load, \
                group_guard(group, backup, store, policy, auto_recover=True) as guard:
            wait_until(lambda: len(store.records()) == 2 and store.records()[0].index > 150,
                       120, "three periodic checkpoints", interval=0.05)
            assert group.truncatable_log().first_index() > 1
            pid = backup.server.pid
            backup.server.process.kill()
            wait_until(lambda: any("recovered r1" in r for r in guard.reports), 120,
                       "the guard to report the crash and recover", interval=0.05)
            load.wait_ops(200)
        crashed = [r for r in guard.reports if "died" in r]
        assert crashed and f"backup r1: the redis server (pid {pid}) died — killed by signal 9" \
            in crashed[0]
        assert len(store.records()) <= policy.keep
        _assert_all_equal(group, 2)


def _resp(*args: bytes) -> bytes:
    return b"*%d\r\n" % len(args) + b"".join(b"$%d\r\n%s\r\n" % (len(a), a) for a in args)


def test_a_request_split_across_the_checkpoint_is_completed_after_recovery(shm, tmp_path):
    """A leader's read can end inside a request: the checkpoint keeps the partial request
    and a recovered server is sent it before the rest arrives from the log suffix."""
    ring, log = shm.ring("b", 2, state=L.REPLICA_BACKUP), shm.log()
    tlog = ShmTruncatableLog(log)
    member = LocalReplica("b", ring, apps.get("redis")(port=0, env=preload_env(ring.name),
                                                        deterministic=True))

    def replayer(m: LocalReplica, after: int, sessions) -> Replayer:
        return Replayer(LogFeed(tlog), m.ring, m.server.port, after=after, sessions=sessions,
                        framing=framing("redis"), alive=m.server.alive)

    guard = Guard(member, tlog, CheckpointStore(tmp_path), "redis", replayer)
    split = _resp(b"SET", b"b", b"22")
    try:
        member.server.start()
        member.replayer = replayer(member, 0, ()).start()
        log.append(encode_batch([Event(L.EV_OPEN, 0x77, b"peer"),
                                 Event(L.EV_DATA, 0x77, _resp(b"SET", b"a", b"1") + split[:9])]))
        member.replayer.wait_applied(1)
        taken = guard.checkpoint()
        assert [s.pending for s in taken.sessions] == [split[:9]]
        log.append(encode_batch([Event(L.EV_DATA, 0x77, split[9:] + _resp(b"INCR", b"n"))]))
        member.replayer.wait_applied(2)
        member.server.process.kill()
        guard.recover()
        # a backup runs input only from trusted local connections (gaia/intercept/trust.py)
        with trusting(ring, member.server.port), member.server.client() as client:
            assert client.mget("a", "b", "n") == [b"1", b"22", b"1"]
    finally:
        if member.replayer is not None:
            member.replayer.stop()
        member.server.stop()
        member.server.cleanup()


def test_the_old_leader_comes_back_as_a_backup_through_the_guard(tmp_path):
    with LocalGroup("redis", replicas=3) as group:
        old, new = group.members[0], group.members[1]
        source = CheckpointStore(tmp_path / "r1")
        with CheckpointServer(source) as server:
            with WriteLoad("redis", old.server) as load:
                [taken] = _checkpoints_under_load(group, group_guard(group, new, source), load, 1)
                load.wait_ops(100)
            group.fail_leader()
            old.server.process.kill()
            group.promote(new)
            with pytest.raises(GaiaError, match="r1 is the leader"):
                group_guard(group, new, source).recover()
            with WriteLoad("redis", new.server) as load:
                load.wait_ops(200)
                guard = group_guard(group, old, CheckpointStore(tmp_path / "r0"),
                                    fetch_from=server.address)
                recovery = guard.recover()
                load.wait_ops(100)
        assert recovery.fetched and recovery.checkpoint.index == taken.index
        assert old.role == L.REPLICA_BACKUP and group.leader is new
        _assert_all_equal(group, 3)
