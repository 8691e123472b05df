"""A deterministic in-memory TRIPOD: N controller state machines fed the same committed
entries, a leader's Allocator and Reconciler, agents that report what they were told to
run. No processes, sockets or clocks: the pure logic exactly as the controllers use it."""

from __future__ import annotations

from dataclasses import dataclass, field

from gaia.tripod.allocation import AgentReport, Allocator, Offer, ReplicaStatus, TaskRequest
from gaia.tripod.entries import Entry, TaskSpec, encode, replica_key
from gaia.tripod.reconcile import Reconciler
from gaia.tripod.resources import Resources
from gaia.tripod.state import Action, Applied, ControllerStateMachine, Kill, Launch

PORTS = (31000, 31099)


@dataclass
class SimAgent:
    agent_id: str
    host: str
    capacity: Resources
    alive: bool = True
    running: dict[str, str] = field(default_factory=dict)  # key -> state
    boot: str = "boot-0"

    def report(self) -> AgentReport:
        return AgentReport(
            self.agent_id,
            self.host,
            f"addr-{self.host}",
            self.capacity,
            PORTS,
            tuple(ReplicaStatus(k, s) for k, s in sorted(self.running.items())),
            self.boot,
        )


class SimCluster:
    def __init__(self, controllers: int = 3, leader: int = 0) -> None:
        self.controllers = controllers
        self.log: list[bytes] = []
        self.machines = [ControllerStateMachine(i, controllers) for i in range(controllers)]
        self.leader = leader
        self.now = 0.0
        self.alloc = Allocator(self.machines[leader].state, leader=leader, now=0.0)
        self.reconciler = Reconciler(launch_timeout=5.0, retry_after=0.0)
        self.agents: dict[str, SimAgent] = {}
        self.applied: list[Applied] = []
        self.silenced: set[int] = set()  # controllers that died: their actions never happen

    @property
    def state(self):
        return self.machines[self.leader].state

    # -- the decision log --------------------------------------------------------------------
    def commit(self, entry: Entry) -> Applied:
        """Commit one entry: every controller applies it; launches reach the agents."""
        self.log.append(encode(entry))
        index = len(self.log)
        results = [m.apply(index, self.log[-1]) for m in self.machines]
        assert len({(r.accepted, r.reason) for r in results}) == 1, results
        task_id = getattr(entry, "task_id", None)
        if task_id is not None:
            self.alloc.settle(task_id)
        for controller, r in enumerate(results):
            for action in r.actions if controller not in self.silenced else ():
                self.execute(action)
        self.applied.append(results[self.leader])
        return results[self.leader]

    def execute(self, action: Action) -> None:
        a = action.replica
        agent = self.agents.get(a.agent_id)
        if agent is None or not agent.alive:
            return  # the launch is lost with the agent
        key = replica_key(action.task_id, a.index, a.incarnation)
        if isinstance(action, Launch):
            agent.running.setdefault(key, "running")
        elif isinstance(action, Kill) and key in agent.running:
            agent.running[key] = "killed"
        # Reconfigure: the replica keeps running (it learns its group's new members)

    # -- agents, frameworks, time -----------------------------------------------------------
    def add_agent(self, agent_id: str, host: str, cpus: float = 4, mem: int = 4096) -> SimAgent:
        agent = SimAgent(agent_id, host, Resources.of(cpus, mem))
        self.agents[agent_id] = agent
        self.report_all()
        return agent

    def report_all(self) -> None:
        """S1: every live agent reports; new or changed agents are registered."""
        for agent in self.agents.values():
            if agent.alive:
                entry = self.alloc.report(agent.report(), self.now)
                if entry is not None:
                    self.commit(entry)

    def register_framework(self, framework_id: str, max_r: int) -> Applied:
        from gaia.tripod.entries import RegisterFramework

        return self.commit(RegisterFramework(framework_id, framework_id, max_r))

    def offer(self, framework_id: str) -> Offer | None:
        offers = self.alloc.make_offers([framework_id], self.now)
        return (
            offers[0]
            if offers
            else next(
                (o for o in self.alloc.offers.values() if o.framework_id == framework_id), None
            )
        )

    def launch(self, offer: Offer, requests: list[TaskRequest], keep_offer: bool = False):
        results = self.alloc.accept(offer.offer_id, requests, self.now, keep_offer=keep_offer)
        for result in results:
            entry = getattr(result, "entry", None)
            if entry is not None:
                assert self.commit(entry).accepted
        return results

    def change_leader(self, leader: int) -> None:
        """The leading controller died; `leader` takes over with a fresh soft state."""
        self.leader = leader
        self.alloc = Allocator(self.machines[leader].state, leader=leader, now=self.now)
        self.reconciler = Reconciler(launch_timeout=5.0, retry_after=0.0)

    def advance(self, seconds: float, rounds: int = 1) -> None:
        """Time passes: agents report, the leader reconciles and commits repairs."""
        for _ in range(rounds):
            self.now += seconds
            self.report_all()
            rec = self.reconciler.step(self.alloc, self.now)
            for entry in rec.entries:
                self.commit(entry)
            for agent_id, key in rec.kills:
                self.agents[agent_id].running[key] = "killed"

    def kill_agent(self, agent_id: str) -> None:
        agent = self.agents[agent_id]
        agent.alive = False
        agent.running.clear()

    def reboot_agent(self, agent_id: str) -> None:
        """The host dies and comes back at once (within the agent timeout): an empty
        agent with a new boot id."""
        agent = self.agents[agent_id]
        agent.running.clear()
        agent.boot = f"boot-{int(agent.boot.rsplit('-', 1)[1]) + 1}"


def task(task_id: str, r: int = 1, cpus: float = 0.5, mem: int = 128) -> TaskRequest:
    return TaskRequest(task_id, TaskSpec(app="redis"), Resources.of(cpus, mem), r)
