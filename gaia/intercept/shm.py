"""A named POSIX shared-memory segment (/dev/shm) mapped as a numpy byte array.

Why one class: the ring and the committed log are both segments that one process creates
(and unlinks) and others map by name; creating, mapping, closing and naming errors are
the same for both.
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path
from typing import Self

import numpy as np

from gaia.errors import GaiaError

SHM_DIR = Path("/dev/shm")


def shm_path(name: str) -> Path:
    """/dev/shm path of a POSIX shm name ("/gaia-x" -> /dev/shm/gaia-x)."""
    if not name.startswith("/") or "/" in name[1:] or len(name) < 2:
        raise GaiaError(f"shared-memory name {name!r} is not a POSIX shm name",
                        "use one slash-prefixed component, e.g. /gaia-g1-r0-ring")
    return SHM_DIR / name[1:]


class ShmSegment:
    """`seg` is the whole segment as uint8; subclasses add their layout."""

    what = "shared-memory segment"

    def __init__(self, name: str, mm: mmap.mmap, owner: bool) -> None:
        self.name = name
        self._mm = mm
        self.owner = owner
        self.seg = np.frombuffer(mm, dtype=np.uint8)

    @classmethod
    def _create(cls, name: str, size: int) -> Self:
        """A new zero-filled segment (sparse: pages are allocated when touched)."""
        path = shm_path(name)
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
        except FileExistsError:
            raise GaiaError(f"{cls.what} {path} already exists",
                            "another process uses this name; remove the stale segment "
                            "or pick another name") from None
        try:
            os.ftruncate(fd, size)
            mm = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        return cls(name, mm, owner=True)

    @classmethod
    def _open(cls, name: str) -> Self:
        path = shm_path(name)
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            raise GaiaError(f"{cls.what} {path} does not exist",
                            "start the process that creates it first") from None
        try:
            mm = mmap.mmap(fd, os.fstat(fd).st_size)
        finally:
            os.close(fd)
        return cls(name, mm, owner=False)

    def close(self) -> None:
        """Unmap. Views handed out earlier keep the mapping alive until they go."""
        self.seg = None  # type: ignore[assignment]
        try:
            self._mm.close()
        except BufferError:
            pass  # a view is still alive somewhere; the mapping goes with it

    def unlink(self) -> None:
        try:
            shm_path(self.name).unlink()
        except FileNotFoundError:
            pass

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
        if self.owner:
            self.unlink()
