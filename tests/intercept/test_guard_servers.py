"""The guard on memcached, MariaDB and the MongoDB-wire server: a checkpoint under a write
load (MariaDB's datadir copy restarts the server, so its replay sessions are re-opened
at once), kill -9 of the backup's server, recovery from checkpoint + log suffix, equal
digests."""

from __future__ import annotations

import pytest

from gaia.intercept.checkpoint_store import CheckpointStore
from gaia.intercept.guard import group_guard
from gaia.intercept.guard_load import WriteLoad, prepare
from gaia.intercept.guard_policy import GuardPolicy
from gaia.intercept.local_group import LocalGroup

pytestmark = pytest.mark.timeout(300)

# SecantusDB numbers its replies with a server-wide counter that a restored server starts
# afresh, so after a recovery every reply header differs (reported, see the guard's notes);
# memcached's digest (lru_crawler metadump through the leader) lists items in LRU order.
CHECK_OUTPUTS = {"memcached": True, "mariadb": True, "mongodb": False}


@pytest.mark.parametrize("app", sorted(CHECK_OUTPUTS))
def test_kill9_of_a_backup_recovers_with_equal_digests(app, tmp_path):
    with LocalGroup(app, replicas=2) as group:
        backup = group.members[1]
        guard = group_guard(group, backup, CheckpointStore(tmp_path), GuardPolicy(keep=2))
        prepare(app, group.leader.server)
        with WriteLoad(app, group.leader.server, reconnect_every=50) as load:
            load.wait_ops(100)
            backup.replayer.wait_applied(group.log.commit_index(), 60)
            pid = backup.server.pid
            taken = guard.checkpoint()
            assert taken.size > 0 and taken.digest and taken.sessions
            restarted = backup.server.pid != pid
            assert restarted == (app == "mariadb"), "only the datadir copy restarts the server"
            load.wait_ops(100)
            assert guard.truncate() == taken.index + 1
            backup.server.process.kill()
            assert "killed by signal 9" in guard.check().describe()
            load.wait_ops(50)
            recovery = guard.recover()
            assert recovery.checkpoint.index == taken.index and recovery.suffix_entries > 0
            load.wait_ops(50)
        group.wait_caught_up()
        assert backup.replayer.skipped == 0
        if CHECK_OUTPUTS[app]:  # before the digests: a digest through the leader is logged
            first = group.truncatable_log().first_index()  # older inputs cannot be quoted
            report = group.check_outputs()
            assert [d for d in report.unexpected if d.log_index >= first] == [], \
                report.summary()
        digests = group.digests()
        assert len(digests) == 2 and len(set(digests.values())) == 1, digests
