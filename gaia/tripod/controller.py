"""A TRIPOD controller: one of (usually) three; the one leading the DecisionLog schedules.

Every controller
- applies the committed entries in order to its `ControllerStateMachine` and performs the
  actions for itself: it launches the replicas the leader assigned to it (S4);
- accepts connections from every agent, keeps their latest reports and replica statuses,
  and, when an agent (re)connects, launches the replicas of its own the agent lacks —
  so a controller that restarts and replays the log resumes its share of the work;
- answers `query` (the `gaia tripod status` view).
The leader also
- registers agents from their reports (S1), makes offers to frameworks (S2), decides
  launches: R = 1 launched at once and recorded in the log afterwards (S3), R > 1 proposed
  and launched by every controller once committed (S4);
- reconciles (lost agents, replicas to place elsewhere, exits, orphans), and
- writes `deployment.json` (controllers, leader) and one per task under `tasks/<id>/`.

Run as `python -m gaia.tripod.controller CONFIG.json`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
import time
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from gaia.deployment import Deployment, ReplicaInfo
from gaia.errors import GaiaError
from gaia.tripod import wire
from gaia.tripod.allocation import (
    Accepted,
    AgentReport,
    Allocator,
    ReplicaStatus,
    TaskRequest,
)
from gaia.tripod.config import JsonConfig
from gaia.tripod.decision_log import DecisionLog, LogTruncatedError, NotLeaderError, open_log
from gaia.tripod.entries import (
    APP_PORT,
    APUS_PORT,
    Entry,
    KillTask,
    PlaceTask,
    RegisterFramework,
    RemoveAgent,
    ReplaceReplica,
    encode,
    replica_key,
    spec_from_json,
    to_json,
)
from gaia.tripod.reconcile import Reconciler, parse_key
from gaia.tripod.resources import Resources
from gaia.tripod.state import (
    Applied,
    ControllerStateMachine,
    Kill,
    Launch,
    Reconfigure,
    TaskRecord,
)

RECENT = 4096
LOG = logging.getLogger("gaia.tripod.controller")


@dataclass
class ControllerConfig(JsonConfig):
    controller_id: int
    controllers: Sequence[tuple[int, str, int]]  # (id, address, port) of every controller
    run_dir: str
    log_dir: str
    log_kind: str = "apus"
    listen: str = "0.0.0.0"
    offer_interval: float = 0.2
    offer_timeout: float = 5.0
    agent_timeout: float = 3.0
    launch_timeout: float = 10.0
    snapshot_every: int = 1000

    @property
    def port(self) -> int:
        return next(p for cid, _, p in self.controllers if cid == self.controller_id)

    def address_of(self, controller_id: int | None) -> list[Any] | None:
        for cid, host, port in self.controllers:
            if cid == controller_id:
                return [host, port]
        return None


class Controller:
    def __init__(self, config: ControllerConfig, log: DecisionLog | None = None) -> None:
        self.config = config
        self.id = config.controller_id
        self.log = log or open_log(config.log_kind, Path(config.log_dir), self.id)
        self.machine = self._restore()
        self.agent_writers: dict[str, asyncio.StreamWriter] = {}
        self.reports: dict[str, AgentReport] = {}
        self.framework_writers: dict[str, asyncio.StreamWriter] = {}
        self.alloc: Allocator | None = None
        self.reconciler: Reconciler | None = None
        self.launched: set[str] = set()
        self.recent: OrderedDict[int, Applied] = OrderedDict()
        self.applied_cond = asyncio.Condition()
        self.kick = asyncio.Event()
        self.dirty = True
        self.stopping = asyncio.Event()
        self.background: set[asyncio.Task[Applied]] = set()
        self.deployed: dict[str, str] = {}  # task -> what its deployment.json says

    def _restore(self) -> ControllerStateMachine:
        n = len(self.config.controllers)
        snap = self.log.latest_snapshot()
        if snap is None:
            return ControllerStateMachine(self.id, n)
        return ControllerStateMachine.restore(self.id, snap[1])

    @property
    def leading(self) -> bool:
        return self.alloc is not None

    # -- running ---------------------------------------------------------------------------
    async def run(self) -> None:
        server = await asyncio.start_server(
            self._client, self.config.listen, self.config.port, limit=wire.MAX_LINE
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stopping.set)
        tasks = [asyncio.create_task(self._apply_loop()), asyncio.create_task(self._leader_loop())]
        async with server:
            await self.stopping.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self.log.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            first = await wire.receive(reader)
            if first is None:
                return
            if first.get("role") == "agent":
                await self._agent_session(reader, writer, first)
            elif first.get("role") == "framework":
                await self._framework_session(reader, writer, first)
            elif first.get("op") == "query":
                await wire.send(writer, {"op": "cluster", "req": first.get("req"), **self.view()})
        except (OSError, ValueError, asyncio.IncompleteReadError):
            pass
        except NotLeaderError:  # lost the lead mid-request: the client finds the new leader
            self.alloc = None
        finally:
            writer.close()

    # -- applying the log ------------------------------------------------------------------
    async def _apply_available(self) -> int:
        """Apply every committed entry not applied yet; returns how many."""
        try:
            entries = self.log.read_committed(self.machine.applied_index)
        except LogTruncatedError:
            self.machine = self._restore()
            return 1
        for index, raw in entries:
            self._after_apply(self.machine.apply(index, raw))
            self._maybe_snapshot()
        if entries:
            async with self.applied_cond:
                self.applied_cond.notify_all()
        return len(entries)

    async def _apply_loop(self) -> None:
        while True:
            if await self._apply_available():
                continue
            self.kick.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.kick.wait(), 0.01)

    def _after_apply(self, applied: Applied) -> None:
        self.recent[applied.index] = applied
        while len(self.recent) > RECENT:
            self.recent.popitem(last=False)
        entry = applied.entry
        task_id = getattr(entry, "task_id", None)
        if self.alloc is not None and task_id is not None:
            self.alloc.settle(task_id)
        if not applied.accepted:
            return
        self.dirty = True
        for action in applied.actions:
            if isinstance(action, Launch):
                self._send_launch(action)
            elif isinstance(action, Kill):
                a = action.replica
                self._send_kill(a.agent_id, replica_key(action.task_id, a.index, a.incarnation))
            elif isinstance(action, Reconfigure):
                self._send_group(action.task_id, action.spec, action.replica, action.group)
        if self.alloc is not None:
            self._notify_frameworks(entry)

    def _maybe_snapshot(self) -> None:
        index = self.machine.applied_index
        every = self.config.snapshot_every
        if every and index % every == 0:
            self.log.save_snapshot(index, self.machine.snapshot())
            if self.log.is_leader() and index > every:
                with contextlib.suppress(ValueError, NotLeaderError):
                    self.log.compact(index - every)

    async def propose(self, entry: Entry) -> Applied:
        """Propose, wait until committed AND applied here; the Applied says if accepted."""
        index = await asyncio.to_thread(self.log.propose, encode(entry))
        self.kick.set()
        async with self.applied_cond:
            await self.applied_cond.wait_for(lambda: self.machine.applied_index >= index)
        applied = self.recent.get(index)
        if applied is None:  # restored from a snapshot past it: it was applied
            return Applied(index, entry, True)
        return applied

    def propose_in_background(self, entry: Entry) -> None:
        task = asyncio.create_task(self.propose(entry))
        self.background.add(task)  # keep a reference until done

        def done(t: asyncio.Task[Applied]) -> None:
            self.background.discard(t)
            if not t.cancelled():
                t.exception()  # a NotLeaderError after losing leadership is expected

        task.add_done_callback(done)

    # -- agents ----------------------------------------------------------------------------
    async def _agent_session(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hello: dict[str, Any]
    ) -> None:
        report = wire.report_from_json(hello["report"])
        agent_id = report.agent_id
        self.agent_writers[agent_id] = writer
        self._on_report(report)
        self._resume_launches(report)
        try:
            while (message := await wire.receive(reader)) is not None:
                if message.get("op") == "report":
                    self._on_report(wire.report_from_json(message["report"]))
                elif message.get("op") == "status":
                    self._on_status(agent_id, ReplicaStatus(**message["status"]))
        finally:
            if self.agent_writers.get(agent_id) is writer:
                del self.agent_writers[agent_id]

    def _on_report(self, report: AgentReport) -> None:
        self.reports[report.agent_id] = report
        if self.alloc is not None:
            entry = self.alloc.report(report, time.monotonic())
            if entry is not None and not self._in_flight(f"register:{report.agent_id}"):
                self.propose_in_background(entry)

    def _in_flight(self, tag: str) -> bool:
        """Debounce proposals derived from periodic reports (one per retry period)."""
        assert self.reconciler is not None
        return not self.reconciler.once(tag, time.monotonic())

    def _on_status(self, agent_id: str, status: ReplicaStatus) -> None:
        report = self.reports.get(agent_id)
        before = self._previous_status(report, status.key)
        if report is not None:  # merge into the latest report: reconciliation sees it now
            tasks = (*(s for s in report.tasks if s.key != status.key), status)
            self.reports[agent_id] = replace(report, tasks=tasks)
            if self.alloc is not None:
                self.alloc.reports[agent_id] = self.reports[agent_id]
        if self.alloc is not None:
            self._forward_status(agent_id, status)
            if status.role and (before is None or (before.role, before.view, before.state)
                                != (status.role, status.view, status.state)):
                self._write_task_deployment(parse_key(status.key)[0])  # failover: now
        self.dirty = True

    @staticmethod
    def _previous_status(report: AgentReport | None, key: str) -> ReplicaStatus | None:
        return next((s for s in report.tasks if s.key == key), None) if report else None

    def _resume_launches(self, report: AgentReport) -> None:
        """Launch my replicas this agent does not know (after a replay or a reconnect);
        tell the ones it runs their group's current configuration (a member may have
        moved while this controller or the agent was away)."""
        known = {s.key for s in report.tasks}
        for launch in self.machine.desired_launches():
            a = launch.replica
            if a.agent_id != report.agent_id:
                continue
            key = replica_key(launch.task_id, a.index, a.incarnation)
            if key not in known:
                self.launched.discard(key)
                self._send_launch(launch)
            elif launch.group is not None:
                self._send_group(launch.task_id, launch.spec, a, launch.group)

    def _send_group(self, task_id: str, spec: Any, replica: Any, group: Any) -> None:
        writer = self.agent_writers.get(replica.agent_id)
        if writer is None:
            return
        message = {"op": "group", "task_id": task_id, "spec": to_json(spec),
                   "replica": to_json(replica), "group": to_json(group)}
        with contextlib.suppress(OSError, RuntimeError):
            writer.write(wire.dumps(message))

    def _send_launch(self, launch: Launch) -> None:
        a = launch.replica
        key = replica_key(launch.task_id, a.index, a.incarnation)
        writer = self.agent_writers.get(a.agent_id)
        if writer is None or key in self.launched:
            return
        self.launched.add(key)
        message = {
            "op": "launch",
            "task_id": launch.task_id,
            "spec": to_json(launch.spec),
            "resources": launch.resources.to_json(),
            "replica": to_json(a),
            "group": to_json(launch.group) if launch.group is not None else None,
        }
        with contextlib.suppress(OSError, RuntimeError):
            writer.write(wire.dumps(message))

    def _send_kill(self, agent_id: str, key: str) -> None:
        writer = self.agent_writers.get(agent_id)
        if writer is not None:
            with contextlib.suppress(OSError, RuntimeError):
                writer.write(wire.dumps({"op": "kill", "key": key}))

    # -- leading ---------------------------------------------------------------------------
    async def _leader_loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.offer_interval)
            if not self.log.is_leader():
                continue
            try:
                if self.alloc is None:
                    await self._take_over()
                await self._lead_once(time.monotonic())
            except NotLeaderError:
                LOG.warning("controller %d lost the leadership", self.id)
                self.alloc = None
            except Exception:  # keep scheduling; the next round starts from fresh reports
                LOG.exception("controller %d: error while leading", self.id)

    async def _take_over(self) -> None:
        """Catch up with every committed entry, then start leading with fresh soft state."""
        while await self._apply_available():
            pass
        now = time.monotonic()
        self.alloc = Allocator(
            self.machine.state,
            leader=self.id,
            now=now,
            agent_timeout=self.config.agent_timeout,
            epoch=time.time_ns() // 1_000_000,
        )
        self.reconciler = Reconciler(launch_timeout=self.config.launch_timeout)
        for report in list(self.reports.values()):
            self._on_report(report)
        self.dirty = True
        LOG.info("controller %d leads from log index %d", self.id, self.machine.applied_index)

    async def _lead_once(self, now: float) -> None:
        alloc, reconciler = self.alloc, self.reconciler
        assert alloc is not None and reconciler is not None
        for offer in alloc.expire(now, self.config.offer_timeout) + alloc.rescind_excess(now):
            self._to_framework(offer.framework_id, {"op": "rescind", "offer_id": offer.offer_id})
        for offer in alloc.make_offers(list(self.framework_writers), now):
            self._to_framework(offer.framework_id, {"op": "offer", **offer.to_json()})
        repairs = reconciler.step(alloc, now)
        for agent_id, key in repairs.kills:
            self._send_kill(agent_id, key)
        for entry in repairs.entries:
            await self.propose(entry)
        if self.dirty:
            self.dirty = False
            self.write_deployments()

    # -- frameworks ------------------------------------------------------------------------
    async def _framework_session(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, hello: dict[str, Any]
    ) -> None:
        if not self.leading:
            await wire.send(writer, self._not_leader(hello))
            return
        fid = hello.get("framework_id") or f"fw-{uuid.uuid4().hex[:8]}"
        entry = RegisterFramework(fid, str(hello.get("name", fid)), int(hello.get("max_r", 1)))
        applied = await self.propose(entry)
        if not applied.accepted:
            problem = applied.reason
            await wire.send(
                writer,
                {
                    "op": "error",
                    "req": hello.get("req"),
                    "problem": problem,
                    "fix": f"use max R between 1 and {len(self.config.controllers)}",
                },
            )
            return
        self.framework_writers[fid] = writer
        await wire.send(
            writer,
            {
                "op": "registered",
                "req": hello.get("req"),
                "framework_id": fid,
                "max_r": entry.max_r,
                "controllers": len(self.config.controllers),
            },
        )
        self._replay_statuses(fid)
        try:
            while (message := await wire.receive(reader)) is not None:
                reply = await self._framework_request(fid, message)
                if reply is not None:
                    await wire.send(writer, {"req": message.get("req"), **reply})
        except NotLeaderError:
            await wire.send(writer, self._not_leader(hello))
        finally:
            if self.framework_writers.get(fid) is writer:
                del self.framework_writers[fid]
            if self.alloc is not None:
                for offer in [o for o in self.alloc.offers.values() if o.framework_id == fid]:
                    self.alloc.decline(offer.offer_id)

    def _not_leader(self, message: dict[str, Any]) -> dict[str, Any]:
        leader = self.log.leader()
        return {
            "op": "not_leader",
            "req": message.get("req"),
            "leader": leader,
            "address": self.config.address_of(leader),
        }

    async def _framework_request(self, fid: str, message: dict[str, Any]) -> dict[str, Any] | None:
        if self.alloc is None:
            raise NotLeaderError(self.log.leader())
        op = message.get("op")
        if op == "accept":
            requests = [request_from_json(t) for t in message.get("tasks", [])]
            results = self.alloc.accept(message["offer_id"], requests, time.monotonic())
            return {"op": "accepted", "results": [await self._carry_out(r) for r in results]}
        if op == "decline":
            self.alloc.decline(message["offer_id"])
            return None
        if op == "kill":
            applied = await self.propose(KillTask(message["task_id"], f"framework {fid}"))
            return {
                "op": "killed",
                "task_id": message["task_id"],
                "accepted": applied.accepted,
                "problem": applied.reason,
            }
        return {"op": "error", "problem": f"unknown request {op!r}", "fix": "see gaia.tripod.wire"}

    async def _carry_out(self, result: Accepted | Any) -> dict[str, Any]:
        """S3: launch an R = 1 task now and record it; S4: propose, apply, launch."""
        if not isinstance(result, Accepted):
            return {
                "task_id": result.task_id,
                "accepted": False,
                "problem": result.problem,
                "fix": result.fix,
            }
        entry = result.entry
        out = {
            "task_id": entry.task_id,
            "accepted": True,
            "consensus": entry.consensus,
            "returned": result.returned.to_json(),
            "replicas": [to_json(a) for a in entry.replicas],
        }
        if not entry.consensus:
            (replica,) = entry.replicas
            self._send_launch(Launch(entry.task_id, entry.spec, entry.resources, replica, None))
            self.propose_in_background(entry)
            return out
        applied = await self.propose(entry)
        if not applied.accepted:
            return {
                "task_id": entry.task_id,
                "accepted": False,
                "problem": applied.reason,
                "fix": "retry on a new offer",
            }
        return {**out, "index": applied.index}

    def _to_framework(self, fid: str, message: dict[str, Any]) -> None:
        writer = self.framework_writers.get(fid)
        if writer is not None:
            with contextlib.suppress(OSError, RuntimeError):
                writer.write(wire.dumps(message))

    def _notify_frameworks(self, entry: Entry | None) -> None:
        """Placement changes in the log, told to the task's framework."""
        if isinstance(entry, (PlaceTask, ReplaceReplica)):
            task = self.machine.state.tasks[entry.task_id]
            changed = entry.replicas if isinstance(entry, PlaceTask) else (entry.replica,)
            for a in changed:
                self._replica_event(task, a.index, "placed")
                # an R = 1 replica may have reported before its record committed
                status = self.replica_status(task.task_id, a.index, a.incarnation, a.agent_id)
                if status is not None:
                    self._replica_event(task, a.index, status.state, status)
        elif isinstance(entry, RemoveAgent):
            for task, rep in self._replicas_in_state("lost"):
                if rep.assignment.agent_id == entry.agent_id:
                    self._replica_event(task, rep.assignment.index, "lost")

    def _replay_statuses(self, fid: str) -> None:
        """A (re)registered framework learns where each of its replicas stands (as
        Mesos's task reconciliation): nothing is lost across a leader change."""
        for task in self.machine.state.tasks.values():
            if task.framework_id != fid:
                continue
            for rep in task.replicas:
                a = rep.assignment
                status = self.replica_status(task.task_id, a.index, a.incarnation, a.agent_id)
                if rep.state == "placed" and status is not None:
                    self._replica_event(task, a.index, status.state, status)
                else:
                    self._replica_event(task, a.index, rep.state)

    def _replicas_in_state(self, state: str) -> list[tuple[TaskRecord, Any]]:
        return [
            (t, r)
            for t in self.machine.state.tasks.values()
            for r in t.replicas
            if r.state == state
        ]

    def _forward_status(self, agent_id: str, status: ReplicaStatus) -> None:
        task_id, index, incarnation = parse_key(status.key)
        task = self.machine.state.tasks.get(task_id)
        if task is None or task.replicas[index].assignment.incarnation != incarnation:
            return
        self._replica_event(task, index, status.state, status)

    def _replica_event(
        self, task: TaskRecord, index: int, state: str, status: ReplicaStatus | None = None
    ) -> None:
        a = task.replicas[index].assignment
        self._to_framework(
            task.framework_id,
            {
                "op": "status",
                "task_id": task.task_id,
                "index": index,
                "incarnation": a.incarnation,
                "state": state,
                "agent_id": a.agent_id,
                "host": a.host,
                "address": a.address,
                "ports": dict(a.ports),
                "exit_code": status.exit_code if status else None,
                "message": status.message if status else "",
            },
        )

    # -- views -----------------------------------------------------------------------------
    def replica_status(
        self, task_id: str, index: int, incarnation: int, agent_id: str
    ) -> ReplicaStatus | None:
        report = self.reports.get(agent_id)
        key = replica_key(task_id, index, incarnation)
        return next((s for s in report.tasks if s.key == key), None) if report else None

    def view(self) -> dict[str, Any]:
        state = self.machine.state
        now = time.monotonic()
        agents = []
        for agent in state.agents.values():
            agents.append(
                {
                    "agent_id": agent.agent_id,
                    "host": agent.host,
                    "address": agent.address,
                    "active": agent.active,
                    "capacity": agent.capacity.to_json(),
                    "used": state.used(agent.agent_id).to_json(),
                    "live": self.alloc.is_live(agent.agent_id, now)
                    if self.alloc
                    else agent.agent_id in self.agent_writers,
                }
            )
        return {
            "controller": self.id,
            "leader": self.log.leader(),
            "leading": self.leading,
            "applied_index": self.machine.applied_index,
            "commit_index": self.log.commit_index(),
            "digest": state.digest(),
            "controllers": [list(c) for c in self.config.controllers],
            "agents": agents,
            "frameworks": [asdict(f) for f in state.frameworks.values()],
            "tasks": [self.task_view(t) for t in state.tasks.values()],
            "offers": [o.to_json() for o in self.alloc.offers.values()] if self.alloc else [],
        }

    def task_view(self, task: TaskRecord) -> dict[str, Any]:
        replicas = []
        for rep in task.replicas:
            a = rep.assignment
            status = self.replica_status(task.task_id, a.index, a.incarnation, a.agent_id)
            replicas.append(
                {
                    "index": a.index,
                    "incarnation": a.incarnation,
                    "controller": a.controller,
                    "agent_id": a.agent_id,
                    "host": a.host,
                    "address": a.address,
                    "ports": dict(a.ports),
                    "placement": rep.state,
                    "status": status.state if status else "unknown",
                    "role": status.role if status else "",  # R > 1: its part in the group
                    "pid": status.pid if status else None,
                    "exit_code": rep.exit_code,
                }
            )
        return {
            "task_id": task.task_id,
            "framework_id": task.framework_id,
            "r": task.r,
            "what": task.spec.describe(),
            "app": task.spec.app,
            "state": task.state,
            "resources": task.resources.to_json(),
            "replicas": replicas,
        }

    def write_deployments(self) -> None:
        """deployment.json for the controllers, and one per task (its replicas' endpoints)."""
        run_dir = Path(self.config.run_dir)
        leader = self.log.leader()
        controllers = Deployment(
            kind="tripod",
            run_dir=str(run_dir),
            transport="tcp",
            leader=leader,
            view=self.machine.applied_index,
            replicas=[
                ReplicaInfo(
                    id=cid,
                    role="leader" if cid == leader else "backup",
                    host=host,
                    control_port=port,
                )
                for cid, host, port in self.config.controllers
            ],
            extra={"decision_log": self.config.log_kind, "tasks": sorted(self.machine.state.tasks)},
        )
        controllers.save()
        for task_id in self.machine.state.tasks:
            self._write_task_deployment(task_id)

    def _write_task_deployment(self, task_id: str) -> None:
        task = self.machine.state.tasks.get(task_id)
        if task is None:
            return
        task_dir = Path(self.config.run_dir) / "tasks" / task.task_id
        task_dir.mkdir(parents=True, exist_ok=True)
        dep = task_deployment(task, task_dir, self)
        key = json.dumps([asdict(r) for r in dep.replicas] + [dep.leader, dep.view, dep.extra],
                         sort_keys=True, default=str)
        if self.deployed.get(task_id) != key:  # rewritten only when something changed
            self.deployed[task_id] = key
            dep.save()


def task_deployment(task: TaskRecord, task_dir: Path, controller: Controller) -> Deployment:
    """A task as a deployment: its replicas with their app ports and who serves clients.
    R = 1: the one replica while it runs. R > 1: the replica whose agent reports it
    leading its APUS group in the highest view (its server takes clients; the others
    replay), so leader-aware clients follow failovers through this file."""
    replicas = []
    serving: dict[int, int] = {}  # replica index -> view it leads in
    for rep in task.replicas:
        a = rep.assignment
        status = controller.replica_status(task.task_id, a.index, a.incarnation, a.agent_id)
        running = rep.state == "placed" and status is not None and status.state == "running"
        role = "down"
        if running and task.r == 1:
            role = "leader"
        elif running:
            role = "backup" if status.role in ("backup", "promoting") else (status.role or "starting")
            if status.role == "leader":
                serving[a.index] = status.view
        replicas.append(
            ReplicaInfo(
                id=a.index,
                role=role,
                host=a.address,
                pid=status.pid if status else None,
                app_port=a.port(APP_PORT),
                control_port=dict(a.ports).get(APUS_PORT),
            )
        )
    leader = max(serving, key=lambda i: serving[i]) if serving else None
    if task.r == 1:
        leader = next((r.id for r in replicas if r.role == "leader"), None)
    for r in replicas:
        if r.role == "leader" and r.id != leader:
            r.role = "deposed"  # leads an older view: clients must not use it
    return Deployment(
        kind="tripod",
        run_dir=str(task_dir),
        group_id=task.task_id,
        transport="tcp",
        app=task.spec.app,
        leader=leader,
        view=serving.get(leader, 0) if leader is not None else 0,
        replicas=replicas,
        extra={
            "r": task.r,
            "state": task.state,
            "what": task.spec.describe(),
            "replicated": "apus" if task.r > 1 else False,
            "epoch": task.group().epoch,
            "controller": controller.id,
        },
    )


def request_from_json(data: dict[str, Any]) -> TaskRequest:
    return TaskRequest(
        task_id=str(data["task_id"]),
        spec=spec_from_json(data["spec"]),
        resources=Resources.from_json(data["resources"]),
        r=int(data.get("r", 1)),
        agent_id=data.get("agent_id"),
    )


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m gaia.tripod.controller CONFIG.json", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        controller = Controller(ControllerConfig.load(Path(args[0])))
    except GaiaError as exc:
        print(exc.one_line(), file=sys.stderr)
        return exc.exit_code
    asyncio.run(controller.run())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
