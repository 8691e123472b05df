"""Leader-VM kill runs for the fault campaigns (`invoke faults --infra vm` calls
`leader_kill_run`): YCSB with recorded writes against the replicated guest, the leader VM
killed at a chosen moment, the major backup serving on.

What one run measures:
- lost acknowledged writes: every write the client saw acknowledged must be readable on
  the new leader (workloads.writelog.check_writes over the whole recording, load phase
  included);
- recovery: seconds from the kill to the client's next acknowledged write (the issue's
  bound is 5 s); the op in flight at the kill is normally that write, answered by the
  backup on the same TCP connection (same guest address, TCP state shared since the last
  sync, every agreed frame delivered to it);
- digests: a digest of the YCSB table read back through the binding on the new leader,
  then (with `heal`) the standby promoted to a new major backup, synced, the new leader
  killed as well, and the same digest read from the healed backup: equal digests mean
  the healed pair holds the same data.
"""

from __future__ import annotations

import hashlib
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gaia.errors import ConfigError, GaiaError
from gaia.vm.group import VmGroup
from gaia.vm.guest import binding_props
from gaia.vm.ycsb_infra import PeriodicSync
from workloads.writelog import WriteCheck, check_against, read_recording, value_hash

TABLE = "usertable"
RECOVERY_BOUND_S = 5.0  # issue 10: the client's next op succeeds within 5 s of the kill


@dataclass
class LeaderKillResult:
    """One leader-VM kill: what was lost, how long the client waited, digests."""

    app: str
    ordering: str
    kill_after_s: float  # asked: seconds into the run phase
    killed_at_s: float  # measured: seconds into the run phase when the VM died
    recovery_s: float | None  # kill -> next acknowledged write (None: none after it)
    failover_s: float  # fail_leader(): kill until the major backup serves
    check: WriteCheck
    digests: dict[str, str] = field(default_factory=dict)
    run_ops: int = 0
    run_errors: list[str] = field(default_factory=list)
    syncs: int = 0
    sync_errors: list[str] = field(default_factory=list)

    @property
    def digests_equal(self) -> bool | None:
        """Leader and healed backup agree (None when the run did not heal)."""
        if "healed_backup" not in self.digests:
            return None
        return self.digests["healed_backup"] == self.digests["healed_leader"]

    def ok(self, bound_s: float = RECOVERY_BOUND_S) -> bool:
        return (self.check.ok and self.recovery_s is not None
                and self.recovery_s <= bound_s and self.digests_equal is not False)

    def metrics(self) -> dict[str, Any]:
        return {
            "app": self.app, "ordering": self.ordering, "kill_after_s": self.kill_after_s,
            "killed_at_s": round(self.killed_at_s, 3),
            "recovery_s": None if self.recovery_s is None else round(self.recovery_s, 4),
            "failover_s": round(self.failover_s, 4), "acknowledged": self.check.acknowledged,
            "checked_keys": self.check.checked_keys,
            "lost_acknowledged_writes": len(self.check.missing),
            "stale": len(self.check.stale), "digests": dict(self.digests),
            "digests_equal": self.digests_equal, "run_ops": self.run_ops,
            "run_errors": self.run_errors[:10], "syncs": self.syncs,
            "sync_errors": self.sync_errors[:10],
        }  # fmt: skip


def recovery_after(recording: Iterable[Any], kill_ns: int) -> float | None:
    """Seconds from `kill_ns` to the first acknowledged write that completed after it."""
    ends = [w.end for w in recording if w.ok and w.end > kill_ns]
    return (min(ends) - kill_ns) / 1e9 if ends else None


def table_digest(db: Any, keys: Iterable[str], table: str = TABLE) -> str:
    """SHA-256 over every key's fields (name, value hash), keys and fields sorted."""
    h = hashlib.sha256()
    for key in sorted(set(keys)):
        _, cells = db.read(table, key, None)
        h.update(key.encode() + b"\0")
        for name in sorted(cells):
            h.update(f"{name}={value_hash(cells[name])};".encode())
        h.update(b"\n")
    return h.hexdigest()


def _config(app: str, workload: str, records: int, ops: int, run_s: int | None,
            threads: int, path: Path, props: dict[str, str], seed: int | None):
    """YCSB properties: the workload, every write recorded; for the run phase `ops` at
    most (0: no cap) for `run_s` seconds (maxexecutiontime; None: the load phase)."""
    from workloads.properties import validate
    from workloads.ycsb import YcsbOptions, configure

    overrides = [] if run_s is None else [f"maxexecutiontime={run_s}"]
    overrides += [] if seed is None else [f"gaia.seed={seed}"]
    opts = YcsbOptions(app=app, workload=workload, records=records, ops=ops, threads=threads,
                       record_writes=path, overrides=overrides, save=False, status=False)
    return validate({**props, **configure(opts).props})


def leader_kill_run(
    app: str = "redis",
    *,
    run_dir: Path | None = None,
    workload: str = "a",
    records: int = 500,
    run_s: int = 6,
    ops: int = 0,
    threads: int = 1,
    kill_after_s: float = 2.0,
    ordering: str = "local",
    sync_interval_s: float = 1.0,
    heal: bool = True,
    seed: int | None = None,
    mem_mib: int | None = None,
    progress: Callable[[str], None] = lambda msg: None,
) -> LeaderKillResult:
    """Run YCSB (load, then a run phase of `run_s` seconds, at most `ops` operations when
    ops > 0) with recorded writes against a replicated guest of `app`, kill the leader VM
    `kill_after_s` seconds into the run phase, let the run go on against the major
    backup, and check the outcome (see the module docstring). `ordering`: "local" or
    "apus" (VmGroup). A run phase that ends before the kill is a ConfigError."""
    from workloads.bindings.endpoint import Endpoint
    from workloads.runner import PhaseSpec, run_phase

    if not 0 <= kill_after_s < run_s or records < 1 or ops < 0:
        raise ConfigError(
            f"bad leader-kill run (kill_after_s={kill_after_s}, run_s={run_s}, "
            f"records={records}, ops={ops})",
            "use 0 <= kill_after_s < run_s, records >= 1, ops >= 0 (0: no cap)",
        )
    work = Path(run_dir) if run_dir else Path(tempfile.mkdtemp(prefix="gaia-vm-kill-"))
    work.mkdir(parents=True, exist_ok=True)
    recording = work / "writes.jsonl"
    recording.unlink(missing_ok=True)
    progress(f"booting the {app} guest pair ({ordering} ordering)")
    with VmGroup(work, app=app, mem_mib=mem_mib, ordering=ordering,
                 standby_every=2 if heal else 0) as group:
        group.start()
        host, port = group.endpoint
        endpoint = Endpoint(host, port)
        props = binding_props(app, host, port)
        load_config = _config(app, workload, records, 1, None, threads, recording, props, seed)
        config = _config(app, workload, records, ops, run_s, threads, recording, props, seed)
        syncer = PeriodicSync(group, sync_interval_s)
        try:
            progress(f"loading {records} records")
            run_phase(PhaseSpec(app, endpoint, load_config, True, threads, 1, recording), False)
            killed: dict[str, float] = {}
            run_started = time.monotonic()

            def kill() -> None:
                time.sleep(kill_after_s)
                killed["failover_s"] = group.fail_leader()
                killed["at"] = group.last_kill - run_started
                killed["ns"] = group.last_kill_ns

            killer = threading.Thread(target=kill, name="gaia-vm-kill", daemon=True)
            progress(f"running for {run_s} s, killing the leader VM after {kill_after_s} s")
            killer.start()
            result = run_phase(PhaseSpec(app, endpoint, config, False, threads, 1, recording),
                               False)
            run_took = time.monotonic() - run_started
            killer.join(120)
            if "ns" not in killed or killed["at"] >= run_took:
                raise ConfigError(
                    f"the run phase ended {run_took:.1f} s in, before the leader was killed",
                    "raise ops (or set ops=0) or lower kill_after_s",
                )
        finally:
            syncer.stop()
        writes = read_recording(recording)
        progress("checking acknowledged writes on the new leader")
        db = _open_checker(app, endpoint, binding_props(app, host, port))
        try:
            check = check_against(writes, db, TABLE)
            keys = [w.key for w in writes]
            digests = {"leader_after_run": table_digest(db, keys)}
            if heal:
                progress("healing: promoting the standby, syncing, failing over to it")
                digests.update(_heal(group, db, keys))
        finally:
            db.cleanup()
        return LeaderKillResult(
            app=app, ordering=ordering, kill_after_s=kill_after_s, killed_at_s=killed["at"],
            recovery_s=recovery_after(writes, int(killed["ns"])),
            failover_s=killed["failover_s"], check=check, digests=digests,
            run_ops=result.operations, run_errors=list(result.errors),
            syncs=len(group.records), sync_errors=list(syncer.errors),
        )  # fmt: skip


def _open_checker(app: str, endpoint: Any, props: dict[str, str], attempts: int = 3) -> Any:
    """The checker's own connection to the new leader. Retried: in one of our first
    MariaDB runs the first new connection after the failover was reset during the
    handshake (the YCSB client's connection, opened before the kill, was not affected)."""
    from workloads.bindings import open_binding

    for attempt in range(attempts):
        try:
            return open_binding(app, endpoint, props)
        except GaiaError:
            if attempt + 1 == attempts:
                raise
            time.sleep(1.0)
    raise AssertionError("unreachable")


def _heal(group: VmGroup, db: Any, keys: list[str]) -> dict[str, str]:
    """Standby -> major backup, resync, then lose the leader again: the healed backup
    must serve the same table."""
    if group.standby is None:
        raise GaiaError("no standby checkpoint was taken before the kill",
                        "run longer before the kill (the standby checkpoints every 2 syncs)")
    group.promote_standby()
    group.sync()
    leader_digest = table_digest(db, keys)
    group.fail_leader()
    return {"healed_leader": leader_digest, "healed_backup": table_digest(db, keys)}
