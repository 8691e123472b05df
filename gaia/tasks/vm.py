"""vm.* — the VM fault-tolerance side: build the guest, smoke-test it, measure syncs.

invoke vm.build [--app redis|memcached|mariadb|mongodb]
invoke vm.smoke
invoke vm.sync-run --app redis --syncs 5 --ops-per-sync 1000 [--reconnect] [--no-sync-on-syn]
                 [--ordering apus]
invoke vm.sync [--full]              # experiment vm_sync + figure vm_divergent_pages
invoke vm.kill --app redis [--ordering apus] [--kill-after 2]   # one leader-VM kill
invoke vm.test                       # the heavier VM tests (pytest -m vm tests/vm)
"""

from __future__ import annotations

import sys

from invoke import Collection, task

from gaia.errors import friendly


@task(help={"app": "guest application: redis, memcached, mariadb or mongodb"})
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
        "app": "redis, memcached, mariadb or mongodb",
        "syncs": "periodic syncs to measure",
        "ops_per_sync": "operations (50% reads, 50% updates) between syncs",
        "records": "records loaded before the first sync",
        "mem": "guest RAM in MiB (0: what the app needs: 256, MariaDB 320, MongoDB 384)",
        "reconnect": "open a new client connection before every batch",
        "sync_on_syn": "sync when the guest accepts a connection (default on)",
        "full_diff": "also time a full two-file diff per sync, for comparison",
        "save": "save the result record under results/vm_sync",
        "ordering": "local (in-process) or apus (frames and Algorithm 1 through APUS)",
    }
)
@friendly
def sync_run(c, app="redis", syncs=5, ops_per_sync=1000, records=1000, mem=0,
             reconnect=False, sync_on_syn=True, full_diff=True, save=True, ordering="local"):
    """Run a replicated guest under load, sync every K ops, print the per-sync table."""
    from rich.console import Console

    from analysis.store import save_record
    from gaia.paths import new_run_dir
    from gaia.vm.runner import SyncRunConfig, run_sync_run, sync_tables

    console = Console()
    cfg = SyncRunConfig(app=app, syncs=int(syncs), ops_per_sync=int(ops_per_sync),
                        records=int(records), mem_mib=int(mem) or None, reconnect=reconnect,
                        sync_on_syn=sync_on_syn, full_diff=full_diff, ordering=ordering)
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


@task(
    help={
        "app": "redis, memcached, mariadb or mongodb",
        "ordering": "local or apus",
        "records": "records loaded (writes recorded)",
        "run": "seconds of the run phase (YCSB workload A)",
        "kill_after": "seconds into the run phase at which the leader VM is killed",
        "heal": "afterwards promote the standby, sync, fail over again, compare digests",
    }
)
@friendly
def kill(c, app="redis", ordering="local", records=500, run=6, kill_after=2.0, heal=True):
    """Kill the leader VM under YCSB; report lost acknowledged writes and recovery time."""
    import json

    from rich.console import Console

    from gaia.errors import GaiaError
    from gaia.paths import new_run_dir
    from gaia.vm.faults import leader_kill_run

    console = Console()
    with console.status("starting") as status:
        result = leader_kill_run(app, run_dir=new_run_dir("vm_kill"), ordering=ordering,
                                 records=int(records), run_s=int(run),
                                 kill_after_s=float(kill_after), heal=heal,
                                 progress=status.update)
    console.print_json(json.dumps(result.metrics()))
    if not result.ok():
        raise GaiaError(f"leader-VM kill failed its checks: {result.check.summary()}, "
                        f"recovery {result.recovery_s} s", "see the run directory's logs")
    console.print("vm kill: ok")


@task(help={"full": "every app at full size (default: the quick subset, ~3 min)"})
@friendly
def sync(c, full=False):
    """The vm_sync experiment (records under results/) and its figure vm_divergent_pages."""
    from gaia.experiments.reproduce import reproduce

    print(f"report: {reproduce(full=full, only=['vm_sync'])}")


@task
def test(c):
    """The VM tests beyond the default suite's smoke test (boots several guests)."""
    c.run(f"{sys.executable} -m pytest -m vm tests/vm -q", pty=False)


NAMESPACE = Collection("vm", build, smoke, sync_run, sync, kill, test)
