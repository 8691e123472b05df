"""A replicated VM: leader, major backup and standby, fed by the frame switch.

Roles (proposal §2.3.1): the leader and the major backup both execute every agreed input
(2 x V resources); the standby agrees without executing and holds a checkpoint of the
major backup (its RAM file + device state) plus the frames agreed since. Failover: the
leader VM dies -> the major backup becomes the leader (the switch sends its frames to
the clients); the standby is promoted to a new major backup from its checkpoint, and the
next sync makes it an exact copy of the leader.

Ordering: `ordering="apus"` runs the three members' host sides as APUS replicas
(apus_binding.py): frames are agreed by APUS, Algorithm 1 travels as APUS requests and
replies, and the major backup's member takes the APUS lead when the leader dies.
`"local"` (default) agrees frames in-process and calls the backup end directly.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from gaia.errors import ConfigError, GaiaError
from gaia.vm.apus_binding import ApusMembers, ApusOrderer
from gaia.vm.channel import BackupEndpoint, WireComparisonChannel, direct_channel
from gaia.vm.guest import Guest, build_guest
from gaia.vm.ordering import LocalOrderer
from gaia.vm.pagesync import Copier, SyncState, copy_pages
from gaia.vm.qemu import QemuVM, RamFile, VmSpec, choose_accel
from gaia.vm.switch import FrameSwitch
from gaia.vm.sync import VmSyncRecord, clone_vm, migrate_state, ram_store, sync_vms

log = logging.getLogger(__name__)


@dataclass
class StandbyImage:
    """The standby's checkpoint: a RAM file, a device-state file, the frame position."""

    ram: RamFile
    state_file: Path
    frame_position: int
    taken_at: float = field(default_factory=time.monotonic)


ORDERINGS = ("local", "apus")  # who agrees on inbound frames and carries the sync


class VmGroup:
    """Boot, clone, sync, checkpoint and fail over one replicated guest.

    `sync_on_syn` (default on): a connection opened since the last sync gets another
    initial sequence number in the backup's guest, so the backup cannot take part in it
    (and would not have its writes at a failover) until the next sync; syncing as the
    leader answers the SYN gives every connection to the backup at once."""

    def __init__(
        self,
        run_dir: Path,
        app: str = "redis",
        mem_mib: int | None = None,  # default: what the app's guest needs
        sync_on_syn: bool = True,
        boot_timeout: float | None = None,
        guest: Guest | None = None,
        catch_up_timeout: float = 1.0,
        standby_every: int = 0,
        ordering: str = "local",
    ) -> None:
        if ordering not in ORDERINGS:
            raise ConfigError(f"unknown frame ordering {ordering!r}",
                              f"use one of {', '.join(ORDERINGS)}")
        self.run_dir = run_dir
        self.guest = guest or build_guest(app)
        self.mem_mib = mem_mib or self.guest.app.mem_mib
        self.boot_timeout = boot_timeout or self.guest.app.boot_timeout
        accel = choose_accel(self.guest)
        self.apus: ApusMembers | None = None
        self.orderer: LocalOrderer | ApusOrderer = LocalOrderer()
        self._make_channel: Callable[[BackupEndpoint], WireComparisonChannel] = direct_channel
        if ordering == "apus":
            self.apus = ApusMembers(Path(run_dir) / "apus").start()
            self.orderer = ApusOrderer(self.apus)
            self._make_channel = self.apus.channel
        self._sync_lock = threading.RLock()
        self._syn_event = threading.Event()
        try:
            self.switch = FrameSwitch(self.orderer, sync_on_syn, self._syn_event.set)
        except BaseException:
            self._stop_apus()
            raise
        self.spec = VmSpec(self.guest, self.switch.guest_cidr, self.mem_mib, accel=accel)
        self.leader: QemuVM | None = None
        self.backup: QemuVM | None = None
        self.standby: StandbyImage | None = None
        self.state: SyncState | None = None
        self.records: list[VmSyncRecord] = []
        self.last_catch_up_ms = 0.0
        self.last_kill, self.last_kill_ns = 0.0, 0  # when fail_leader() last killed
        self.syn_errors: list[str] = []
        self.catch_up_timeout = catch_up_timeout
        self.standby_every = standby_every  # checkpoint for the standby every N syncs
        self._spare: QemuVM | None = None
        self._spare_thread: threading.Thread | None = None
        self._incarnation = 0
        self._rams: list[RamFile] = []
        self._closed = threading.Event()
        # syncs on request: a new connection (sync_on_syn), or a reply the backup did not
        # match in time (the switch's output commit)
        self._syn_thread = threading.Thread(target=self._syn_loop, daemon=True)
        self._syn_thread.start()

    # -- helpers -----------------------------------------------------------------------
    @property
    def endpoint(self) -> tuple[str, int]:
        return self.switch.guest_ip, self.guest.app.port

    def _ram(self, tag: str) -> RamFile:
        ram = RamFile.new(tag, self.mem_mib)
        self._rams.append(ram)
        return ram

    def _vm(self, role: str, ram: RamFile, incoming: bool = False) -> QemuVM:
        self._incarnation += 1
        vm = QemuVM(f"{role}{self._incarnation}", self.spec, ram, self.run_dir, incoming)
        vm.net_path = self.switch.listen(vm.name)
        return vm

    def _quiesce(self) -> None:
        """Hold inputs, let both VMs read what they were given and the backup finish
        executing it (time recorded as catch_up_ms: clients wait, the leader runs)."""
        start = time.perf_counter_ns()
        self.switch.hold()
        self.switch.drain()
        self.switch.catch_up(self.catch_up_timeout)
        self.last_catch_up_ms = (time.perf_counter_ns() - start) / 1e6

    # -- lifecycle -----------------------------------------------------------------------
    def start(self) -> VmGroup:
        """Boot the leader, then clone it into the major backup."""
        try:
            self.leader = self._vm("leader", self._ram("leader")).start(self.boot_timeout)
            self.switch.attach("leader", self.leader.name)
            self.leader.wait_console(timeout=self.boot_timeout)
            self.clone_backup()
        except BaseException:
            self.close()
            raise
        return self

    def clone_backup(self) -> dict[str, float]:
        """(Re)create the major backup as an exact clone of the leader."""
        assert self.leader is not None
        with self._sync_lock:
            self._quiesce()
            try:
                self._drop_spare()
                if self.backup is not None:
                    self.switch.detach("backup")
                    self.backup.kill()
                    self.switch.forget(self.backup.name)
                backup = self._vm("backup", self._ram("backup"))
                timings = clone_vm(self.leader, backup, self.boot_timeout)
                self.backup = backup
                self.switch.attach("backup", backup.name)
                self.state = SyncState.after_clone(ram_store(self.leader.ram))
                backup.ram.array()  # map it now, not inside the first sync's pause
                self.switch.commit_outputs()  # an exact copy: held replies may go
            finally:
                self.switch.release()
            self._prepare_spare()
        return timings

    def sync(
        self,
        reason: str = "periodic",
        copier: Copier = copy_pages,
        measure_full_diff: bool = False,
        before_resume: Callable[[RamFile, RamFile], None] | None = None,
    ) -> VmSyncRecord:
        """Make the major backup an exact copy of the leader (both paused meanwhile)."""
        with self._sync_lock:
            if self.leader is None or self.backup is None or self.state is None:
                raise GaiaError("sync needs a running leader and major backup", "call start()")
            if self.state.resync_all:
                reason = "resync"
            fresh = self._take_spare()
            try:
                record = sync_vms(
                    self.leader,
                    self.backup,
                    fresh,
                    self.state,
                    len(self.records),
                    switch_hold=self._quiesce,
                    copier=copier,
                    measure_full_diff=measure_full_diff,
                    reason=reason,
                    before_resume=before_resume,
                    make_channel=self._make_channel,
                )
            except BaseException as exc:
                log.warning("sync %d (%s) failed: %s", len(self.records), reason, exc)
                fresh.kill()
                self.switch.forget(fresh.name)
                # The leader runs on. The backup stays paused, out of the switch: it is
                # not an exact copy and must not run (clone_backup() replaces it).
                self.switch.detach("backup")
                self.switch.release()
                raise
            self.switch.forget(self.backup.name)
            self.backup = fresh
            self.switch.attach("backup", fresh.name)
            self.switch.checker.realign()
            self.switch.gate.realign()
            self.switch.release()
            self.switch.commit_outputs()
            record.catch_up_ms = self.last_catch_up_ms
            self.records.append(record)
            self._prepare_spare()
            if self.standby_every and len(self.records) % self.standby_every == 0:
                self.checkpoint_standby()
            elif self.standby is None:  # no checkpoint to replay from: keep no frames
                self.orderer.truncate(self.orderer.agreed)
            return record

    # -- the pre-started backup QEMU ------------------------------------------------------
    def _prepare_spare(self) -> None:
        """Start the next backup QEMU now, paused and waiting for a migration on the
        backup's RAM file, so the next sync (a SYN sync holds the client's first
        request meanwhile) does not wait ~0.5 s for QEMU to start."""
        self._drop_spare()
        assert self.backup is not None
        vm = self._vm("backup", self.backup.ram, incoming=True)

        def start() -> None:
            try:
                vm.start(self.boot_timeout)
            except GaiaError:
                vm.kill()  # _take_spare starts another one, and reports its error

        self._spare = vm
        self._spare_thread = threading.Thread(target=start, name="gaia-vm-spare", daemon=True)
        self._spare_thread.start()

    def _drop_spare(self) -> None:
        if self._spare_thread is not None:
            self._spare_thread.join()
        if self._spare is not None:
            self._spare.kill()
            self.switch.forget(self._spare.name)
        self._spare, self._spare_thread = None, None

    def _take_spare(self) -> QemuVM:
        assert self.backup is not None
        if self._spare_thread is not None:
            self._spare_thread.join()
        vm, self._spare, self._spare_thread = self._spare, None, None
        if vm is not None and vm.alive() and vm.qmp is not None and vm.ram is self.backup.ram:
            return vm
        if vm is not None:
            vm.kill()
            self.switch.forget(vm.name)
        return self._vm("backup", self.backup.ram, incoming=True).start(self.boot_timeout)

    def _syn_loop(self) -> None:
        while not self._closed.is_set():
            if self._syn_event.wait(0.2):
                self._syn_event.clear()
                try:
                    self.sync(reason="syn")
                except GaiaError as exc:  # no backup now, or a refused sync: inputs flow
                    self.syn_errors.append(exc.one_line())
                    self.switch.release()

    # -- standby -------------------------------------------------------------------------
    def checkpoint_standby(self) -> StandbyImage:
        """Checkpoint the major backup for the standby (the leader keeps running)."""
        with self._sync_lock:
            assert self.backup is not None
            self._quiesce()
            try:
                self.backup.execute("stop")
                ram = self.standby.ram if self.standby else self._ram("standby")
                self.backup.ram.copy_to(ram)
                state_file = self.run_dir / "standby.state"
                _save_state(self.backup, state_file)
                position = self.orderer.agreed
                self.backup.resume()
            finally:
                self.switch.release()
            self.orderer.truncate(position)
            self.standby = StandbyImage(ram, state_file, position)
            return self.standby

    def promote_standby(self) -> QemuVM:
        """Start a new major backup from the standby's checkpoint and replay the frames
        agreed since; the next sync makes it exact."""
        with self._sync_lock:
            if self.standby is None or self.leader is None:
                raise GaiaError("no standby checkpoint to promote", "call checkpoint_standby()")
            ram = self._ram("backup")
            self.standby.ram.copy_to(ram)
            vm = self._vm("backup", ram, incoming=True).start(self.boot_timeout)
            _load_state(vm, self.standby.state_file)
            self._quiesce()
            try:
                vm.execute("cont")
                for frame in self.orderer.frames_since(self.standby.frame_position):
                    self.switch.send_to(vm.name, frame)
                self.switch.attach("backup", vm.name)
            finally:
                self.switch.release()
            if self.apus is not None:  # its member executes now; a new standby joins
                self.apus.promote_standby()
            self.backup = vm
            self.state = SyncState.unknown(ram_store(ram).n_pages)
            self._prepare_spare()
            return vm

    # -- failure -------------------------------------------------------------------------
    def fail_leader(self) -> float:
        """Kill the leader VM; the major backup takes over. Seconds until it serves."""
        with self._sync_lock:
            assert self.leader is not None and self.backup is not None
            start = time.monotonic()
            self.last_kill, self.last_kill_ns = start, time.monotonic_ns()
            self.leader.kill()
            self.switch.promote_backup()
            if self.apus is not None:  # its host side dies too: the major's member leads
                self.apus.fail_leader()
            self.leader, self.backup = self.backup, None
            self.state = None  # a promoted standby starts with SyncState.unknown
            took = time.monotonic() - start
            self._drop_spare()  # it waited on the new leader's RAM file
            return took

    def close(self) -> None:
        self._closed.set()
        self._syn_thread.join(5)
        self._drop_spare()
        for vm in (self.leader, self.backup):
            if vm is not None:
                vm.kill()
        self.switch.close()
        self._stop_apus()
        for ram in self._rams:
            ram.remove()
        if self.standby is not None:
            self.standby.ram.remove()

    def _stop_apus(self) -> None:
        if self.apus is not None:
            if isinstance(self.orderer, ApusOrderer):
                self.orderer.close()
            self.apus.stop()
            self.apus = None

    def __enter__(self) -> VmGroup:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _save_state(vm: QemuVM, path: Path) -> None:
    """Device state only (x-ignore-shared) into a file, via QEMU's exec: migration."""
    from gaia.vm.sync import set_ignore_shared

    path.unlink(missing_ok=True)
    set_ignore_shared(vm)
    vm.execute("migrate", uri=f"exec:cat > {path}")
    deadline = time.monotonic() + 60
    while (status := vm.execute("query-migrate").get("status")) != "completed":
        if status in ("failed", "cancelled") or time.monotonic() > deadline:
            raise GaiaError(f"standby checkpoint of {vm.name} {status}", f"see {vm.run_dir}")
        time.sleep(0.001)


def _load_state(vm: QemuVM, path: Path) -> None:
    from gaia.vm.sync import set_ignore_shared

    set_ignore_shared(vm)
    vm.execute("migrate-incoming", uri=f"exec:cat {path}")
    assert vm.qmp is not None
    vm.qmp.wait_status("paused", 60)


__all__ = ["StandbyImage", "VmGroup", "migrate_state"]
