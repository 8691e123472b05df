"""The serve gate: the view in which a replica's server may take clients as the leader.

Why: an elected APUS replica must not switch its server's shim to LEADER while the
committed suffix of the old view is still being replayed into it — client inputs would
then run before older committed ones, and the replicas would diverge. The agent replays
up to the new view's first entry, then opens the gate for that view; the APUS replica
(node.py) publishes LEADER in its ring only while it leads in exactly that view. A new
view (or a restart, which re-creates the segment) closes it again.

One 64-byte shared-memory segment per replica, `/gaia-<group>-r<id>-serve`:
word 0 = the view the executor is ready to lead in (0: none).
"""

from __future__ import annotations

import numpy as np

from gaia.intercept.ring import nb_load_u64, nb_store_u64
from gaia.intercept.shm import ShmSegment, shm_path

GATE_BYTES = 64


def gate_name(group_id: str, replica_id: int) -> str:
    return f"/gaia-{group_id}-r{replica_id}-serve"


class ServeGate(ShmSegment):
    what = "serve gate segment"

    @classmethod
    def create(cls, group_id: str, replica_id: int) -> ServeGate:
        """A closed gate (replaces one left by an earlier incarnation)."""
        name = gate_name(group_id, replica_id)
        shm_path(name).unlink(missing_ok=True)
        return cls._create(name, GATE_BYTES)

    @classmethod
    def open(cls, group_id: str, replica_id: int) -> ServeGate:
        return cls._open(gate_name(group_id, replica_id))

    @property
    def view(self) -> int:
        return int(nb_load_u64(self.seg, 0))

    def open_for(self, view: int) -> None:
        nb_store_u64(self.seg, 0, np.uint64(view))

    def shut(self) -> None:
        self.open_for(0)
