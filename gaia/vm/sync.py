"""Clone and sync of QEMU guests, as measured in DESIGN.md "VM sync, measured".

Clone: stop A; copy A's RAM file to B's; start B with `-S -incoming defer`; set
x-ignore-shared on both (QEMU 7.2 cannot set it on the command line); B listens, A
migrates over a unix socket (only CPU/device state travels: the RAM block is shared);
poll query-migrate; wait for B paused; cont both.

Sync: pre-start B' on B's RAM file with `-S -incoming defer` (QEMU does not touch RAM
while waiting); hold and drain the switch; stop A and B; page sync (hash diff -> dirty
sets -> union -> Merkle + Algorithm 1 -> copy divergent pages into B's RAM file ->
verify every page hash); migrate A -> B'; cont A; quit B; cont B'; release the switch.
Old B stays paused from the page copy until it is killed. A sync whose copy is
incomplete raises IncompleteSyncError before anything resumes on the backup side.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from gaia.errors import GaiaError
from gaia.vm.channel import BackupEndpoint, WireComparisonChannel, direct_channel
from gaia.vm.hashing import PAGE_SIZE
from gaia.vm.pagesync import (
    ArrayStore,
    Copier,
    StepTimer,
    SyncOutcome,
    SyncState,
    copy_pages,
    sync_pages,
)
from gaia.vm.qemu import QemuVM, RamFile


def ram_store(ram: RamFile) -> ArrayStore:
    """The RAM file as a PageStore (a shared mapping: writes land in the guest's RAM)."""
    return ArrayStore(ram.array())


def set_ignore_shared(*vms: QemuVM) -> None:
    for vm in vms:
        vm.execute(
            "migrate-set-capabilities",
            capabilities=[{"capability": "x-ignore-shared", "state": True}],
        )


def migrate_state(src: QemuVM, dst: QemuVM, sock: Path, timeout: float = 60.0) -> dict[str, Any]:
    """State-only migration src -> dst (dst started with -incoming defer); both end paused.

    Returns the source's final query-migrate record."""
    sock.unlink(missing_ok=True)
    set_ignore_shared(src, dst)
    dst.execute("migrate-incoming", uri=f"unix:{sock}")
    src.execute("migrate", uri=f"unix:{sock}")
    deadline = time.monotonic() + timeout
    while True:
        info = src.execute("query-migrate")
        status = info.get("status")
        if status == "completed":
            break
        if status in ("failed", "cancelled"):
            raise GaiaError(
                f"migration {src.name} -> {dst.name} {status}: {info.get('error-desc', '')}",
                f"see {src.run_dir}/*.qemu.log",
            )
        if time.monotonic() > deadline:
            raise GaiaError(f"migration {src.name} -> {dst.name} did not finish", "")
        time.sleep(0.0005)
    assert dst.qmp is not None
    dst.qmp.wait_status("paused", timeout)
    sock.unlink(missing_ok=True)
    return info


def state_bytes(info: dict[str, Any]) -> int:
    """Bytes the migration stream carried (CPU/device state; RAM is shared, not sent)."""
    ram = info.get("ram", {})
    return int(ram.get("transferred", 0))


def clone_vm(leader: QemuVM, backup: QemuVM, boot_timeout: float = 60.0) -> dict[str, float]:
    """Make `backup` (not yet started) an exact clone of running `leader`. Timings in ms."""
    t = StepTimer()
    with t.step("stop"):
        leader.execute("stop")
    with t.step("copy_ram"):
        leader.ram.copy_to(backup.ram)
    backup.incoming = True
    with t.step("start_backup"):
        backup.start(timeout=boot_timeout)
    with t.step("migrate"):
        migrate_state(leader, backup, backup.run_dir / f"{backup.name}.migrate.sock")
    with t.step("cont"):
        leader.resume()
        backup.resume()
    return t.ms


@dataclass
class VmSyncRecord:
    """One sync: page counts, bytes per strategy, the leader's pause by step."""

    index: int
    outcome: SyncOutcome
    state_bytes: int
    leader_pause_ms: float
    steps_ms: dict[str, float] = field(default_factory=dict)
    full_diff_ms: float | None = None
    reason: str = "periodic"
    catch_up_ms: float = 0.0  # inputs held before the stop, the backup finishing its work

    def metrics(self) -> dict[str, Any]:
        m = self.outcome.as_metrics()
        for k in ("ours_bytes", "primary_backup_bytes", "plover_bytes"):
            m[k] += self.state_bytes
        m.update(
            index=self.index,
            state_bytes=self.state_bytes,
            leader_pause_ms=round(self.leader_pause_ms, 3),
            catch_up_ms=round(self.catch_up_ms, 3),
            reason=self.reason,
        )
        m.update({f"{k}_ms": round(v, 3) for k, v in self.steps_ms.items()})
        if self.full_diff_ms is not None:
            m["full_diff_ms"] = round(self.full_diff_ms, 3)
        return m


def full_file_diff_ms(a: RamFile, b: RamFile) -> float:
    """What a naive sync would pay: compare two whole RAM files page by page (ms)."""
    start = time.perf_counter_ns()
    x = a.array().reshape(-1, PAGE_SIZE)
    y = b.array().reshape(-1, PAGE_SIZE)
    step = 16384
    for lo in range(0, x.shape[0], step):
        np.flatnonzero(np.any(x[lo : lo + step] != y[lo : lo + step], axis=1))
    return (time.perf_counter_ns() - start) / 1e6


def sync_vms(
    leader: QemuVM,
    backup: QemuVM,
    fresh: QemuVM,
    state: SyncState,
    index: int,
    switch_hold=None,
    copier: Copier = copy_pages,
    measure_full_diff: bool = False,
    reason: str = "periodic",
    before_resume: Callable[[RamFile, RamFile], None] | None = None,
    make_channel: Callable[[BackupEndpoint], WireComparisonChannel] = direct_channel,
) -> VmSyncRecord:
    """One sync: `fresh` (started with incoming=True on backup.ram) replaces `backup`.

    `switch_hold()` (optional) is called before the stop: it must return once no frame
    is in flight to either VM. On IncompleteSyncError the leader is resumed, the backup
    and `fresh` are left paused (not resumed as if exact) for the caller to discard.
    `before_resume(leader_ram, backup_ram)` runs while both are still paused, after the
    verification (tests compare the files byte for byte there); not counted in the pause.
    `make_channel` carries Algorithm 1's messages (direct, or APUS requests/replies)."""
    if fresh.ram.path != backup.ram.path:
        raise GaiaError("the fresh backup QEMU must map the backup's RAM file", "")
    if switch_hold is not None:
        switch_hold()
    t = StepTimer()
    pause_start = time.perf_counter_ns()
    with t.step("stop"):
        leader.execute("stop")
        backup.execute("stop")
    try:
        outcome = sync_pages(ram_store(leader.ram), ram_store(backup.ram), state, t,
                             copier=copier, make_channel=make_channel)
    except GaiaError:
        leader.execute("cont")
        raise
    if before_resume is not None:
        paused_at = time.perf_counter_ns()
        before_resume(leader.ram, backup.ram)
        pause_start += time.perf_counter_ns() - paused_at
    with t.step("migrate"):
        info = migrate_state(leader, fresh, fresh.run_dir / f"{fresh.name}.migrate.sock")
    with t.step("cont"):
        leader.resume()
    pause_ms = (time.perf_counter_ns() - pause_start) / 1e6
    diff_ms = full_file_diff_ms(leader.ram, backup.ram) if measure_full_diff else None
    backup.kill()
    fresh.execute("cont")
    return VmSyncRecord(index, outcome, state_bytes(info), pause_ms, dict(t.ms), diff_ms, reason)
