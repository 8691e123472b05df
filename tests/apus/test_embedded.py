"""Replicas embedded in a program with its own state machine (TRIPOD, VM FT use this):
ordered apply, request/reply answered by the backups, snapshots restored on a new member,
membership change (learner, promote)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from gaia.apus.core import NotLeaderError
from gaia.apus.layout import LayoutConfig
from gaia.apus.logstore import Entry, LogConfig
from gaia.apus.runtime.embedded import EmbeddedReplica
from gaia.apus.runtime.segments import unlink_segments
from gaia.apus.runtime.spec import GroupSpec
from gaia.intercept.events import decode_batch

pytestmark = pytest.mark.slow


class KV:
    """A tiny state machine: entries `k=v`; requests are answered with the value."""

    def __init__(self) -> None:
        self.data: dict[str, str] = {}
        self.restored = 0

    def apply(self, entry: Entry) -> None:
        payloads = [ev.payload for ev in decode_batch(entry.payload)] or [entry.payload]
        for p in payloads:
            if b"=" in p:
                k, v = p.decode().split("=", 1)
                self.data[k] = v

    def snapshot(self) -> bytes:
        return json.dumps(self.data).encode()

    def restore(self, data: bytes) -> None:
        self.data = json.loads(data) if data else {}
        self.restored += 1

    def reply(self, entry: Entry) -> bytes:
        return self.data.get(entry.payload.decode(), "?").encode()


def _until(predicate, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def _settled_leader(nodes) -> EmbeddedReplica:
    """The leader every member agrees on (elections may overlap at start-up)."""
    def agreed():
        leaders = [n for n in nodes.values() if n.is_leader]
        return (len(leaders) == 1 and
                all(n.leader == leaders[0].runner.id for n in nodes.values()))
    _until(agreed)
    return next(n for n in nodes.values() if n.is_leader)


def _on_leader(nodes, leader, action):
    """Run action(leader), following the leadership if a view change deposes `leader`
    meanwhile (a stalled replica thread, e.g. compiling on a cold numba cache, can lose
    an election); the actions here are safe to repeat. Returns (leader, result)."""
    for _ in range(5):
        try:
            return leader, action(leader)
        except NotLeaderError:
            leader = _settled_leader(nodes)
    raise AssertionError("leadership kept changing")


def test_embedded_replicas_apply_answer_snapshot_and_grow(run_dir: Path):
    # elections after 1 s of silence: this test is about applying, answering,
    # snapshots and membership, not about failure detection
    spec = GroupSpec(replicas=[0, 1, 2], layout=LayoutConfig(max_members=4, ring_slots=32),
                     log=LogConfig(index_cap=64, arena_bytes=1 << 20), election_ticks=1000)
    spec.save(run_dir)
    apps = {r: KV() for r in range(4)}
    nodes = {r: EmbeddedReplica(run_dir, r, apps[r]).start() for r in spec.replicas}
    try:
        leader = _settled_leader(nodes)
        for i in range(40):  # more than the log holds: compaction must happen
            payload = f"k{i % 5}=v{i}".encode()
            leader, _ = _on_leader(nodes, leader, lambda n, p=payload: n.propose(p))
        _until(lambda: all(a.data == apps[leader.runner.id].data
                           for r, a in apps.items() if r in nodes))
        assert apps[0].data["k4"] == "v39"
        leader, replies = _on_leader(nodes, leader, lambda n: n.request(b"k3"))
        backups = set(nodes) - {leader.runner.id}
        assert replies and set(replies) <= backups  # a majority answered before commit
        assert set(replies.values()) == {b"v38"}
        leader, _ = _on_leader(nodes, leader, lambda n: n.compact())
        assert leader.core.log.first > 1
        nodes[3] = EmbeddedReplica(run_dir, 3, apps[3]).start()
        leader, _ = _on_leader(nodes, leader, lambda n: n.add_learner(3))
        _until(lambda: apps[3].data == apps[leader.runner.id].data)
        assert apps[3].restored >= 1  # it started from the leader's snapshot
        leader, _ = _on_leader(nodes, leader, lambda n: n.promote(3))
        assert leader.core.config.majority() == 3
        leader, _ = _on_leader(nodes, leader, lambda n: n.propose(b"k0=after"))
        _until(lambda: apps[3].data.get("k0") == "after")
    finally:
        for n in nodes.values():
            n.stop()
        unlink_segments(spec.group_id, list(range(4)))
