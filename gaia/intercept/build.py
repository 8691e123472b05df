"""Build the LD_PRELOAD shim (shim.c + gaia_ring.h) with the system C compiler, once.

Why at first use and not at install: the shim must match the machine's libc, and a plain
`pip install -e .` has no build step. The library is cached under a name derived from the
hash of its sources (and the compiler command), so editing shim.c or gaia_ring.h rebuilds
it (older builds are removed) and concurrent builders never see a half-written file
(write to a temp name, rename).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from gaia.errors import GaiaError

SOURCE_DIR = Path(__file__).resolve().parent
SOURCES = ("shim.c", "gaia_ring.h")
CFLAGS = ("-O2", "-g", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared", "-pthread")
LIBS = ("-ldl",)


def cache_dir() -> Path:
    """$GAIA_CACHE_DIR, else $XDG_CACHE_HOME/gaia, else ~/.cache/gaia."""
    if env := os.environ.get("GAIA_CACHE_DIR"):
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "gaia"


def compiler() -> str:
    """The C compiler: $CC, else cc or gcc on PATH; a GaiaError naming the fix if none."""
    for name in (os.environ.get("CC"), "cc", "gcc"):
        if name and shutil.which(name):
            return name
    raise GaiaError(
        "no C compiler found (needed once to build the interception shim)",
        "install gcc: `sudo apt-get install -y build-essential` (or set CC)",
    )


def _fingerprint(cc: str) -> str:
    digest = hashlib.sha256(" ".join((cc, *CFLAGS, *LIBS)).encode())
    for name in SOURCES:
        digest.update((SOURCE_DIR / name).read_bytes())
    return digest.hexdigest()[:16]


def shim_path() -> Path:
    """Path of the built shim for the current sources, building it if needed."""
    cc = compiler()
    target = cache_dir() / f"gaia-shim-{_fingerprint(cc)}.so"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".gaia-shim-", suffix=".so", dir=target.parent)
    os.close(fd)
    cmd = [cc, *CFLAGS, "-I", str(SOURCE_DIR), "-o", tmp, str(SOURCE_DIR / "shim.c"), *LIBS]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        os.unlink(tmp)
        raise GaiaError(
            f"building the interception shim failed ({' '.join(cmd)}): "
            f"{result.stderr.strip()[:400]}",
            "check that gcc and the libc headers are installed "
            "(`sudo apt-get install -y build-essential`)",
        )
    os.replace(tmp, target)
    for old in target.parent.glob("gaia-shim-*.so"):
        if old != target:  # servers that still map an old one keep it until they exit
            old.unlink(missing_ok=True)
    return target


def preload_env(ring_name: str, **extra: str) -> dict[str, str]:
    """The environment that loads the shim into a server and names its ring."""
    return {"LD_PRELOAD": str(shim_path()), "GAIA_RING": ring_name, **extra}
