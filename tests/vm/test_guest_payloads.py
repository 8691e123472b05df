"""What the MariaDB and MongoDB-wire guests carry, decided without booting anything."""

from __future__ import annotations

from pathlib import Path

from gaia.vm import guest_python
from gaia.vm.guest import app, binding_props, init_script
from gaia.vm.guest_python import opened_files, with_sources

TRACE = """\
101 execve("/venv/bin/python", ["python"], 0x7ffd /* 20 vars */) = 0
101 openat(AT_FDCWD, "/usr/lib/libpython3.11.so.1.0", O_RDONLY|O_CLOEXEC) = 3
101 openat(AT_FDCWD, "/usr/lib/missing.so", O_RDONLY|O_CLOEXEC) = -1 ENOENT (No such file)
102 openat(AT_FDCWD, "/site/pkg/__pycache__/mod.cpython-311.pyc", O_RDONLY <unfinished ...>
101 openat(AT_FDCWD, "/proc/self/maps", O_RDONLY) = 4
101 openat(AT_FDCWD, "/tmp/db/WiredTiger.wt", O_RDWR) = 5
101 openat(AT_FDCWD, "/usr/lib/libpython3.11.so.1.0", O_RDONLY|O_CLOEXEC) = 6
"""


def test_trace_keeps_opened_files_once_and_drops_failures_and_scratch() -> None:
    assert opened_files(TRACE) == [
        Path("/venv/bin/python"),
        Path("/usr/lib/libpython3.11.so.1.0"),
        Path("/site/pkg/__pycache__/mod.cpython-311.pyc"),  # unfinished: kept
    ]


def test_compiled_modules_bring_their_sources(tmp_path: Path) -> None:
    cache = tmp_path / "pkg" / "__pycache__"
    cache.mkdir(parents=True)
    (tmp_path / "pkg" / "mod.py").write_text("x = 1\n")
    pyc = cache / "mod.cpython-311.pyc"
    pyc.write_bytes(b"")
    orphan = cache / "gone.cpython-311.pyc"
    assert with_sources([pyc, orphan]) == [pyc, orphan, tmp_path / "pkg" / "mod.py"]


def test_mariadb_guest_serves_the_bench_user_on_its_own_address() -> None:
    props = binding_props("mariadb", "10.1.2.2", 3306)
    assert props == {"db.user": "bench", "db.passwd": "",
                     "db.url": "jdbc:mysql://10.1.2.2:3306/ycsb"}
    recipe = app("mariadb")
    assert "--thread-pool-size=1" in recipe.start  # the deterministic configuration
    assert "--bind-address=0.0.0.0" in recipe.start
    assert recipe.payload is not None and recipe.mem_mib > 256


def test_mongodb_guest_runs_the_pypi_server_with_x86_64_v2() -> None:
    recipe = app("mongodb")
    assert recipe.cpu == "max"  # numpy 2 dies of SIGILL on QEMU's qemu64 model
    assert str(guest_python.LAUNCHER) in recipe.start
    assert recipe.files[guest_python.CONFIG]
    script = init_script(recipe, [])
    assert ":27017 " in script and recipe.start in script
