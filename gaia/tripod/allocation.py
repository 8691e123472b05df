"""The replication-aware allocation of the GAIA proposal's Figure 5 (S1–S4), pure logic.

The `Allocator` is the leading controller's soft state: the latest agent reports (S1), the
outstanding offers (S2) and the decisions it proposed that are not applied yet. Its
decisions (S3, S4) are entries for the DecisionLog; the replicated `ClusterState` is only
read. Nothing here does I/O or reads a clock: callers pass `now`.

Accounting (integers, exact):
    available  = Σ over live agents (capacity − used by placed replicas − pending)
    reserved   = Σ over outstanding offers of offer.reserved
    offerable  = available − reserved
S2: a framework with max R = m is offered `offerable // m`, and TRIPOD reserves m times
that (the conservative reservation: enough for every offered task to be replicated m
times). S3/S4: launching a task of size t with R uses R·t of `available` and releases m·t
of `reserved`, so `offerable` grows by (m − R)·t: the shares the task does not need go
back to the pool. For R = 1 that is exactly m − 1 shares.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, field

from gaia.tripod.entries import (
    PlaceTask,
    RegisterAgent,
    ReplaceReplica,
    ReplicaAssignment,
    TaskSpec,
    port_names,
)
from gaia.tripod.resources import Resources, total
from gaia.tripod.state import AgentRecord, ClusterState, check_replica_strength


@dataclass(frozen=True)
class ReplicaStatus:
    """What an agent knows of one replica incarnation it was asked to run."""

    key: str  # entries.replica_key(task_id, index, incarnation)
    state: str  # staging | running | finished | failed | killed
    exit_code: int | None = None
    pid: int | None = None
    message: str = ""
    # R > 1: the replica's part in its APUS group ("leader" = serving clients in `view`;
    # else "backup", "promoting", "starting", "down"); "" for R = 1 replicas.
    role: str = ""
    view: int = 0


@dataclass(frozen=True)
class AgentReport:
    """S1: an agent's periodic report (identity, capacity, what it runs)."""

    agent_id: str
    host: str
    address: str
    capacity: Resources
    port_range: tuple[int, int]
    tasks: tuple[ReplicaStatus, ...] = ()
    boot: str = ""  # new with every start of the agent: a changed one = the host rebooted


@dataclass
class Offer:
    offer_id: str
    framework_id: str
    max_r: int
    remaining: Resources  # what the framework may still launch (its view)
    reserved: Resources  # what TRIPOD holds for it: remaining × max R
    hosts: int  # distinct live hosts with free resources when offered
    created: float

    def to_json(self) -> dict[str, object]:
        return {
            "offer_id": self.offer_id,
            "framework_id": self.framework_id,
            "max_r": self.max_r,
            "resources": self.remaining.to_json(),
            "hosts": self.hosts,
        }


@dataclass(frozen=True)
class TaskRequest:
    """A framework's task: its id (chosen by the framework, as a Mesos TaskID), what to
    run, the resources of ONE replica, and its replica strength R."""

    task_id: str
    spec: TaskSpec
    resources: Resources
    r: int = 1
    agent_id: str | None = None  # preferred agent for replica 0


@dataclass(frozen=True)
class Accepted:
    entry: PlaceTask
    returned: Resources  # shares given back to the pool: (max R − R) × resources

    @property
    def consensus(self) -> bool:
        return self.entry.consensus


@dataclass(frozen=True)
class Rejected:
    task_id: str
    problem: str
    fix: str = ""


class PlacementError(Exception):
    def __init__(self, problem: str, fix: str) -> None:
        super().__init__(problem)
        self.problem, self.fix = problem, fix


@dataclass
class Allocator:
    state: ClusterState
    leader: int
    now: float = 0.0  # when this controller took over; agents get a grace period from it
    agent_timeout: float = 3.0
    epoch: int = 0  # distinguishes offer ids of successive leaderships
    last_seen: dict[str, float] = field(default_factory=dict)
    reports: dict[str, AgentReport] = field(default_factory=dict)
    offers: dict[str, Offer] = field(default_factory=dict)
    # Decided but not yet applied: (task_id, index, incarnation) -> (assignment, resources)
    pending: dict[tuple[str, int, int], tuple[ReplicaAssignment, Resources]] = field(
        default_factory=dict
    )
    _offer_ids: itertools.count = field(default_factory=itertools.count)

    # -- S1: agent reports -----------------------------------------------------------------
    def report(self, rep: AgentReport, now: float) -> RegisterAgent | None:
        """Record a report; returns the entry to propose when the agent is new or changed."""
        self.last_seen[rep.agent_id] = now
        self.reports[rep.agent_id] = rep
        known = self.state.agents.get(rep.agent_id)
        current = (rep.host, rep.address, rep.capacity, rep.port_range, rep.boot)
        if known is None or not known.active or current != (
            known.host, known.address, known.capacity, known.port_range, known.boot
        ):
            return RegisterAgent(rep.agent_id, rep.host, rep.address, rep.capacity,
                                 rep.port_range, rep.boot)
        return None

    def is_live(self, agent_id: str, now: float) -> bool:
        agent = self.state.agents.get(agent_id)
        if agent is None or not agent.active:
            return False
        return now - self.last_seen.get(agent_id, self.now) <= self.agent_timeout

    def live_agents(self, now: float) -> list[AgentRecord]:
        return [a for a in self.state.active_agents() if self.is_live(a.agent_id, now)]

    def lost_agents(self, now: float) -> list[str]:
        return [a.agent_id for a in self.state.active_agents() if not self.is_live(a.agent_id, now)]

    def forget_agent(self, agent_id: str) -> None:
        self.last_seen.pop(agent_id, None)
        self.reports.pop(agent_id, None)

    # -- resources ---------------------------------------------------------------------------
    def _pending_on(self, agent_id: str) -> list[tuple[ReplicaAssignment, Resources]]:
        return [(a, res) for a, res in self.pending.values() if a.agent_id == agent_id]

    def free(self, agent_id: str) -> Resources:
        pending = total([res for _, res in self._pending_on(agent_id)])
        return (self.state.free(agent_id) - pending).clamp()

    def free_ports(self, agent: AgentRecord, count: int) -> list[int]:
        taken = self.state.used_ports(agent.agent_id)
        taken |= {port for a, _ in self._pending_on(agent.agent_id) for _, port in a.ports}
        lo, hi = agent.port_range
        out = []
        for port in range(lo, hi + 1):
            if port not in taken:
                out.append(port)
                if len(out) == count:
                    break
        return out

    def available(self, now: float) -> Resources:
        return total([self.free(a.agent_id) for a in self.live_agents(now)])

    def reserved(self) -> Resources:
        return total([offer.reserved for offer in self.offers.values()])

    def offerable(self, now: float) -> Resources:
        return (self.available(now) - self.reserved()).clamp()

    # -- S2: offers ------------------------------------------------------------------------
    def dominant_share(self, framework_id: str) -> float:
        capacity = total([a.capacity for a in self.state.active_agents()])
        used = total(
            [
                task.resources.times(sum(rep.holds_resources for rep in task.replicas))
                for task in self.state.tasks.values()
                if task.framework_id == framework_id
            ]
        )
        return max(
            used.cpus_m / max(capacity.cpus_m, 1),
            used.mem_mb / max(capacity.mem_mb, 1),
        )

    def make_offers(self, framework_ids: Iterable[str], now: float) -> list[Offer]:
        """One offer per framework without one, lowest dominant share first (DRF order)."""
        waiting = {o.framework_id for o in self.offers.values()}
        order = sorted(
            (fid for fid in framework_ids if fid in self.state.frameworks and fid not in waiting),
            key=lambda fid: (self.dominant_share(fid), fid),
        )
        made = []
        for fid in order:
            max_r = self.state.frameworks[fid].max_r
            share = self.offerable(now).divided(max_r)
            if share.is_empty():
                continue
            offer = Offer(
                offer_id=f"o{self.leader}.{self.epoch}-{next(self._offer_ids)}",
                framework_id=fid,
                max_r=max_r,
                remaining=share,
                reserved=share.times(max_r),
                hosts=len(self._hosts_with_room(Resources(1, 1), now)),
                created=now,
            )
            self.offers[offer.offer_id] = offer
            made.append(offer)
        return made

    def decline(self, offer_id: str) -> None:
        self.offers.pop(offer_id, None)

    def expire(self, now: float, offer_timeout: float) -> list[Offer]:
        old = [o for o in self.offers.values() if now - o.created > offer_timeout]
        for offer in old:
            del self.offers[offer.offer_id]
        return old

    def rescind_excess(self, now: float) -> list[Offer]:
        """Agents were lost: withdraw the newest offers until reservations fit again."""
        rescinded = []
        for offer in sorted(self.offers.values(), key=lambda o: (-o.created, o.offer_id)):
            if self.reserved().fits_in(self.available(now)):
                break
            del self.offers[offer.offer_id]
            rescinded.append(offer)
        return rescinded

    # -- S3 + S4: launching tasks on an offer ------------------------------------------------
    def accept(
        self,
        offer_id: str,
        requests: Iterable[TaskRequest],
        now: float,
        keep_offer: bool = False,
    ) -> list[Accepted | Rejected]:
        """Decide each task: R = 1 -> a record entry the leader launches at once (S3);
        R > 1 -> a consensus entry assigning replica i to a controller and an agent on
        distinct hosts (S4). Without `keep_offer` the rest of the offer is released."""
        offer = self.offers.get(offer_id)
        results: list[Accepted | Rejected] = []
        for req in requests:
            if offer is None:
                results.append(
                    Rejected(
                        req.task_id, f"offer {offer_id} is no longer valid", "wait for a new offer"
                    )
                )
                continue
            try:
                results.append(self._accept_one(offer, req, now))
            except PlacementError as exc:
                results.append(Rejected(req.task_id, exc.problem, exc.fix))
        if offer is not None and not keep_offer:
            self.decline(offer_id)
        return results

    def _accept_one(self, offer: Offer, req: TaskRequest, now: float) -> Accepted:
        problem = check_replica_strength(req.r, offer.max_r, self.state.controllers)
        if problem:
            raise PlacementError(
                problem, f"use R between 1 and {min(offer.max_r, self.state.controllers)}"
            )
        if req.task_id in self.state.tasks or any(k[0] == req.task_id for k in self.pending):
            raise PlacementError(f"task {req.task_id} already exists", "use a new task id")
        if not req.resources.fits_in(offer.remaining):
            raise PlacementError(
                f"task {req.task_id} needs {req.resources}, the offer has {offer.remaining} left",
                "ask for fewer resources or wait for the next offer",
            )
        replicas = self.place(req.resources, req.r, now, preferred=req.agent_id)
        entry = PlaceTask(
            task_id=req.task_id,
            framework_id=offer.framework_id,
            spec=req.spec,
            resources=req.resources,
            r=req.r,
            replicas=tuple(replicas),
            consensus=req.r > 1,
        )
        offer.remaining = offer.remaining - req.resources
        offer.reserved = offer.reserved - req.resources.times(offer.max_r)
        self.note_pending(req.task_id, replicas, req.resources)
        return Accepted(entry, returned=req.resources.times(offer.max_r - req.r))

    # -- placement -----------------------------------------------------------------------------
    def _hosts_with_room(
        self, resources: Resources, now: float, ports: int = 1
    ) -> list[AgentRecord]:
        """The best agent of each host that fits `resources`, most free first."""
        fits = [
            a
            for a in self.live_agents(now)
            if resources.fits_in(self.free(a.agent_id)) and len(self.free_ports(a, ports)) == ports
        ]
        fits.sort(
            key=lambda a: (-self.free(a.agent_id).cpus_m, -self.free(a.agent_id).mem_mb, a.agent_id)
        )
        best: dict[str, AgentRecord] = {}
        for agent in fits:
            best.setdefault(agent.host, agent)
        return list(best.values())

    def place(
        self,
        resources: Resources,
        r: int,
        now: float,
        preferred: str | None = None,
        exclude_hosts: Iterable[str] = (),
        first_index: int = 0,
        incarnation: int = 0,
        controller: int | None = None,
        count: int | None = None,
    ) -> list[ReplicaAssignment]:
        """`count` (default R) replicas of an R-task on distinct hosts with room; replica i
        placed by controller (leader + i) mod C, so the leader places replica 0 (it
        answers the framework)."""
        names = port_names(r)
        count = r if count is None else count
        excluded = set(exclude_hosts)
        candidates = [
            a for a in self._hosts_with_room(resources, now, len(names)) if a.host not in excluded
        ]
        if preferred is not None:
            chosen = [a for a in candidates if a.agent_id == preferred]
            if not chosen:
                raise PlacementError(
                    f"agent {preferred} has no room for {resources} (or is not live)",
                    "leave the agent unset or pick another one",
                )
            candidates = chosen + [a for a in candidates if a.host != chosen[0].host]
        live_hosts = {a.host for a in self.live_agents(now)} - excluded
        if len(live_hosts) < count:
            raise PlacementError(
                f"R={r} needs {count} distinct hosts but only {len(live_hosts)} live hosts are eligible",
                "add agents on more hosts or lower R",
            )
        if len(candidates) < count:
            raise PlacementError(
                f"R={r} needs {count} distinct hosts with room for {resources}; only {len(candidates)} have room",
                "free resources, add agents, or ask for less",
            )
        controllers = self.state.controllers
        out = []
        for i, agent in enumerate(candidates[:count]):
            index = first_index + i
            ports = self.free_ports(agent, len(names))
            out.append(
                ReplicaAssignment(
                    index=index,
                    incarnation=incarnation,
                    controller=(self.leader + index) % controllers
                    if controller is None
                    else controller,
                    agent_id=agent.agent_id,
                    host=agent.host,
                    address=agent.address,
                    ports=tuple(zip(names, ports, strict=True)),
                )
            )
        return out

    def note_pending(
        self, task_id: str, replicas: Iterable[ReplicaAssignment], res: Resources
    ) -> None:
        for a in replicas:
            self.pending[(task_id, a.index, a.incarnation)] = (a, res)

    def settle(self, task_id: str) -> None:
        """The decisions about `task_id` were applied (or rejected): drop them from pending."""
        for key in [k for k in self.pending if k[0] == task_id]:
            del self.pending[key]

    def is_pending(self, task_id: str, index: int, incarnation: int) -> bool:
        return (task_id, index, incarnation) in self.pending

    # -- re-placement ------------------------------------------------------------------------
    def replacement(self, task_id: str, index: int, now: float, reason: str) -> ReplaceReplica:
        """Place replica `index` of a task elsewhere (a new consensus entry): on a host
        none of its other replicas uses, nor the one it is leaving; the leader launches it."""
        task = self.state.tasks[task_id]
        old = task.replicas[index].assignment
        exclude = task.hosts_in_use(except_index=index) | {old.host}
        exclude |= {  # replicas of this task being re-placed in the same round
            a.host for (tid, i, _), (a, _) in self.pending.items() if tid == task_id and i != index
        }
        (new,) = self.place(
            task.resources,
            task.r,
            now,
            exclude_hosts=exclude,
            first_index=index,
            incarnation=old.incarnation + 1,
            controller=self.leader,
            count=1,
        )
        self.note_pending(task_id, [new], task.resources)
        return ReplaceReplica(task_id, new, reason)
