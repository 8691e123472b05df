"""The leader's reconciliation: compare what the log says should run with what agents
report, and decide the entries that repair the difference. Pure: callers pass `now`.

- an agent silent for longer than the agent timeout -> RemoveAgent (its replicas: lost);
- a lost replica, or one its agent never reported within the launch timeout (the agent or
  the launching controller died during placement) -> ReplaceReplica on another host;
- a replica its agent reports as exited -> EndReplica (frees its resources); except a
  failed replica of an R > 1 task (its agent's in-place restarts did not bring it back):
  it is re-placed like a lost one, up to MAX_INCARNATIONS, so the task regains its
  strength instead of running short of a replica for good;
- a process an agent runs that the log does not know (a replaced incarnation, an R = 1
  task whose record never committed) -> killed, as Mesos reconciliation does.
A proposal in flight is not proposed again before `retry_after` seconds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gaia.tripod.allocation import Allocator, PlacementError
from gaia.tripod.entries import EndReplica, Entry, RemoveAgent, replica_key
from gaia.tripod.state import ENDED_STATES, LOST, PLACED

MAX_INCARNATIONS = 16  # re-placements of one R > 1 replica after failures, then it ends


@dataclass
class Reconciliation:
    entries: list[Entry] = field(default_factory=list)
    kills: list[tuple[str, str]] = field(default_factory=list)  # (agent_id, replica key)
    waiting: list[str] = field(default_factory=list)  # replicas that found no host yet


@dataclass
class Reconciler:
    launch_timeout: float = 10.0
    retry_after: float = 2.0
    expected_since: dict[str, float] = field(default_factory=dict)
    proposed: dict[str, float] = field(default_factory=dict)

    def once(self, tag: str, now: float) -> bool:
        """True if `tag` may be proposed now (not proposed within retry_after)."""
        if now - self.proposed.get(tag, float("-inf")) < self.retry_after:
            return False
        self.proposed[tag] = now
        return True

    def step(self, alloc: Allocator, now: float) -> Reconciliation:
        out = Reconciliation()
        state = alloc.state
        for agent_id in alloc.lost_agents(now):
            if self.once(f"remove:{agent_id}", now):
                out.entries.append(
                    RemoveAgent(agent_id, f"no report for {alloc.agent_timeout:g} s")
                )
        known: set[str] = set()
        for task in state.tasks.values():
            for rep in task.replicas:
                a = rep.assignment
                key = replica_key(task.task_id, a.index, a.incarnation)
                known.add(key)
                if rep.state == LOST:
                    self._replace(
                        alloc, out, task.task_id, a.index, now, f"agent {a.agent_id} lost"
                    )
                elif rep.state == PLACED and alloc.is_live(a.agent_id, now):
                    self._check_placed(alloc, out, task.task_id, a.index, key, now)
        for agent_id, report in alloc.reports.items():
            if not alloc.is_live(agent_id, now):
                continue
            for status in report.tasks:
                if status.state in ENDED_STATES or status.key in known:
                    continue
                task_id, index, incarnation = parse_key(status.key)
                if not alloc.is_pending(task_id, index, incarnation):
                    out.kills.append((agent_id, status.key))
        for key in [k for k in self.expected_since if k not in known]:
            del self.expected_since[key]
        return out

    def _check_placed(
        self, alloc: Allocator, out: Reconciliation, task_id: str, index: int, key: str, now: float
    ) -> None:
        rep = alloc.state.tasks[task_id].replicas[index]
        report = alloc.reports.get(rep.assignment.agent_id)
        status = None
        if report is not None:
            status = next((s for s in report.tasks if s.key == key), None)
        task = alloc.state.tasks[task_id]
        if status is not None and status.state == "failed" and task.r > 1 and \
                rep.assignment.incarnation + 1 < MAX_INCARNATIONS:
            self._replace(alloc, out, task_id, index, now,
                          f"failed on agent {rep.assignment.agent_id}: {status.message[:200]}")
        elif status is not None and status.state in ENDED_STATES:
            if self.once(f"end:{key}", now):
                out.entries.append(
                    EndReplica(
                        task_id, index, rep.assignment.incarnation, status.state, status.exit_code
                    )
                )
        elif status is not None:
            self.expected_since.pop(key, None)
        else:
            since = self.expected_since.setdefault(key, now)
            if now - since > self.launch_timeout:
                reason = f"not launched on agent {rep.assignment.agent_id} within {self.launch_timeout:g} s"
                self._replace(alloc, out, task_id, index, now, reason)

    def _replace(
        self,
        alloc: Allocator,
        out: Reconciliation,
        task_id: str,
        index: int,
        now: float,
        reason: str,
    ) -> None:
        incarnation = alloc.state.tasks[task_id].replicas[index].assignment.incarnation
        tag = f"replace:{task_id}/{index}/{incarnation}"
        if now - self.proposed.get(tag, float("-inf")) < self.retry_after:
            return
        try:
            entry = alloc.replacement(task_id, index, now, reason)
        except PlacementError as exc:
            out.waiting.append(f"{task_id}/{index}: {exc.problem}")
            return
        self.proposed[tag] = now
        out.entries.append(entry)


def parse_key(key: str) -> tuple[str, int, int]:
    task_id, index, incarnation = key.rsplit("/", 2)
    return task_id, int(index), int(incarnation)
