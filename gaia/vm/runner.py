"""`invoke vm.sync-run`: a replicated guest under a YCSB-A-like load, synced every K
operations; one row per sync (page counts, bytes per strategy, the leader's pause by
step) and one result record (experiment "vm_sync").

The load: `records` keys loaded first, then per sync K operations, half reads and half
updates of one 100-byte field, keys drawn from a zipfian (YCSB's workload A shape),
sent through the app's YCSB binding (same schema as a YCSB run; the faithful YCSB
driver lives in `workloads/` and drives the VM through `--infra vm`).
With `reconnect=True` every batch opens a new connection, which is what makes the
sync-on-SYN choice matter.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from rich.table import Table

from analysis.records import ResultRecord
from gaia.errors import ConfigError, GaiaError
from gaia.vm.group import VmGroup
from gaia.vm.guest import binding_props
from gaia.vm.sync import VmSyncRecord
from workloads.measurements import Status

FIELDS = 10
FIELD_BYTES = 100
TABLE = "usertable"


@dataclass
class SyncRunConfig:
    app: str = "redis"
    syncs: int = 5
    ops_per_sync: int = 1000
    records: int = 1000
    mem_mib: int | None = None  # default: what the app's guest needs
    sync_on_syn: bool = True
    reconnect: bool = False
    full_diff: bool = True
    seed: int = 1
    ordering: str = "local"  # "apus": frames and Algorithm 1's messages through APUS

    def check(self) -> None:
        if self.syncs < 1 or self.ops_per_sync < 0 or self.records < 1:
            raise ConfigError(
                f"bad sync-run sizes (syncs={self.syncs}, ops={self.ops_per_sync}, "
                f"records={self.records})", "use syncs >= 1, ops >= 0, records >= 1",
            )
        if self.mem_mib is not None and self.mem_mib < 128:
            raise ConfigError(f"{self.mem_mib} MiB is too little guest RAM", "use >= 128")


class _Client:
    """Reads and one-field updates through the app's YCSB binding, on one connection
    (a binding error is a failed run here: a sync must never cost a client an op)."""

    def __init__(self, app: str, host: str, port: int) -> None:
        from workloads.bindings import open_binding
        from workloads.bindings.endpoint import Endpoint

        self.db = open_binding(app, Endpoint(host, port), binding_props(app, host, port))
        self.db.prepare_load(TABLE, [f"field{i}" for i in range(FIELDS)])

    def _check(self, status: Status, what: str, key: str) -> None:
        if not status.ok:
            raise GaiaError(f"{what} {key} failed in the guest: {status} {self.db.errors[-1:]}",
                            "see the VM run directory's console logs")

    def insert(self, key: str, value: bytes) -> None:
        values = {f"field{i}": value for i in range(FIELDS)}
        self._check(self.db.insert(TABLE, key, values), "insert", key)

    def update(self, key: str, field: int, value: bytes) -> None:
        self._check(self.db.update(TABLE, key, {f"field{field}": value}), "update", key)

    def read(self, key: str) -> None:
        self._check(self.db.read(TABLE, key, None)[0], "read", key)

    def close(self) -> None:
        self.db.cleanup()


def _ops(client: _Client, rng: np.random.Generator, n: int, records: int) -> None:
    keys = (rng.zipf(1.1, n) - 1) % records
    updates = rng.random(n) < 0.5
    for k, is_update in zip(keys, updates, strict=True):
        key = f"user{int(k)}"
        if is_update:
            value = rng.integers(32, 127, FIELD_BYTES, dtype=np.uint8).tobytes()
            client.update(key, int(rng.integers(FIELDS)), value)
        else:
            client.read(key)


STEPS = ("stop", "hash", "hash_backup", "tree", "traversal", "copy", "verify", "migrate", "cont")


def sync_tables(records: list[VmSyncRecord], title: str) -> tuple[Table, Table]:
    """Two tables (pages and bytes; the leader's pause by step) that fit 100 columns."""
    pages = Table(title=f"{title}: pages and bytes per sync")
    for col in ("#", "why", "dirty L", "dirty B", "dirty ∪", "divergent", "ours KiB",
                "primary-backup KiB", "PLOVER KiB", "state KiB"):
        pages.add_column(col, justify="right")
    pause = Table(title=f"{title}: leader pause per sync (ms)")
    for col in ("#", "total", *STEPS, "full diff"):
        pause.add_column(col, justify="right")
    for r in records:
        m = r.metrics()
        pages.add_row(
            str(r.index), r.reason, *(str(m[k]) for k in ("dirty_leader", "dirty_backup",
                                                          "dirty_union", "divergent")),
            *(f"{m[k] / 1024:.0f}" for k in ("ours_bytes", "primary_backup_bytes",
                                             "plover_bytes", "state_bytes")),
        )
        pause.add_row(
            str(r.index), f"{m['leader_pause_ms']:.1f}",
            *(f"{m.get(f'{s}_ms', 0.0):.1f}" for s in STEPS),
            f"{m['full_diff_ms']:.1f}" if "full_diff_ms" in m else "-",
        )
    return pages, pause


def run_sync_run(
    cfg: SyncRunConfig, run_dir: Path, progress: Callable[[str], None] = lambda msg: None
) -> tuple[list[VmSyncRecord], ResultRecord]:
    cfg.check()
    rng = np.random.default_rng(cfg.seed)
    progress(f"booting the {cfg.app} guest and cloning it")
    with VmGroup(run_dir, app=cfg.app, mem_mib=cfg.mem_mib, sync_on_syn=cfg.sync_on_syn,
                 ordering=cfg.ordering) as group:
        started = time.monotonic()
        group.start()
        boot_s = time.monotonic() - started
        host, port = group.endpoint
        client = _Client(cfg.app, host, port)
        progress(f"loading {cfg.records} records")
        for k in range(cfg.records):
            client.insert(f"user{k}", rng.integers(32, 127, FIELD_BYTES, dtype=np.uint8).tobytes())
        group.sync(reason="load", measure_full_diff=cfg.full_diff)
        periodic: list[VmSyncRecord] = []
        for i in range(cfg.syncs):
            if cfg.reconnect:
                client.close()
                client = _Client(cfg.app, host, port)
            _ops(client, rng, cfg.ops_per_sync, cfg.records)
            periodic.append(group.sync(measure_full_diff=cfg.full_diff))
            progress(f"sync {i + 1}/{cfg.syncs}: {periodic[-1].outcome.counts.divergent} divergent")
        client.close()
        all_records = list(group.records)
        checker = group.switch.checker
        result = _result_record(cfg, all_records, boot_s)
        result.metrics.update(
            output_matched_bytes=checker.matched_bytes,
            output_mismatched_bytes=checker.mismatched_bytes,
            gate_gave_up=group.switch.gate.gave_up,
            accel=group.spec.accel,
        )
    return all_records, result


def _result_record(cfg: SyncRunConfig, records: list[VmSyncRecord], boot_s: float) -> ResultRecord:
    rec = ResultRecord(experiment="vm_sync", infra="vm", app=cfg.app, config=asdict(cfg))
    per_sync = [r.metrics() for r in records]
    measured = [m for m in per_sync if m["reason"] == "periodic"]
    rec.add_latencies_ns("leader_pause", [m["leader_pause_ms"] * 1e6 for m in measured])
    totals = {
        k: int(sum(m[k] for m in measured))
        for k in ("dirty_leader", "dirty_union", "divergent", "ours_bytes",
                  "primary_backup_bytes", "plover_bytes", "state_bytes")
    }
    rec.metrics.update(syncs=per_sync, totals=totals, boot_s=round(boot_s, 2),
                       n_pages=records[0].outcome.counts.n_pages if records else 0)
    return rec
