"""A MongoDB-wire guest: SecantusDB (a Python server from PyPI) on the host's CPython.

No mongod is reachable here (DESIGN.md), so the guest runs the same MongoDB-compatible
server the host replicas use: SecantusDB on WiredTiger, launched by this virtualenv's
interpreter. The guest needs that interpreter, libpython, the standard-library and
site-packages files the server uses, and the native libraries behind its extension
modules (WiredTiger, shapely/GEOS, numpy with OpenBLAS).

Why trace instead of copying trees: the virtualenv and the standard library hold about
1 GB; the server opens ~700 files of it (~110 MB: numpy alone, pulled in by shapely, is
43 MB). The payload is what `strace -f -e openat` saw the server open on the host while
serving every operation the YCSB binding sends, plus the whole of the server's own
packages (their modules can be imported lazily by request paths the trace missed) and
each module's source next to its compiled file (the import system lists directories
for `.py` files). The file list is cached per interpreter and server version.

Cost, measured: ~125 MB of files in the guest's rootfs (tmpfs, so guest RAM), ~60 MB
for the running server with a 16 MB WiredTiger cache; a 384 MiB guest fits it, 256 MiB
does not leave room for the page cache the server needs. Boot to READY takes minutes
under TCG (CPython imports ~700 files and numpy/shapely initialise), seconds under KVM.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from gaia import proc
from gaia.errors import GaiaError, MissingBinaryError
from gaia.net import free_port, wait_listening

VENV_PYTHON = Path(sys.prefix) / "bin" / "python"
LAUNCHER = Path(sys.prefix) / "bin" / "secantusd-py"
CONFIG = "/etc/secantusd.toml"
GUEST_DBPATH = "/var/lib/secantus"
MEM_MIB = 384
CACHE_SIZE = "16M"
# Packages taken whole: request paths import their modules lazily.
WHOLE_PACKAGES = ("secantus", "wiredtiger", "bson", "pymongo")
_EXCLUDED_ROOTS = ("/proc", "/sys", "/dev", "/tmp", "/run", "/var/tmp")
_OPENED = re.compile(r'^\d+\s+(?:openat\(\w+,\s*|open\(|execve\()"([^"]+)"')


def start_line() -> str:
    """The guest's shell line that starts the server (config and db under its tmpfs)."""
    return (
        f"mkdir -p {GUEST_DBPATH}; HOME=/root LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1 "
        f"{VENV_PYTHON} {LAUNCHER} --config {CONFIG} --storage-path {GUEST_DBPATH} "
        f"--host 0.0.0.0 --port 27017 --standalone --cache-size {CACHE_SIZE}"
    )


def _server_version() -> str:
    try:
        return importlib.metadata.version("secantusdb")
    except importlib.metadata.PackageNotFoundError:
        raise MissingBinaryError("secantusd-py", "secantusdb (pip install secantusdb)") from None


def _cache_file() -> Path:
    from gaia.vm.guest import cache_dir

    st = VENV_PYTHON.stat()
    key = repr((sys.version, _server_version(), str(LAUNCHER), st.st_size, WHOLE_PACKAGES, 2))
    return cache_dir() / "python" / f"files-{hashlib.sha256(key.encode()).hexdigest()[:16]}.txt"


def opened_files(trace: str) -> list[Path]:
    """Paths an `strace -f -e trace=openat,open,execve` log shows opened (a call that
    failed ends in `= -1`; one interrupted by another thread's line is kept)."""
    seen: dict[str, None] = {}
    for line in trace.splitlines():
        match = _OPENED.match(line)
        if match and "= -1 " not in line:
            seen.setdefault(match.group(1), None)
    return [Path(p) for p in seen if not p.startswith(_EXCLUDED_ROOTS)]


def with_sources(paths: list[Path]) -> list[Path]:
    """Add each compiled module's source (`__pycache__/m.cpython-311.pyc` -> `m.py`)."""
    out = dict.fromkeys(paths)
    for p in paths:
        if p.parent.name == "__pycache__" and p.suffix == ".pyc":
            source = p.parent.parent / (p.name.split(".", 1)[0] + ".py")
            if source.exists():
                out.setdefault(source, None)
    return list(out)


def _landmarks() -> list[Path]:
    """What CPython stats (never opens) to find its prefix: `os.py` (the module itself
    is frozen in 3.11) and `lib-dynload`. Without them it cannot locate its library."""
    lib = Path(sys.base_prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    return [lib / "os.py", lib / "lib-dynload", Path(sys.prefix) / "pyvenv.cfg"]


def _whole_packages() -> list[Path]:
    site = Path(sys.prefix) / "lib" / f"python{sys.version_info.major}.{sys.version_info.minor}"
    files: list[Path] = []
    for name in WHOLE_PACKAGES:
        root = site / "site-packages" / name
        if root.is_dir():
            files += [p for p in sorted(root.rglob("*")) if p.is_file()]
    return files


def payload(progress: Callable[[str], None] = lambda msg: None) -> list[tuple[Path, str]]:
    """(host path, guest path) pairs: every file the server needs, at its host path."""
    if not LAUNCHER.exists():
        raise MissingBinaryError(str(LAUNCHER), "secantusdb (pip install secantusdb)")
    cache = _cache_file()
    if not cache.exists():
        progress("tracing the MongoDB-wire server's files (once)")
        files = _landmarks() + with_sources(trace_server()) + _whole_packages()
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp")
        tmp.write_text("\n".join(str(p) for p in dict.fromkeys(files)) + "\n")
        tmp.replace(cache)
    paths = [Path(line) for line in cache.read_text().splitlines() if line]
    return [(p, str(p)) for p in paths if p.exists() and (p.is_file() or p.is_dir())]


def trace_server(timeout: float = 120.0) -> list[Path]:
    """Run the server under strace on the host, send it the YCSB binding's operations,
    and return the files it opened."""
    strace = shutil.which("strace")
    if strace is None:
        raise MissingBinaryError("strace", "strace")
    with tempfile.TemporaryDirectory(prefix="gaia-trace-") as tmp:
        work = Path(tmp)
        (work / "c.toml").write_text("# empty\n")
        port = free_port()
        argv = [
            strace, "-f", "-qq", "-e", "trace=openat,open,execve", "-e", "signal=none",
            "-o", str(work / "trace.txt"), str(VENV_PYTHON), str(LAUNCHER),
            "--config", str(work / "c.toml"), "--storage-path", str(work / "db"),
            "--host", "127.0.0.1", "--port", str(port), "--standalone",
            "--cache-size", CACHE_SIZE,
        ]  # fmt: skip
        tracer = proc.spawn("strace-secantus", argv, work / "server.log")
        try:
            if not wait_listening(port, timeout):
                raise GaiaError(
                    f"the traced MongoDB-wire server did not listen within {timeout:.0f} s "
                    f"({tracer.log_tail(3)})",
                    "check that `secantusd-py` runs on this host",
                )
            exercise(port)
        finally:
            _stop_traced(tracer)
        return opened_files((work / "trace.txt").read_text(errors="replace"))


def exercise(port: int) -> None:
    """Every operation the YCSB mongodb binding sends, plus what a client does first."""
    import pymongo

    client = pymongo.MongoClient("127.0.0.1", port, directConnection=True,
                                 serverSelectionTimeoutMS=30_000)
    try:
        table = client.ycsb.usertable
        for i in range(50):
            table.insert_one({"_id": f"user{i}", **{f"field{j}": b"x" * 100 for j in range(10)}})
        table.find_one({"_id": "user5"}, {"field1": 1})
        table.find_one({"_id": "user5"})
        list(table.find({"_id": {"$gte": "user1"}}).sort("_id", 1).limit(10))
        table.update_one({"_id": "user5"}, {"$set": {"field1": b"y" * 100}})
        table.replace_one({"_id": "user60"}, {"field0": b"z"}, upsert=True)
        table.delete_one({"_id": "user7"})
        table.create_index("field0", unique=False)
        client.list_database_names()
        client.ycsb.list_collection_names()
        client.ycsb.command("dbstats")
        client.ycsb.drop_collection("usertable")
    finally:
        client.close()


def _stop_traced(tracer: proc.Process) -> None:
    """Kill the traced server (strace's child, started by us), then let strace finish."""
    children = Path(f"/proc/{tracer.pid}/task/{tracer.pid}/children")
    try:
        pids = [int(p) for p in children.read_text().split()]
    except OSError:
        pids = []
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + 10
    while tracer.alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    tracer.stop(5)
