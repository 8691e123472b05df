"""The remote-memory-region interface every APUS transport implements.

A replica owns one region (`local`) that peers write into one-sidedly and that it polls
itself. `write` is the Python path; `numba_handle()` + `remote_write` is the hot path.
Both go through the same njit code, so they obey the same rules (see memory.write_is_valid).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import Any

import numpy as np

from gaia.apus.transport.handle import DROPPED, SENT, NumbaHandle, remote_wake, remote_write
from gaia.apus.transport.memory import write_is_valid
from gaia.errors import ConfigError


def as_bytes_array(data: Any) -> np.ndarray:
    """bytes / bytearray / memoryview / uint8 array -> a contiguous uint8 array (no copy
    when possible)."""
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data).view(np.uint8).reshape(-1)
    return np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)


def check_replica_id(replica_id: int, capacity: int, what: str = "replica id") -> int:
    if not 0 <= int(replica_id) < capacity:
        raise ConfigError(
            f"{what} {replica_id} is outside 0..{capacity - 1}",
            f"use small replica ids, or raise max_replicas above {replica_id}",
        )
    return int(replica_id)


class RegionTransport(ABC):
    """One replica's view: its own region plus one-sided writes into peers' regions."""

    kind: str = ""

    def __init__(
        self,
        group_id: str,
        replica_id: int,
        region_size: int,
        peers: Iterable[int],
        capacity: int,
        handle: NumbaHandle,
    ) -> None:
        self.group_id = group_id
        self.replica_id = check_replica_id(replica_id, capacity)
        self.region_size = region_size
        self.capacity = capacity
        self.peers = sorted(
            {check_replica_id(p, capacity, "peer id") for p in peers} - {self.replica_id}
        )
        self._handle = handle
        self.closed = False

    @property
    @abstractmethod
    def local(self) -> np.ndarray:
        """This replica's own region (uint8, region_size bytes)."""

    def numba_handle(self) -> NumbaHandle:
        """The handle to pass into njit code calling `remote_write` / `remote_wake`."""
        return self._handle

    def write(self, peer: int, offset: int, data: Any) -> bool:
        """One-sided write; the last 8 bytes land last. False when dropped (peer gone)."""
        src = as_bytes_array(data)
        if not write_is_valid(self.region_size, offset, src.size):
            raise ValueError(
                f"write of {src.size} bytes at offset {offset}: need length >= 8, "
                f"(offset + length) % 8 == 0 and offset + length <= {self.region_size}"
            )
        check_replica_id(peer, self.capacity, "peer id")
        return remote_write(self._handle, peer, offset, src, 0, src.size) == 1

    def wake(self, peer: int, offset: int) -> bool:
        """Futex-wake the pollers sleeping on the 32-bit word at `offset` of `peer`."""
        check_replica_id(peer, self.capacity, "peer id")
        return remote_wake(self._handle, peer, offset) == 1

    def wait_connected(self, timeout: float = 5.0, peers: Iterable[int] | None = None) -> bool:
        """True once writes to `peers` (default: all) can be delivered."""
        return True

    def counters(self, peer: int) -> dict[str, int]:
        """Writes sent and dropped towards `peer` by this transport (tcp; shm never drops
        a mapped peer's write)."""
        row = self._handle.state[peer]
        return {"sent": int(row[SENT]), "dropped": int(row[DROPPED])}

    @abstractmethod
    def close(self) -> None:
        """Stop background threads; afterwards every write is dropped. Stop hot loops first."""

    def __enter__(self) -> RegionTransport:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} group={self.group_id} replica={self.replica_id} "
            f"peers={self.peers} size={self.region_size}>"
        )
