"""Heavier VM runs (marked `vm`, run by `invoke vm.test` / `-m vm`): several syncs under
load, failover, the standby, sync on connection open, an incomplete sync refused. The
group tests run twice: frames agreed in-process ("local") and by APUS ("apus": the three
members are APUS replicas, Algorithm 1 travels as APUS requests and replies)."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import redis

from gaia.vm.group import VmGroup
from gaia.vm.pagesync import IncompleteSyncError, copy_pages

from .test_vm_smoke import wait_for

pytestmark = pytest.mark.vm


@pytest.fixture(params=["local", "apus"])
def ordering(request) -> str:
    return request.param


def _client(group: VmGroup) -> redis.Redis:
    host, port = group.endpoint
    return redis.Redis(host=host, port=port, socket_timeout=60)


def _load(client: redis.Redis, n: int, seed: int) -> None:
    """Writes over a skewed key space (a few hot keys, a long tail), values of 100 B."""
    rng = np.random.default_rng(seed)
    keys = np.minimum(rng.zipf(1.3, n), 5000)
    for i, k in enumerate(keys):
        client.set(f"user{k}", f"{seed}-{i}".ljust(100, "x"))


def _running(group: VmGroup) -> redis.Redis:
    """Start the group and open a client whose connection both VMs share."""
    group.start()
    client = _client(group)
    client.ping()
    return client


def _identical(store: list[bool]):
    return lambda a, b: store.append(np.array_equal(a.array(), b.array()))


def test_several_syncs_under_concurrent_load(redis_guest, run_dir, ordering) -> None:
    with VmGroup(run_dir, guest=redis_guest, ordering=ordering) as group:
        group.start()
        clients = [_client(group), _client(group)]
        group.sync()  # both connections now exist in the backup too
        identical: list[bool] = []
        for round_ in range(4):
            workers = [
                threading.Thread(target=_load, args=(c, 300, 10 * round_ + i))
                for i, c in enumerate(clients)
            ]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            record = group.sync(before_resume=_identical(identical))
            counts = record.outcome.counts
            assert 0 < counts.divergent <= counts.dirty_union
        assert identical == [True] * 4
        assert group.switch.checker.mismatched_bytes == 0
        assert group.switch.checker.matched_bytes >= 600 * 5


def test_failover_serves_the_same_data_within_5_s(redis_guest, run_dir, ordering) -> None:
    with VmGroup(run_dir, guest=redis_guest, ordering=ordering) as group:
        client = _running(group)
        _load(client, 400, 1)
        digest = client.execute_command("DEBUG", "DIGEST")
        keys = client.dbsize()
        group.fail_leader()  # no pause: frames the backup had not taken yet still reach it
        died = time.monotonic()
        assert client.execute_command("DEBUG", "DIGEST") == digest  # same connection
        assert time.monotonic() - died < 5.0
        assert client.dbsize() == keys
        client.set("after-failover", 1)
        assert client.get("after-failover") == b"1"
        if ordering == "apus":  # the serving VM's member leads APUS, not the standby's
            assert group.apus is not None and group.apus.leader_id == group.apus.serving


def test_standby_promotion_then_sync_is_exact(redis_guest, run_dir, ordering) -> None:
    with VmGroup(run_dir, guest=redis_guest, standby_every=1, ordering=ordering) as group:
        client = _running(group)
        _load(client, 200, 2)
        group.sync()  # standby_every=1: the standby checkpoints the backup after it
        standby = group.standby
        assert standby is not None and standby.state_file.stat().st_size > 0
        assert 0 < standby.frame_position <= group.orderer.agreed
        _load(client, 200, 3)
        group.fail_leader()
        _load(client, 100, 4)
        group.promote_standby()
        promoted_at = len(group.records)
        _load(client, 100, 5)  # replies wait for the backup; past a second, for a sync
        identical: list[bool] = []
        record = group.sync(before_resume=_identical(identical))
        assert identical == [True]
        assert group.records[promoted_at].reason == "resync"
        assert record.outcome.counts.divergent < record.outcome.counts.n_pages // 10
        digest = client.execute_command("DEBUG", "DIGEST")
        group.fail_leader()  # the promoted standby now serves
        assert client.execute_command("DEBUG", "DIGEST") == digest


def test_incomplete_sync_is_refused_and_the_leader_keeps_serving(redis_guest, run_dir) -> None:
    with VmGroup(run_dir, guest=redis_guest) as group:
        client = _running(group)
        _load(client, 200, 6)

        def skip_last(leader, backup, pages):
            copy_pages(leader, backup, pages[:-1])

        with pytest.raises(IncompleteSyncError, match="NOT resumed"):
            group.sync(copier=skip_last)
        assert group.backup is not None and group.backup.qmp.status() != "running"
        assert client.set("still-serving", 1)
        group.clone_backup()  # recovery: a full clone, then syncs work again
        identical: list[bool] = []
        group.sync(before_resume=_identical(identical))
        assert identical == [True]


def test_sync_on_syn_shares_every_new_connection(redis_guest, run_dir) -> None:
    with VmGroup(run_dir, guest=redis_guest) as group:  # sync_on_syn is the default
        group.start()
        for i in range(3):
            client = _client(group)
            _load(client, 100, 20 + i)
            client.close()
        checker = group.switch.checker
        assert wait_for(lambda: checker.matched_bytes >= 3 * 100 * 5, 60)
        assert checker.mismatched_bytes == 0
        assert [r.reason for r in group.records].count("syn") >= 3


def test_sync_run_memcached_records_every_step(tmp_path) -> None:
    from gaia.vm.runner import STEPS, SyncRunConfig, run_sync_run

    cfg = SyncRunConfig(app="memcached", syncs=2, ops_per_sync=300, records=300)
    rows, record = run_sync_run(cfg, tmp_path)
    periodic = [m for m in record.metrics["syncs"] if m["reason"] == "periodic"]
    assert len(periodic) == 2 and len(rows) >= 3
    for m in periodic:
        assert all(f"{s}_ms" in m for s in STEPS)
        assert m["divergent"] <= m["dirty_union"]
        assert m["full_diff_ms"] > 0
    assert record.metrics["output_mismatched_bytes"] == 0


@pytest.mark.parametrize("app", ["redis", "mariadb"])
def test_ycsb_drives_the_replicated_guest(tmp_path, app) -> None:
    from workloads import infra
    from workloads.ycsb import YcsbOptions, run_ycsb

    infra.register("vm", "gaia.vm.ycsb_infra:provide")
    outcome = run_ycsb(YcsbOptions(app=app, workload="a", infra="vm", records=300,
                                   ops=600, save=False, status=False))
    assert outcome.load is not None and outcome.run is not None
    assert outcome.load.operations == 300 and outcome.run.operations == 600
    assert not outcome.load.errors and not outcome.run.errors
    assert "[READ], Return=OK" in outcome.run_text
