"""Experiment "vm_sync": replicated guests per app under load, synced every K operations.

Feeds the figure `vm_divergent_pages` (dirty vs divergent pages and bytes per sync, the
leader's pause by step) for every app: redis, memcached, mariadb (mariadbd in the guest)
and mongodb (SecantusDB on CPython in the guest) in full mode, redis and memcached in
quick mode; the redis run again with APUS carrying the frames and Algorithm 1's
messages; in full mode a sync-on-SYN comparison (every batch on a new connection, with
and without syncing when the guest accepts it).
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from analysis.store import save_record
from gaia.experiments import Experiment
from gaia.paths import new_run_dir
from gaia.vm.runner import SyncRunConfig, run_sync_run

console = Console(stderr=True)


APPS = ("redis", "memcached", "mariadb", "mongodb")
QUICK_APPS = ("redis", "memcached")  # MariaDB and MongoDB guests boot for minutes under TCG


def configs(full: bool) -> list[SyncRunConfig]:
    """Quick (~3 min on 2 cores): redis and memcached, and redis with APUS carrying the
    frames and Algorithm 1; full: every app, more load, and the sync-on-SYN comparison."""
    syncs, ops, records = (20, 10_000, 10_000) if full else (3, 1_000, 1_000)
    runs = [SyncRunConfig(app=app, syncs=syncs, ops_per_sync=ops, records=records)
            for app in (APPS if full else QUICK_APPS)]
    # the same per-app run with frames and Algorithm 1's messages through APUS
    runs.append(SyncRunConfig(app="redis", syncs=syncs, ops_per_sync=ops, records=records,
                              ordering="apus"))
    if full:
        runs += [SyncRunConfig(app="redis", syncs=max(3, syncs // 4), ops_per_sync=ops // 2,
                               records=records, reconnect=True, sync_on_syn=on,
                               full_diff=False)
                 for on in (True, False)]
    return runs


def run(full: bool) -> list[Path]:
    saved = []
    for cfg in configs(full):
        label = (f"{cfg.app} reconnect={cfg.reconnect} sync_on_syn={cfg.sync_on_syn} "
                 f"ordering={cfg.ordering}")
        with console.status(f"vm_sync: {label}") as status:
            _, record = run_sync_run(cfg, new_run_dir("vm_sync"), progress=status.update)
        saved.append(save_record(record))
        t = record.metrics["totals"]
        console.print(f"vm_sync {label}: {t['divergent']} divergent of {t['dirty_union']} dirty")
    return saved


EXPERIMENT = Experiment(
    name="vm_sync",
    description="VM sync: dirty vs divergent pages, bytes per strategy, leader pause by step",
    run=run,
    figures=("vm_divergent_pages",),
    quick_minutes=2.0,
)
