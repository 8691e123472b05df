"""Small additions to gaia.intercept.ring that the APUS side needs (all built on it).

The input ring itself — layout, consumer, producer, batch encoding — belongs to
gaia/intercept (ring.py, events.py). The simulator is single-threaded, so it needs a
producer that never spins on a full ring and an outcome check that never blocks.
"""

from __future__ import annotations

import itertools
import os

import numpy as np

from gaia.intercept import ring_layout as RL
from gaia.intercept.ring import (
    Ring,
    nb_load_u32,
    nb_load_u64,
    nb_produce,
    nb_slot_offset,
    nb_store_u64,
)

_private = itertools.count()


def ring_name(group_id: str, replica_id: int) -> str:
    """The POSIX shm name of a replica's input ring (gaia_ring.h's example naming)."""
    return f"/gaia-{group_id}-r{replica_id}-ring"


def private_ring(replica_id: int, slot_count: int, slot_size: int) -> Ring:
    """A ring nobody else can open (the simulator's): created, then unlinked at once."""
    name = f"/gaia-sim-{os.getpid()}-{next(_private)}"
    ring = Ring.create(name, replica_id, slot_count=slot_count, slot_size=slot_size,
                       conn_count=1, snap_count=2)
    ring.unlink()
    return ring


def try_produce(ring: Ring, payload: bytes, kind: int = RL.EV_RAW, conn_id: int = 0) -> int:
    """Publish one event if the ring has room (single producer); -1 when it is full."""
    tail = nb_load_u64(ring.seg, RL.H_TAIL)
    if nb_load_u64(ring.seg, nb_slot_offset(ring.seg, tail)) != tail:
        return -1
    src = np.frombuffer(payload, dtype=np.uint8)
    return int(nb_produce(ring.seg, kind, 0, np.uint64(conn_id), src, os.getpid()))


def outcome(ring: Ring, ticket: int) -> tuple[int, int]:
    """(status, log index or error code) of a ticket, without waiting; a decided ticket's
    slot is freed for the next lap."""
    off = nb_slot_offset(ring.seg, np.uint64(ticket))
    status = int(nb_load_u32(ring.seg, off + RL.S_STATUS))
    value = int(nb_load_u64(ring.seg, off + RL.S_LOG_INDEX))
    if status in (RL.ST_COMMITTED, RL.ST_FAILED):
        slots = int(nb_load_u32(ring.seg, RL.H_SLOT_COUNT))
        nb_store_u64(ring.seg, off, np.uint64(ticket + slots))
    return status, value
