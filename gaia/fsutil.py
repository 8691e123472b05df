"""Atomic file replacement: readers see the old content or the new, never a torn file.

Used for every small state file several processes read while another rewrites it
(deployment.json, replica status, hard state, snapshots, checkpoint manifests).
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path


def write_atomically(path: str | Path, data: bytes | str, sync: bool = True) -> Path:
    """Write `data` to a private temporary file next to `path`, then rename it over
    `path`. With sync the file and its directory are fsync'ed first and after, so the
    new content survives a crash (a rename alone may be reordered before the data)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    payload = data.encode() if isinstance(data, str) else data
    with open(tmp, "wb") as handle:
        handle.write(payload)
        if sync:
            handle.flush()
            os.fsync(handle.fileno())
    os.replace(tmp, path)
    if sync:
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    return path


def load_json(path: str | Path, missing: str, fix: str) -> dict:
    """A JSON state file's content; a missing file is the user's error (GaiaError naming
    `missing` and `fix`), not a traceback."""
    from gaia.errors import GaiaError

    path = Path(path)
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise GaiaError(f"{missing} in {path.parent} (missing {path.name})", fix) from None
