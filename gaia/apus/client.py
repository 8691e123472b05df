"""The Python client of an APUS group: propose bytes, read committed entries, find the
leader and view.

A proposal goes into the leader's input ring (gaia_ring.h) like the shim's inputs do and
returns once committed, with its log index. When the leader fails before answering, the
client finds the new one (status files / deployment.json) and proposes again, so a
proposal may commit twice (at-least-once; give payloads an id when that matters).
"""

from __future__ import annotations

import time
from pathlib import Path

from gaia.apus.logstore import Entry
from gaia.apus.reader import CommittedLogReader
from gaia.apus.ringio import ring_name
from gaia.apus.runtime.group import current_run_dir
from gaia.apus.runtime.spec import GroupSpec
from gaia.apus.runtime.status import live_deployment
from gaia.errors import GaiaError
from gaia.intercept.ring import ProposalFailed, Ring


class OversizedEntryError(GaiaError):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"entry of {size} bytes exceeds the maximum of {limit} bytes",
                         "split it into smaller entries (or raise the ring's slot size)")


class Client:
    def __init__(self, run_dir: Path | str | None = None) -> None:
        self.run_dir = current_run_dir(run_dir)
        self.spec = GroupSpec.load(self.run_dir)
        self._ring: Ring | None = None
        self._ring_of: int | None = None

    def leader(self) -> int | None:
        return live_deployment(self.run_dir).leader

    def view(self) -> int:
        return live_deployment(self.run_dir).view

    @property
    def max_entry(self) -> int:
        return self.spec.ring_slot_size - 64

    def propose(self, data: bytes, timeout: float = 10.0) -> int:
        """Replicate `data`; returns its committed log index."""
        if len(data) > self.max_entry:
            raise OversizedEntryError(len(data), self.max_entry)
        deadline = time.monotonic() + timeout
        problem = "no leader"
        while time.monotonic() < deadline:
            leader = self.leader()
            if leader is None:
                time.sleep(0.005)
                continue
            try:
                ring = self._ring_for(leader)
                return ring.propose(data, timeout=max(0.05, deadline - time.monotonic()))
            except (ProposalFailed, GaiaError) as exc:
                problem = str(exc)
                self._drop_ring()
                time.sleep(0.002)
        raise GaiaError(f"proposal not committed within {timeout:.1f} s ({problem})",
                        "check `gaia status`: is a majority of replicas running?")

    def _ring_for(self, leader: int) -> Ring:
        if self._ring is None or self._ring_of != leader:
            self._drop_ring()
            self._ring = Ring.open(ring_name(self.spec.group_id, leader))
            self._ring_of = leader
        return self._ring

    def _drop_ring(self) -> None:
        if self._ring is not None:
            self._ring.close()
        self._ring = None
        self._ring_of = None

    def entries(self, start: int = 1, end: int | None = None,
                replica: int | None = None) -> list[Entry]:
        """Committed entries as replica `replica` (default: the leader) holds them."""
        replica = self.leader() if replica is None else replica
        if replica is None:
            raise GaiaError("no leader to read from", "pass replica=")
        with CommittedLogReader(self.spec.group_id, replica, register=False) as reader:
            return reader.entries(start, end)

    def close(self) -> None:
        self._drop_ring()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
