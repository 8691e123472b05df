"""The leader-side closed loop (runtime/selfdrive.py): the leader's own poll thread
proposes, waits for the commit and times it, through the ordinary normal case."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gaia.apus.layout import LayoutConfig
from gaia.apus.logstore import Entry, LogConfig
from gaia.apus.runtime.embedded import EmbeddedReplica
from gaia.apus.runtime.segments import stats_segment, unlink_segments
from gaia.apus.runtime.selfdrive import leader_loop
from gaia.apus.runtime.spec import GroupSpec
from gaia.errors import GaiaError
from gaia.intercept.events import decode_batch

pytestmark = pytest.mark.slow


class Counter:
    """Counts the events it applies (a committed entry may batch several)."""

    def __init__(self) -> None:
        self.events = 0

    def apply(self, entry: Entry) -> None:
        self.events += len(decode_batch(entry.payload))

    def snapshot(self) -> bytes:
        return str(self.events).encode()

    def restore(self, data: bytes) -> None:
        self.events = int(data or b"0")

    def reply(self, entry: Entry) -> bytes:
        return b""


def test_the_leader_times_its_own_proposals_and_every_replica_applies_them(run_dir: Path):
    spec = GroupSpec(replicas=[0, 1, 2], layout=LayoutConfig(max_members=3, ring_slots=32),
                     log=LogConfig(index_cap=4096, arena_bytes=1 << 22), election_ticks=200)
    spec.save(run_dir)
    # With an app the hot loop hands every commit to Python (apply): the loop must
    # resume its proposal in flight each time.
    apps = {r: Counter() for r in spec.replicas}
    nodes = {r: EmbeddedReplica(run_dir, r, apps[r]).start() for r in spec.replicas}
    segments = {r: stats_segment(spec.group_id, r) for r in spec.replicas}
    try:
        deadline = time.monotonic() + 60
        while not any(n.is_leader for n in nodes.values()):
            assert time.monotonic() < deadline, "no leader"
            time.sleep(0.01)
        leader = next(r for r, n in nodes.items() if n.is_leader)
        samples = leader_loop(segments[leader].control, spec.replica_dir(run_dir, leader),
                              300, 48)
        assert samples.size == 300 and samples.min() > 0
        deadline = time.monotonic() + 30
        while any(a.events < 300 for a in apps.values()):
            assert time.monotonic() < deadline, {r: a.events for r, a in apps.items()}
            time.sleep(0.01)
        backup = next(r for r in spec.replicas if r != leader)
        with pytest.raises(GaiaError, match="not the leader"):
            leader_loop(segments[backup].control, spec.replica_dir(run_dir, backup), 10, 48)
        again = leader_loop(segments[leader].control, spec.replica_dir(run_dir, leader), 5, 48)
        assert again.size == 5  # a second request is served too
    finally:
        for segment in segments.values():
            segment.close()
        for n in nodes.values():
            n.stop()
        unlink_segments(spec.group_id, spec.replicas)
