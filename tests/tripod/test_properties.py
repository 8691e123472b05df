"""Acceptance properties of TRIPOD's allocation (hypothesis, stateful): whatever sequence
of agents joining and dying, frameworks registering, offers, launches with any R, kills
and re-placements happens,
- replicas of one task never share a host;
- an offer never exceeds the capacity divided by the framework's max R, and all
  reservations together never exceed what is available;
- an R = 1 task gives back exactly max R − 1 shares (in general max R − R);
- every controller holds the same state, and a controller that restarts and replays the
  log (from the start, or from a snapshot) reaches the same state and placements."""

from __future__ import annotations

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from gaia.tripod.allocation import Accepted
from gaia.tripod.entries import KillTask
from gaia.tripod.resources import Resources, total
from gaia.tripod.state import ControllerStateMachine

from .sim import SimCluster, task


class TripodModel(RuleBasedStateMachine):
    @initialize(
        controllers=st.integers(1, 5),
        agents=st.lists(st.tuples(st.integers(0, 6), st.integers(1, 8)), min_size=1, max_size=7),
    )
    def setup(self, controllers: int, agents: list[tuple[int, int]]) -> None:
        self.sim = SimCluster(controllers=controllers)
        self.next_id = 0
        self.snapshots: list[tuple[int, bytes]] = []
        for host, cpus in agents:
            self.agent_joins(host, cpus, 1024 * cpus)

    def fresh(self, prefix: str) -> str:
        self.next_id += 1
        return f"{prefix}{self.next_id}"

    @rule(host=st.integers(0, 6), cpus=st.integers(1, 8), mem=st.integers(64, 4096))
    def agent_joins(self, host: int, cpus: int, mem: int) -> None:
        self.sim.add_agent(self.fresh("a"), f"h{host}", cpus=cpus, mem=mem)

    @rule(max_r=st.integers(1, 5))
    def framework_registers(self, max_r: int) -> None:
        fid = self.fresh("f")
        applied = self.sim.register_framework(fid, max_r)
        assert applied.accepted == (max_r <= self.sim.controllers)

    @precondition(lambda self: self.sim.state.frameworks)
    @rule(
        data=st.data(),
        tasks=st.lists(
            st.tuples(st.integers(1, 5), st.integers(1, 1500), st.integers(1, 512)),
            min_size=1,
            max_size=4,
        ),
    )
    def framework_launches(self, data, tasks) -> None:
        fid = data.draw(st.sampled_from(sorted(self.sim.state.frameworks)))
        alloc = self.sim.alloc
        available_before = alloc.available(self.sim.now)
        offer = self.sim.offer(fid)
        if offer is None:
            return
        m = offer.max_r
        capacity = total([a.capacity for a in self.sim.alloc.live_agents(self.sim.now)])
        # S2: never more than capacity / max R, and max R copies fit in what is available
        assert offer.remaining.fits_in(capacity.divided(m))
        assert offer.remaining.times(m).fits_in(available_before)
        for r, cpus_m, mem in tasks:
            req = task(self.fresh("t"), r=r, cpus=cpus_m / 1000, mem=mem)
            offerable_before = alloc.offerable(self.sim.now)
            (result,) = self.sim.launch(offer, [req], keep_offer=True)
            event(f"R={r} {type(result).__name__}")
            if isinstance(result, Accepted):
                assert result.returned == req.resources.times(m - r)
                # S3: what goes back to the pool is exactly (max R − R) shares
                gained = alloc.offerable(self.sim.now) - offerable_before
                assert gained == req.resources.times(m - r)
                if r == 1:
                    assert gained == req.resources.times(m - 1)
                assert not result.consensus if r == 1 else result.consensus
            else:
                assert (
                    r > min(m, self.sim.controllers)
                    or "room" in result.problem
                    or ("hosts" in result.problem or "offer has" in result.problem)
                ), result.problem
        alloc.decline(offer.offer_id)

    @precondition(lambda self: any(a.alive for a in self.sim.agents.values()))
    @rule(data=st.data())
    def agent_dies(self, data) -> None:
        alive = sorted(a for a, agent in self.sim.agents.items() if agent.alive)
        self.sim.kill_agent(data.draw(st.sampled_from(alive)))

    @rule(seconds=st.sampled_from([0.5, 2.0, 4.0, 6.0]))
    def time_passes(self, seconds: float) -> None:
        before = len(self.sim.applied)
        self.sim.advance(seconds)
        for applied in self.sim.applied[before:]:
            event(f"{type(applied.entry).__name__} accepted={applied.accepted}")
            # a leader whose view is current never proposes what the log then rejects
            assert applied.accepted, applied.reason

    @precondition(lambda self: self.sim.state.tasks)
    @rule(data=st.data())
    def framework_kills_a_task(self, data) -> None:
        task_id = data.draw(st.sampled_from(sorted(self.sim.state.tasks)))
        self.sim.commit(KillTask(task_id, "test"))

    @precondition(lambda self: any(a.running for a in self.sim.agents.values()))
    @rule(data=st.data(), outcome=st.sampled_from(["finished", "failed"]))
    def a_replica_exits(self, data, outcome: str) -> None:
        running = sorted(
            (agent_id, key)
            for agent_id, agent in self.sim.agents.items()
            for key, state in agent.running.items()
            if state == "running"
        )
        if running:
            agent_id, key = data.draw(st.sampled_from(running))
            self.sim.agents[agent_id].running[key] = outcome

    @rule(data=st.data())
    def leader_changes(self, data) -> None:
        self.sim.change_leader(data.draw(st.integers(0, self.sim.controllers - 1)))

    @rule()
    def controller_snapshots(self) -> None:
        leader = self.sim.machines[self.sim.leader]
        self.snapshots.append((leader.applied_index, leader.snapshot()))

    # -- invariants ---------------------------------------------------------------------
    @invariant()
    def replicas_of_a_task_never_share_a_host(self) -> None:
        for t in self.sim.state.tasks.values():
            live = [rep.assignment.host for rep in t.replicas if rep.state in ("placed", "lost")]
            assert len(live) == len(set(live)), t
        for key, (a, _) in self.sim.alloc.pending.items():
            t = self.sim.state.tasks.get(key[0])
            if t is not None:
                assert a.host not in t.hosts_in_use(except_index=a.index)

    @invariant()
    def reservations_never_exceed_what_is_available(self) -> None:
        alloc = self.sim.alloc
        alloc.rescind_excess(self.sim.now)
        assert alloc.reserved().fits_in(alloc.available(self.sim.now))

    @invariant()
    def placed_replicas_fit_in_their_agents(self) -> None:
        state = self.sim.state
        for agent in state.active_agents():
            assert state.used(agent.agent_id).fits_in(agent.capacity)
            ports = [
                p for _, rep in state.placed_on(agent.agent_id) for _, p in rep.assignment.ports
            ]
            assert len(ports) == len(set(ports))

    @invariant()
    def every_controller_holds_the_same_state(self) -> None:
        digests = {m.state.digest() for m in self.sim.machines}
        assert len(digests) == 1

    def teardown(self) -> None:
        if not hasattr(self, "sim"):
            return
        sim = self.sim
        want = sim.state.digest()
        for controller in range(sim.controllers):
            restarted = ControllerStateMachine(controller, sim.controllers)
            for index, raw in enumerate(sim.log, start=1):
                restarted.apply(index, raw)
            assert restarted.state.digest() == want
            assert restarted.state.placements() == sim.state.placements()
            for index, snap in self.snapshots[-2:]:
                restored = ControllerStateMachine.restore(controller, snap)
                assert restored.applied_index == index
                for i, raw in enumerate(sim.log, start=1):
                    restored.apply(i, raw)  # entries <= index are skipped
                assert restored.state.digest() == want
                assert restored.desired_launches() == sim.machines[controller].desired_launches()


TestTripodModel = TripodModel.TestCase
TestTripodModel.settings = settings(
    max_examples=100,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def test_resources_division_is_conservative():
    """Floor division: m copies of avail // m always fit in avail."""
    from hypothesis import given

    @given(st.integers(0, 10**9), st.integers(0, 10**9), st.integers(1, 9))
    def check(cpus_m: int, mem: int, m: int) -> None:
        avail = Resources(cpus_m, mem)
        assert avail.divided(m).times(m).fits_in(avail)

    check()
