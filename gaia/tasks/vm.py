"""vm.* — the VM fault-tolerance side: build the guest, smoke-test it, measure syncs.

invoke vm.build [--app redis|memcached]
invoke vm.smoke
invoke vm.sync-run --app redis --syncs 5 --ops-per-sync 1000 [--reconnect] [--no-sync-on-syn]
invoke vm.test                       # the heavier VM tests (pytest -m vm tests/vm)
"""

from __future__ import annotations

import sys

from invoke import Collection, task

from gaia.errors import friendly


@task(help={"app": "guest application: redis or memcached"})
@friendly
def build(c, app="redis"):
    """Build (or find cached) the guest kernel + initramfs for APP."""
    from gaia.vm.guest import build_guest

    guest = build_guest(app, progress=lambda what: print(f"building {what} ..."))
    print(f"kernel : {guest.kernel}\ninitrd : {guest.initrd}")


@task
@friendly
def smoke(c):
    """Boot a redis guest, reach it through the switch, clone it, sync once, check RAM."""
    import tempfile
    from pathlib import Path

    import numpy as np
    import redis

    from gaia.errors import GaiaError
    from gaia.vm.group import VmGroup

    with tempfile.TemporaryDirectory(prefix="gaia-vm-smoke-") as tmp, VmGroup(Path(tmp)) as group:
        group.start()
        print(f"guest up at {group.endpoint[0]}:{group.endpoint[1]} ({group.spec.accel})")
        client = redis.Redis(*group.endpoint, socket_timeout=60)
        for i in range(100):
            client.set(f"smoke:{i}", i)
        same: list[bool] = []
        record = group.sync(before_resume=lambda a, b: same.append(np.array_equal(a.array(), b.array())))
        m = record.metrics()
        print(f"sync: dirty {m['dirty_union']}, divergent {m['divergent']}, "
              f"leader paused {m['leader_pause_ms']:.1f} ms, RAM identical: {same == [True]}")
        if same != [True] or client.get("smoke:99") != b"99":
            raise GaiaError("smoke test failed: RAM files differ after the sync", "see tests/vm")
    print("vm smoke: ok")


@task(
    help={
        "app": "redis or memcached",
        "syncs": "periodic syncs to measure",
        "ops_per_sync": "operations (50% reads, 50% updates) between syncs",
        "records": "records loaded before the first sync",
        "mem": "guest RAM in MiB",
        "reconnect": "open a new client connection before every batch",
        "sync_on_syn": "sync when the guest accepts a connection (default on)",
        "full_diff": "also time a full two-file diff per sync, for comparison",
        "save": "save the result record under results/vm_sync",
    }
)
@friendly
def sync_run(c, app="redis", syncs=5, ops_per_sync=1000, records=1000, mem=256,
             reconnect=False, sync_on_syn=True, full_diff=True, save=True):
    """Run a replicated guest under load, sync every K ops, print the per-sync table."""
    from rich.console import Console

    from analysis.store import save_record
    from gaia.paths import new_run_dir
    from gaia.vm.runner import SyncRunConfig, run_sync_run, sync_tables

    console = Console()
    cfg = SyncRunConfig(app=app, syncs=int(syncs), ops_per_sync=int(ops_per_sync),
                        records=int(records), mem_mib=int(mem), reconnect=reconnect,
                        sync_on_syn=sync_on_syn, full_diff=full_diff)
    with console.status("starting") as status:
        rows, result = run_sync_run(cfg, new_run_dir("vm_sync"), progress=status.update)
    for table in sync_tables(rows, f"{app}, {cfg.ops_per_sync} ops per sync, "
                                   f"{result.metrics['n_pages']} pages"):
        console.print(table)
    t = result.metrics["totals"]
    if t["primary_backup_bytes"]:
        saved = 1 - t["ours_bytes"] / t["primary_backup_bytes"]
        console.print(f"periodic syncs: {t['divergent']} divergent of {t['dirty_union']} dirty "
                      f"pages; bytes vs primary-backup: {saved:+.1%} saved")
    if save:
        console.print(f"record: {save_record(result)}")


@task
def test(c):
    """The VM tests beyond the default suite's smoke test (boots several guests)."""
    c.run(f"{sys.executable} -m pytest -m vm tests/vm -q", pty=False)


NAMESPACE = Collection("vm", build, smoke, sync_run, test)
