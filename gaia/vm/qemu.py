"""Running one QEMU guest: RAM in a shared file, serial console to a log, QMP on a socket,
its NIC a UDP socket netdev aimed at the frame switch.

Why a shared RAM file (`memory-backend-file,share=on` under /dev/shm): the host reads and
writes guest memory directly — page hashing, divergent-page copies and clones need no
QEMU involvement, and a state-only migration (`x-ignore-shared`) moves just CPU and
device state. Accelerator: KVM only when the CPU has vmx/svm AND a short timed boot
probe succeeds (some hosts expose a /dev/kvm that cannot run stock guests); else TCG.
"""

from __future__ import annotations

import mmap
import shutil
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gaia import proc
from gaia.errors import GaiaError, MissingBinaryError
from gaia.vm.guest import NET_MARK, READY_MARK, Guest
from gaia.vm.qmp import Qmp, QmpError
from gaia.vm.switch import GUEST_MAC

QEMU = "qemu-system-x86_64"
QEMU_PACKAGE = "qemu-system-x86"


def qemu_binary() -> str:
    path = shutil.which(QEMU)
    if path is None:
        raise MissingBinaryError(QEMU, QEMU_PACKAGE)
    return path


def cpu_has_virtualisation(cpuinfo: str | None = None) -> bool:
    text = cpuinfo if cpuinfo is not None else Path("/proc/cpuinfo").read_text()
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
    return bool(flags & {"vmx", "svm"})


@dataclass
class RamFile:
    """A guest RAM file under /dev/shm; owned by whoever created it, removed by `remove`.

    `array()` maps it once (MAP_SHARED|MAP_POPULATE) and keeps the mapping: a fresh
    mapping per sync costs a page fault per 4 KiB page (~0.2 s per 256 MiB here), ten
    times the hashing itself."""

    path: Path
    size_mib: int
    _map: mmap.mmap | None = field(default=None, repr=False, compare=False)

    @classmethod
    def new(cls, tag: str, size_mib: int) -> RamFile:
        return cls(Path("/dev/shm") / f"gaia-vm-{uuid.uuid4().hex[:10]}-{tag}.ram", size_mib)

    def array(self) -> np.ndarray:
        if self._map is None:
            with open(self.path, "r+b") as f:
                self._map = mmap.mmap(
                    f.fileno(),
                    0,
                    flags=mmap.MAP_SHARED | mmap.MAP_POPULATE,
                    prot=mmap.PROT_READ | mmap.PROT_WRITE,
                )
        return np.frombuffer(self._map, dtype=np.uint8)

    def copy_to(self, other: RamFile) -> None:
        """Full copy (a clone, or a standby checkpoint)."""
        shutil.copyfile(self.path, other.path)

    def remove(self) -> None:
        if self._map is not None:
            try:
                self._map.close()
            except BufferError:  # an array still views it; the mapping dies with it
                pass
            self._map = None
        self.path.unlink(missing_ok=True)


@dataclass
class VmSpec:
    guest: Guest
    ip_cidr: str
    mem_mib: int = 256
    smp: int = 1
    accel: str = "tcg"


@dataclass
class QemuVM:
    """One QEMU process. `incoming=True` starts it paused, waiting for a migration."""

    name: str
    spec: VmSpec
    ram: RamFile
    run_dir: Path
    incoming: bool = False
    net_path: Path | None = None  # the switch's unix socket for this VM's NIC
    process: proc.Process | None = None
    qmp: Qmp | None = None

    @property
    def console_log(self) -> Path:
        return self.run_dir / f"{self.name}.console.log"

    @property
    def qmp_path(self) -> Path:
        return self.run_dir / f"{self.name}.qmp"

    def argv(self) -> list[str]:
        s = self.spec
        argv = [
            qemu_binary(),
            "-name",
            f"gaia-{self.name}",
            "-machine",
            "pc,memory-backend=ram",
            "-accel",
            s.accel,
            *self._cpu_args(),
            "-m",
            f"{s.mem_mib}M",
            "-smp",
            str(s.smp),
            "-object",
            f"memory-backend-file,id=ram,size={s.mem_mib}M,mem-path={self.ram.path},share=on",
            "-kernel",
            str(s.guest.kernel),
            "-initrd",
            str(s.guest.initrd),
            "-append",
            s.guest.cmdline(s.ip_cidr),
            "-nodefaults",
            "-no-user-config",
            "-display",
            "none",
            "-vga",
            "none",
            "-no-reboot",
            "-serial",
            f"file:{self.console_log}",
            "-qmp",
            f"unix:{self.qmp_path},server=on,wait=off",
        ]
        if self.net_path is not None:
            argv += [
                "-netdev",
                f"stream,id=n0,server=off,addr.type=unix,addr.path={self.net_path}",
                "-device",
                f"virtio-net-pci,netdev=n0,mac={GUEST_MAC},romfile=",
            ]
        if self.incoming:
            argv += ["-S", "-incoming", "defer"]
        return argv

    def _cpu_args(self) -> list[str]:
        """The guest app's CPU model under TCG (numpy 2 needs x86-64-v2, which QEMU's
        default qemu64 model lacks: its extension modules die of SIGILL); the host's
        CPU under KVM. Leader and backups share the spec, so migrations see one model."""
        model = self.spec.guest.app.cpu
        if not model:
            return []
        return ["-cpu", "host" if self.spec.accel == "kvm" else model]

    def start(self, timeout: float = 60.0) -> QemuVM:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.qmp_path.unlink(missing_ok=True)
        self.process = proc.spawn(
            f"qemu-{self.name}", self.argv(), self.run_dir / f"{self.name}.qemu.log"
        )
        try:
            self.qmp = Qmp(self.qmp_path, timeout=timeout)
        except GaiaError as exc:
            tail = self.process.log_tail(5)
            self.kill()
            raise GaiaError(
                f"QEMU {self.name} did not start: {tail or exc.problem}",
                f"see {self.process.log_path}",
            ) from None
        return self

    def wait_console(self, mark: str = READY_MARK, timeout: float = 120.0) -> float:
        """Wait for `mark` on the serial console; seconds waited. Timeout names the log."""
        start = time.monotonic()
        while True:
            try:
                if mark in self.console_log.read_text(errors="replace"):
                    return time.monotonic() - start
            except OSError:
                pass
            if self.process is not None and not self.process.alive():
                raise GaiaError(
                    f"guest {self.name} exited before {mark!r} (QEMU: {self.process.log_tail(3)})",
                    f"read the console log {self.console_log}",
                )
            if time.monotonic() - start > timeout:
                raise GaiaError(
                    f"guest {self.name} did not boot within {timeout:.0f} s (no {mark!r} on "
                    f"its console)",
                    f"read the console log {self.console_log}; raise the timeout on a busy host",
                )
            time.sleep(0.05)

    def execute(self, command: str, **args):
        assert self.qmp is not None, "VM not started"
        return self.qmp.execute(command, **args)

    def resume(self, timeout: float = 10.0) -> None:
        """`cont`, retried while QEMU still finalises a just-completed migration (it
        answers "Migration is not finalized yet" for a moment after `completed`)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.execute("cont")
                return
            except QmpError as exc:
                if "not finalized" not in exc.problem or time.monotonic() > deadline:
                    raise
                time.sleep(0.002)

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def kill(self) -> None:
        if self.qmp is not None:
            self.qmp.close()
            self.qmp = None
        if self.process is not None:
            self.process.kill()

    def quit(self) -> None:
        """Ask QEMU to exit; kill it if it does not."""
        if self.qmp is not None and self.alive():
            try:
                self.qmp.execute("quit")
            except (GaiaError, OSError):
                pass
        if self.process is not None:
            try:
                self.process.popen.wait(5)
            except Exception:
                pass
        self.kill()


_ACCEL: dict[str, str] = {}


def choose_accel(guest: Guest | None = None, probe_timeout: float = 20.0) -> str:
    """'kvm' where hardware virtualisation works for a stock guest, else 'tcg' (the
    probe's verdict is remembered per kernel for the life of the process)."""
    if not cpu_has_virtualisation() or not Path("/dev/kvm").exists() or guest is None:
        return "tcg"
    key = str(guest.kernel)
    if key not in _ACCEL:
        _ACCEL[key] = _probe_kvm(guest, probe_timeout)
    return _ACCEL[key]


def _probe_kvm(guest: Guest, probe_timeout: float) -> str:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        ram = RamFile.new("kvmprobe", 128)
        vm = QemuVM("kvmprobe", VmSpec(guest, "10.255.255.2/24", 128, 1, "kvm"), ram, Path(tmp))
        try:
            vm.start(timeout=probe_timeout)
            vm.wait_console(NET_MARK, timeout=probe_timeout)
            return "kvm"
        except GaiaError:
            return "tcg"
        finally:
            vm.kill()
            ram.remove()
