"""The one VM boot of the default suite: boot a redis guest, reach it through the frame
switch, clone it, sync once (RAM files byte-identical), and see the resumed backup
execute the next inputs exactly as the leader does."""

from __future__ import annotations

import time

import numpy as np
import redis

from gaia.vm.group import VmGroup


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


def test_boot_clone_sync_and_backup_follows(redis_guest, run_dir) -> None:
    with VmGroup(run_dir, guest=redis_guest, mem_mib=192) as group:
        group.start()
        host, port = group.endpoint
        client = redis.Redis(host=host, port=port, socket_timeout=60)
        assert client.ping()
        for i in range(200):
            client.set(f"key:{i}", f"value-{i}" * 8)

        identical: list[bool] = []
        record = group.sync(
            before_resume=lambda a, b: identical.append(np.array_equal(a.array(), b.array()))
        )
        assert identical == [True]
        counts = record.outcome.counts
        assert counts.dirty_union >= counts.dirty_leader > 0
        assert counts.divergent <= counts.dirty_union
        assert record.state_bytes > 0

        # After resuming, the backup (a new QEMU on the synced RAM) runs the same inputs:
        # its replies on the shared connection equal the leader's, byte for byte.
        checker = group.switch.checker
        before = checker.matched_bytes
        for i in range(50):
            assert client.set(f"after:{i}", i)
        assert wait_for(lambda: checker.matched_bytes >= before + 50 * len(b"+OK\r\n"), 60)
        assert checker.mismatched_bytes == 0
        assert client.get("key:199") == b"value-199" * 8
