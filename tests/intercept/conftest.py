"""Fixtures for the interception tests: rings and logs in /dev/shm that never outlive a
test, and the shim built once."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from gaia.intercept import ring_layout as L
from gaia.intercept.build import shim_path
from gaia.intercept.ring import Ring
from gaia.intercept.shmlog import ShmLog


class ShmFactory:
    """Creates uniquely named rings/logs and removes them all at teardown."""

    def __init__(self) -> None:
        self.tag = uuid.uuid4().hex[:8]
        self.made: list[Ring | ShmLog] = []

    def ring(self, name: str, replica_id: int = 0, state: int = L.REPLICA_LEADER,
             **kwargs) -> Ring:
        ring = Ring.create(f"/gaia-t{self.tag}-{name}", replica_id, state=state, **kwargs)
        self.made.append(ring)
        return ring

    def log(self, name: str = "log", capacity: int = 1 << 18, data_size: int = 1 << 28
            ) -> ShmLog:
        log = ShmLog.create(f"/gaia-t{self.tag}-{name}", capacity, data_size)
        self.made.append(log)
        return log

    def cleanup(self) -> None:
        for seg in self.made:
            seg.unlink()
            seg.close()


@pytest.fixture
def shm() -> Iterator[ShmFactory]:
    factory = ShmFactory()
    try:
        yield factory
    finally:
        factory.cleanup()


@pytest.fixture(scope="session")
def shim() -> str:
    return str(shim_path())
