"""Measure the guard: checkpoint pause, time and size per app and key count, and recovery
time (restore + replay of a log suffix of N entries), on real servers under the shim.

    python -m gaia.intercept.guard_bench --apps redis,memcached,mariadb,mongodb \\
        --keys 10000,100000 --suffix 2000 [--record]

Per (app, keys): a leader + one backup (LocalGroup); `keys` items of `--value-bytes` are
written through the leader and replayed on the backup; the backup is checkpointed
`--repeat` times (a few writes between) and the median is reported; then its server is
killed (-9), `--suffix` single-write entries are committed while it is down, and the
guard recovers it (restore + suffix replay); digests are compared at the end.
`mariadb-backup` is MariaDB with snapshot_method="backup" (the server keeps running).
--record saves one result record per row (experiment "guard").
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from gaia.intercept.checkpoint_store import CheckpointStore
from gaia.intercept.guard import group_guard
from gaia.intercept.guard_load import WRITES, prepare
from gaia.intercept.guard_policy import GuardPolicy
from gaia.intercept.local_group import LocalGroup

VARIANTS: dict[str, tuple[str, dict[str, Any]]] = {
    "redis": ("redis", {}),
    "memcached": ("memcached", {"memory_mb": 512}),
    "mariadb": ("mariadb", {}),
    "mariadb-backup": ("mariadb", {"snapshot_method": "backup"}),
    "mongodb": ("mongodb", {}),
}
console = Console(stderr=True)


def _preload(server: Any, keys: int, value_bytes: int) -> None:
    value = b"v" * value_bytes
    server.put_many((f"user{i:09d}", value) for i in range(keys))


def _suffix(app: str, server: Any, entries: int) -> None:
    """`entries` writes on one connection, each its own log entry (one request, one
    answer before the next)."""
    prepare(app, server)
    client = server.client()
    try:
        for i in range(entries):
            WRITES[app](client, i, "s")
    finally:
        client.close()


def measure(variant: str, keys: int, suffix: int, repeat: int, value_bytes: int) -> dict:
    app, server_args = VARIANTS[variant]
    with LocalGroup(app, replicas=2, server_args=server_args) as group, \
            tempfile.TemporaryDirectory(prefix="gaia-guard-bench-") as root:
        backup, leader = group.members[1], group.leader.server
        guard = group_guard(group, backup, CheckpointStore(Path(root)),
                            GuardPolicy(keep=2), timeout=600.0)
        console.log(f"{variant} {keys} keys: loading")
        _preload(leader, keys, value_bytes)
        checkpoints = []
        for round_ in range(repeat):
            _suffix(app, leader, 5)  # a new index for every checkpoint
            group.wait_caught_up(600)
            checkpoints.append(guard.checkpoint())
            console.log(f"{variant} {keys} keys: checkpoint {round_ + 1}/{repeat} "
                        f"paused {checkpoints[-1].pause_s:.3f} s")
        backup.server.process.kill()
        console.log(f"{variant} {keys} keys: backup killed; {suffix} entries committed")
        _suffix(app, leader, suffix)
        recovery = guard.recover()
        group.wait_caught_up(600)
        digests = group.digests()
    return {
        "app": variant, "keys": keys, "value_bytes": value_bytes,
        "size_bytes": checkpoints[-1].size,
        "pause_s": statistics.median(c.pause_s for c in checkpoints),
        "digest_s": statistics.median(c.digest_s for c in checkpoints),
        "snapshot_s": statistics.median(c.snapshot_s for c in checkpoints),
        "checkpoint_total_s": statistics.median(c.total_s for c in checkpoints),
        "restore_s": recovery.restore_s, "replay_s": recovery.replay_s,
        "suffix_entries": recovery.suffix_entries,
        "replay_entries_per_s": recovery.suffix_entries / max(recovery.replay_s, 1e-9),
        "recovery_total_s": recovery.total_s,
        "digests_equal": len(set(digests.values())) == 1 and len(digests) == 2,
    }


def _table(rows: list[dict]) -> Table:
    table = Table(title="guard: checkpoint and recovery (median of checkpoints; noisy 2-core box)")
    for name in ("app", "keys", "size MB", "pause s", "digest s", "snapshot s", "ckpt total s",
                 "restore s", "suffix", "replay s", "entries/s", "equal"):
        table.add_column(name, justify="right")
    for r in rows:
        table.add_row(r["app"], f"{r['keys']:,}", f"{r['size_bytes'] / 1e6:.2f}",
                      f"{r['pause_s']:.3f}", f"{r['digest_s']:.3f}", f"{r['snapshot_s']:.3f}",
                      f"{r['checkpoint_total_s']:.3f}", f"{r['restore_s']:.3f}",
                      str(r["suffix_entries"]), f"{r['replay_s']:.2f}",
                      f"{r['replay_entries_per_s']:,.0f}", str(r["digests_equal"]))
    return table


def _record(row: dict, suffix: int, repeat: int) -> Path:
    from analysis.records import ResultRecord
    from analysis.store import save_record

    rec = ResultRecord(experiment="guard", infra="local", app=row["app"], transport="shm",
                       durability="memory",
                       config={"keys": row["keys"], "value_bytes": row["value_bytes"],
                               "suffix": suffix, "repeat": repeat, "replicas": 2},
                       metrics={k: v for k, v in row.items() if k not in ("app",)})
    return save_record(rec)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--apps", default="redis,memcached,mariadb,mariadb-backup,mongodb")
    parser.add_argument("--keys", default="10000,100000")
    parser.add_argument("--suffix", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--value-bytes", type=int, default=100)
    parser.add_argument("--record", action="store_true", help="save result records")
    args = parser.parse_args(argv)
    rows = []
    for variant in args.apps.split(","):
        for keys in (int(k) for k in args.keys.split(",")):
            rows.append(measure(variant, keys, args.suffix, args.repeat, args.value_bytes))
            if args.record:
                console.log(f"record {_record(rows[-1], args.suffix, args.repeat)}")
    Console(width=160).print(_table(rows))
    return 0 if all(r["digests_equal"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
