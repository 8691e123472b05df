"""QEMU-side errors a user can hit, and the accelerator choice (no full boot here)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gaia.errors import GaiaError, MissingBinaryError
from gaia.vm import qemu
from gaia.vm.guest import Cpio, Guest, app
from gaia.vm.qemu import QemuVM, RamFile, VmSpec, choose_accel, cpu_has_virtualisation


def test_missing_qemu_names_the_package(monkeypatch) -> None:
    monkeypatch.setattr(qemu.shutil, "which", lambda name: None)
    with pytest.raises(MissingBinaryError) as err:
        qemu.qemu_binary()
    assert "qemu-system-x86" in err.value.one_line()


def test_cpu_flags_decide_kvm() -> None:
    assert cpu_has_virtualisation("flags\t: fpu vmx sse\n")
    assert cpu_has_virtualisation("flags\t: fpu svm\n")
    assert not cpu_has_virtualisation("flags\t: fpu sse avx2\n")


def test_no_vmx_means_tcg_here(redis_guest) -> None:
    if cpu_has_virtualisation():
        pytest.skip("this host has vmx/svm: the boot probe decides")
    assert choose_accel(redis_guest) == "tcg"


def test_guest_that_does_not_boot_in_time_names_its_console_log(redis_guest, run_dir) -> None:
    ram = RamFile.new("noboot", 128)
    vm = QemuVM("noboot", VmSpec(redis_guest, "10.9.9.2/24", 128), ram, run_dir)
    try:
        vm.start()
        with pytest.raises(GaiaError, match="did not boot within") as err:
            vm.wait_console(timeout=0.3)
        assert str(vm.console_log) in err.value.one_line()
    finally:
        vm.kill()
        ram.remove()


def test_guest_whose_qemu_exits_names_its_console_log(run_dir) -> None:
    bogus = run_dir / "not-a-kernel"
    bogus.write_bytes(b"\0" * 4096)
    initrd = run_dir / "initrd"
    initrd.write_bytes(Cpio().finish())
    guest = Guest(bogus, initrd, app("redis"))
    ram = RamFile.new("bogus", 64)
    vm = QemuVM("bogus", VmSpec(guest, "10.9.9.2/24", 64), ram, run_dir)
    try:
        with pytest.raises(GaiaError) as err:
            vm.start(timeout=20)
            vm.wait_console(timeout=60)
        assert "log" in err.value.one_line()
    finally:
        vm.kill()
        ram.remove()


def test_unknown_app_is_a_clear_error() -> None:
    with pytest.raises(GaiaError, match="no VM guest recipe") as err:
        app("oracle")
    assert "redis" in err.value.fix


def test_cpio_layout(tmp_path: Path) -> None:
    archive = Cpio()
    archive.file("/a/b/c.txt", b"hello", 0o600)
    archive.symlink("/bin/sh", "busybox")
    data = archive.finish()
    assert data.startswith(b"070701")
    assert b"a/b/c.txt\0" in data and b"TRAILER!!!\0" in data
    assert len(data) % 4 == 0
