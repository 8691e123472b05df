"""Building the shim: cached by source hash, rebuilt on change, clear errors."""

from __future__ import annotations

import shutil

import pytest

from gaia.errors import GaiaError
from gaia.intercept import build


@pytest.fixture
def sources(tmp_path, monkeypatch):
    """A private copy of the shim sources and cache dir."""
    src = tmp_path / "src"
    src.mkdir()
    for name in build.SOURCES:
        shutil.copy(build.SOURCE_DIR / name, src / name)
    monkeypatch.setattr(build, "SOURCE_DIR", src)
    monkeypatch.setenv("GAIA_CACHE_DIR", str(tmp_path / "cache"))
    return src


def test_built_once_then_reused(sources):
    first = build.shim_path()
    assert first.is_file() and first.suffix == ".so"
    stamp = first.stat().st_mtime_ns
    assert build.shim_path() == first
    assert first.stat().st_mtime_ns == stamp


def test_editing_the_header_rebuilds(sources):
    first = build.shim_path()
    header = sources / "gaia_ring.h"
    header.write_text(header.read_text() + "\n/* edited */\n")
    second = build.shim_path()
    assert second != first and second.is_file()
    assert not first.exists(), "the stale build is removed"


def test_no_compiler_names_the_package_to_install(sources, monkeypatch):
    monkeypatch.delenv("CC", raising=False)
    monkeypatch.setattr(build.shutil, "which", lambda name: None)
    with pytest.raises(GaiaError) as err:
        build.shim_path()
    assert "build-essential" in err.value.one_line()
    assert "gcc" in err.value.one_line()


def test_a_compile_error_is_reported_with_the_compiler_output(sources):
    (sources / "shim.c").write_text("#include \"gaia_ring.h\"\nint broken( {\n")
    with pytest.raises(GaiaError, match="building the interception shim failed"):
        build.shim_path()
    assert not list((sources.parent / "cache").glob("*.so")), "no half-built library kept"
