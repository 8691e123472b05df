"""Seeded fault schedules: deterministic per seed, well-formed, and played for real."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gaia.cluster.host import LocalHost
from gaia.cluster.nemesis import FAULT_KINDS, Nemesis, Node
from gaia.cluster.schedule import LEADER, ScheduledFault, generate, play
from gaia.errors import ConfigError

NODES = ["n1", "n2", "n3", "n4", "n5"]


@settings(max_examples=100, deadline=None)
@given(
    seed=st.integers(0, 2**32),
    duration=st.floats(0, 120),
    kinds=st.lists(st.sampled_from(FAULT_KINDS), min_size=1, unique=True),
)
def test_schedules_are_deterministic_and_well_formed(seed: int, duration: float, kinds: list[str]):
    schedule = generate(seed, duration, kinds, NODES, relays=["r1"])
    assert schedule == generate(seed, duration, kinds, NODES, relays=["r1"])
    end = 0.0
    for fault in schedule:
        assert fault.kind in kinds
        assert fault.at_s >= end  # no overlap: one fault at a time, healed before the next
        end = fault.at_s + fault.duration_s
        assert end <= duration + 1e-6
        if fault.kind in ("partition", "one-way"):
            other = fault.param_dict()["other"]
            assert set(fault.targets).isdisjoint(other)
            assert set(fault.targets) | set(other) == set(NODES)
            assert len(fault.targets) < len(other)  # the majority keeps a quorum
        elif fault.kind == "delay":
            assert fault.targets == ("r1",)
        else:
            assert len(fault.targets) == 1 and fault.targets[0] in [*NODES, LEADER]


def test_seeds_differ_and_invalid_requests_fail():
    assert generate(1, 60, ["kill", "pause"], NODES) != generate(2, 60, ["kill", "pause"], NODES)
    with pytest.raises(ConfigError, match="unknown nemesis kinds"):
        generate(1, 60, ["kill", "flood"], NODES)
    with pytest.raises(ConfigError, match="at least two nodes"):
        generate(1, 60, ["partition"], ["n1"])
    with pytest.raises(ConfigError, match="needs relays"):
        generate(1, 60, ["delay"], NODES)


def test_play_applies_heals_and_resolves_the_leader(tmp_path: Path):
    host = LocalHost()

    def launcher(name: str):
        argv = [sys.executable, "-c", "import time; time.sleep(300)"]
        return lambda: host.spawn(name, argv, tmp_path / f"{name}.log")

    nodes = [Node(n, host, launch=launcher(n)) for n in ("n1", "n2")]
    for node in nodes:
        node.start()
    first_n2 = nodes[1].process
    schedule = [
        ScheduledFault(0.0, "pause", ("n1",), 0.2),
        ScheduledFault(0.3, "kill", (LEADER,), 0.2),
        ScheduledFault(0.6, "partition", ("n1",), 0.1, (("other", ("n2",)),)),  # refused: shm
    ]
    timeline = play(Nemesis(nodes, transport="shm"), schedule, resolve=lambda _: "n2")
    assert [(f.kind, f.targets) for f in timeline.faults] == [("pause", ("n1",)), ("kill", ("n2",))]
    assert all(not f.active and f.healed_ns > f.started_ns for f in timeline.faults)
    assert timeline.faults[1].started_ns - timeline.started_ns >= 300_000_000  # waited for 0.3 s
    assert len(timeline.errors) == 1 and "shm" in timeline.errors[0]
    assert first_n2 is not None and not first_n2.alive()
    for node in nodes:
        assert node.process is not None and node.process.alive()  # resumed / relaunched
        node.process.stop()
