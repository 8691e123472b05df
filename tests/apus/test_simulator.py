"""The simulator's acceptance runs: >= 10,000 random schedules keep every invariant, and a
deliberately broken APUS (commit without a majority) is caught, so the checker can fail."""

from __future__ import annotations

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from gaia.apus.fastpath import UNSAFE_COMMIT_ALONE
from gaia.apus.simulator import WIDE_LAYOUT, SimConfig, Simulator, Violation, sweep

# (durability, replicas, first seed, schedules): 10,000 schedules in the default suite.
BATCHES = [
    *[("memory", 3, k * 1000, 1000) for k in range(3)],
    *[("fsync", 3, k * 1000, 1000) for k in range(3)],
    *[("memory", 5, k * 1000, 1000) for k in range(2)],
    *[("fsync", 5, k * 1000, 1000) for k in range(2)],
]
assert sum(b[3] for b in BATCHES) >= 10_000


@pytest.mark.parametrize(("durability", "replicas", "first", "count"), BATCHES,
                         ids=[f"{d}-{r}x-{f // 1000}" for d, r, f, _ in BATCHES])
def test_random_schedules_keep_every_invariant(durability, replicas, first, count):
    extra = {"layout": WIDE_LAYOUT} if replicas > 4 else {}
    result = sweep(range(first, first + count), durability=durability, replicas=replicas,
                   **extra)
    assert result.schedules == count
    assert not result.violations, "\n".join(result.violations[:5])


@pytest.mark.parametrize("durability", ["memory", "fsync"])
def test_the_checker_catches_a_leader_that_commits_without_a_majority(durability):
    result = sweep(range(400), durability=durability, unsafe=UNSAFE_COMMIT_ALONE)
    assert result.violations, "the broken variant went unnoticed: the checker cannot fail"
    assert any("committed" in v for v in result.violations)


def test_the_same_seed_replays_the_same_schedule():
    a = Simulator(SimConfig(seed=1234, durability="fsync"))
    b = Simulator(SimConfig(seed=1234, durability="fsync"))
    a.run()
    b.run()
    assert a.committed == b.committed and a.leaders == b.leaders and a.step_no == b.step_no


class SimMachine(RuleBasedStateMachine):
    """Hypothesis picks the schedule; the simulator checks every invariant after each step."""

    @initialize(durability=st.sampled_from(["memory", "fsync"]), seed=st.integers(0, 9999))
    def start(self, durability, seed):
        self.sim = Simulator(SimConfig(seed=seed, durability=durability))
        self.sim.bootstrap()

    @rule(k=st.integers(0, 1000), keep=st.booleans())
    def deliver(self, k, keep):
        if self.sim.inflight:
            self.sim.deliver(k % len(self.sim.inflight), keep=keep)

    @rule()
    def drop(self):
        self.sim.drop()

    @rule(n=st.integers(0, 2))
    def poll(self, n):
        self.sim.poll(n)

    @rule(n=st.integers(0, 2))
    def tick(self, n):
        self.sim.tick(n)

    @rule(n=st.integers(0, 2))
    def propose(self, n):
        self.sim.propose(n)

    @rule(n=st.integers(0, 2))
    def crash(self, n):
        self.sim.crash(n)

    @rule(n=st.integers(0, 2))
    def restart(self, n):
        self.sim.restart(n)

    @rule()
    def partition(self):
        self.sim.partition()

    @rule()
    def heal(self):
        self.sim.heal()

    @rule()
    def late_write(self):
        self.sim.late_write()

    @rule()
    def round(self):
        self.sim.round()

    @invariant()
    def invariants_hold(self):
        if hasattr(self, "sim"):
            self.sim.check()

    def teardown(self):
        if hasattr(self, "sim"):
            self.sim.settle()


SimMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=60, deadline=None)
test_hypothesis_schedules = SimMachine.TestCase


@pytest.mark.sweep
@pytest.mark.parametrize("replicas", [3, 5, 7])
@pytest.mark.parametrize("durability", ["memory", "fsync"])
def test_long_seeded_sweep(durability, replicas):
    """`invoke test -m sweep`: 20,000 longer schedules per configuration."""
    result = sweep(range(100_000, 120_000), durability=durability, replicas=replicas,
                   layout=WIDE_LAYOUT, steps=400)
    assert not result.violations, "\n".join(result.violations[:5])


def test_violation_messages_name_the_seed_to_replay():
    sim = Simulator(SimConfig(seed=99))
    with pytest.raises(Violation, match="seed 99"):
        sim.fail("example")
