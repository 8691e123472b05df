"""The shm transport: every replica maps every replica's /dev/shm segment.

A write is a memory copy into the peer's mapping followed by a release store of the
canary word — the closest thing to an RDMA WRITE one host offers. Peers' segments are
created if they do not exist yet (zero-filled), so start order does not matter, and a
replica that restarts zeroes its own segment in place, keeping peers' mappings valid.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from gaia.apus.transport.base import RegionTransport, check_replica_id
from gaia.apus.transport.handle import KIND_SHM, new_handle
from gaia.apus.transport.segments import MappedRegion, map_segment, segment_path


class ShmTransport(RegionTransport):
    kind = "shm"

    def __init__(
        self,
        group_id: str,
        replica_id: int,
        region_size: int,
        peers: Iterable[int],
        *,
        reset: bool = True,
        max_replicas: int = 16,
    ) -> None:
        super().__init__(
            group_id,
            replica_id,
            region_size,
            peers,
            max_replicas,
            new_handle(KIND_SHM, replica_id, region_size, max_replicas),
        )
        self._regions: dict[int, MappedRegion] = {}
        self._own = self._map(self.replica_id, zero=reset)
        for peer in self.peers:
            self._map(peer, zero=False)

    def _map(self, replica: int, zero: bool) -> MappedRegion:
        region = map_segment(segment_path(self.group_id, replica), self.region_size, zero)
        self._regions[replica] = region
        self._handle.bases[replica] = region.address
        return region

    @property
    def local(self) -> np.ndarray:
        return self._own.array

    def add_peer(self, replica_id: int) -> None:
        """Map a replica that joined the group (membership change)."""
        replica_id = check_replica_id(replica_id, self.capacity, "peer id")
        if replica_id not in self._regions:
            self._map(replica_id, zero=False)
        self.peers = sorted({*self.peers, replica_id} - {self.replica_id})

    def remove_peer(self, replica_id: int) -> None:
        """Stop writing to a replica that left. Its mapping stays until close(), because a
        hot loop may still be copying into it."""
        self._handle.bases[replica_id] = 0
        self.peers = [p for p in self.peers if p != replica_id]

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._handle.bases[:] = 0
        for region in self._regions.values():
            region.close()
