"""Fixtures for the VM tests: the built guest (cached under $GAIA_CACHE/vm)."""

from __future__ import annotations

import shutil

import pytest

from gaia.errors import GaiaError


@pytest.fixture(scope="session")
def redis_guest():
    """The redis guest; skipped where QEMU is missing or apt cannot fetch a kernel."""
    if shutil.which("qemu-system-x86_64") is None:
        pytest.skip("qemu-system-x86 is not installed")
    from gaia.vm.guest import build_guest

    try:
        return build_guest("redis")
    except GaiaError as exc:
        pytest.skip(f"cannot build the guest here: {exc.one_line()}")
