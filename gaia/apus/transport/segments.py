"""Named /dev/shm segments that hold replicas' regions.

Why: a replica that restarts must find the very file its peers have mapped, so segments
are named from the group id and replica id and re-initialised in place (zeroed through the
mapping), never unlinked and re-created — peers' mappings would silently point at the old,
orphaned inode. Only tearing down the whole group unlinks them.
"""

from __future__ import annotations

import mmap
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gaia.errors import ConfigError, GaiaError

SHM_DIR = Path("/dev/shm")
_GROUP_ID = re.compile(r"^[A-Za-z0-9_.-]{1,100}$")


def check_group_id(group_id: str) -> str:
    if not _GROUP_ID.match(group_id):
        raise ConfigError(
            f"group id {group_id!r} cannot name a shared-memory segment",
            "use 1-100 characters from letters, digits, '_', '.', '-'",
        )
    return group_id


def check_region_size(region_size: int) -> int:
    if region_size < 8 or region_size % 8:
        raise ConfigError(
            f"region size {region_size} is not a positive multiple of 8 bytes",
            "round the region size up to a multiple of 8",
        )
    return region_size


def segment_path(group_id: str, replica_id: int) -> Path:
    """The file behind replica `replica_id`'s region in group `group_id`."""
    return SHM_DIR / f"gaia-{check_group_id(group_id)}-r{int(replica_id)}"


@dataclass
class MappedRegion:
    """A mapping of one segment; `array` views it as bytes, `address` is its base."""

    path: Path
    array: np.ndarray
    address: int
    _mmap: mmap.mmap

    def close(self) -> None:
        """Unmap when nobody else holds a view of the bytes; otherwise leave it to the GC."""
        try:
            self._mmap.close()
        except BufferError:
            pass


def map_segment(path: Path, size: int, zero: bool) -> MappedRegion:
    """Create-or-open `path` with exactly `size` bytes and map it shared, read-write.

    `zero=True` clears it through the mapping (in place: other mappers see zeros too)."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise GaiaError(
            f"cannot open shared-memory segment {path} ({exc.strerror})",
            "check that /dev/shm is mounted and writable",
        ) from None
    try:
        current = os.fstat(fd).st_size
        if current == 0:
            os.ftruncate(fd, size)
        elif current != size:
            raise GaiaError(
                f"shared-memory segment {path} holds {current} bytes, this replica expects {size}",
                "use the same region size on every replica of a group, or remove stale "
                "segments of a previous group with the same id (unlink_group)",
            )
        mapping = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
    finally:
        os.close(fd)
    array = np.frombuffer(mapping, dtype=np.uint8)
    if zero:
        array[:] = 0
    return MappedRegion(path, array, array.ctypes.data, mapping)


def unlink_group(group_id: str) -> list[Path]:
    """Remove every segment of a group (teardown only: running replicas keep stale maps)."""
    removed = []
    for path in SHM_DIR.glob(f"gaia-{check_group_id(group_id)}-r*"):
        if re.fullmatch(rf"gaia-{re.escape(group_id)}-r\d+", path.name):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
