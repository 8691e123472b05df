"""A TRIPOD agent: one per host. Reports the host's resources (S1), launches and kills the
replicas controllers assign to it, and reports their status and exit.

It connects to every controller (not only the leader): any controller may launch a
replica here (S4), and a controller that becomes leader already has fresh reports.
Launches are idempotent by replica key (task/index/incarnation); a kill for a key not
yet launched is remembered, so a late launch of that key is refused.

Replicas of R > 1 tasks run under the replicated-server layer (group_replica.py): the
agent reports each one's role in its APUS group as it changes (the leading controller
names the serving replica in the task's deployment.json), rewrites its group files when
a member moved (`group` message), and restarts it in place (fresh server, committed log
replayed) if it fails while its task lives.

Run as `python -m gaia.tripod.agent CONFIG.json` (what `gaia tripod up` starts in each
namespace or SSH host). On start it kills the replicas a previous run of this agent left
behind (as a Mesos agent with --recover=cleanup); on SIGTERM it stops its replicas.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from gaia.errors import GaiaError
from gaia.tripod import wire
from gaia.tripod.allocation import AgentReport, ReplicaStatus
from gaia.tripod.config import JsonConfig
from gaia.tripod.entries import replica_key, spec_from_json
from gaia.tripod.group_replica import GroupReplica, start_group_replica
from gaia.tripod.launch import (
    GROUP_START_S,
    ReplicaProcess,
    start_replica,
    update_group,
)
from gaia.tripod.resources import Resources

TERMINAL = ("finished", "failed", "killed")
KEEP_TERMINAL = 1000
PIDS_FILE = "replica-pids.json"
ROLE_POLL_S = 0.02  # how soon a new group leader is reported
GROUP_RESTARTS = 3  # in-place restarts of a failed R > 1 replica before it counts as failed


@dataclass
class AgentConfig(JsonConfig):
    agent_id: str
    host: str  # host identity: replicas of one task never share it
    address: str  # where this host's replicas are reachable
    controllers: Sequence[tuple[int, str, int]]  # (controller id, address, port)
    work_dir: str
    cpus: float | None = None  # None: this host's CPU count
    mem_mb: int | None = None  # None: this host's memory
    port_range: tuple[int, int] = (31000, 31999)
    report_interval: float = 0.5
    bind: str | None = None  # address replicas listen on (default: `address`)
    cluster: str = ""  # the deployment's identity (APUS group ids of tasks derive from it)

    def capacity(self) -> Resources:
        cpus = self.cpus if self.cpus is not None else float(os.cpu_count() or 1)
        return Resources.of(cpus, self.mem_mb if self.mem_mb is not None else host_memory_mb())


def host_memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    return 1024


@dataclass
class Agent:
    config: AgentConfig
    replicas: dict[str, ReplicaProcess | GroupReplica] = field(default_factory=dict)
    statuses: dict[str, ReplicaStatus] = field(default_factory=dict)
    writers: dict[int, asyncio.StreamWriter] = field(default_factory=dict)
    killed_early: set[str] = field(default_factory=set)
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    background: set[asyncio.Task[None]] = field(default_factory=set)
    restarts: dict[str, int] = field(default_factory=dict)
    boot: str = field(default_factory=lambda: uuid.uuid4().hex)  # this start of the agent

    @property
    def work_dir(self) -> Path:
        return Path(self.config.work_dir)

    def report(self) -> AgentReport:
        c = self.config
        return AgentReport(
            c.agent_id,
            c.host,
            c.address,
            c.capacity(),
            c.port_range,
            tuple(self.statuses.values()),
            self.boot,
        )

    # -- main loop -----------------------------------------------------------------------
    async def run(self) -> None:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        cleanup_leftovers(self.work_dir / PIDS_FILE)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(sig, self.stopping.set)
        tasks = [
            asyncio.create_task(self._controller_loop(cid, host, port))
            for cid, host, port in self.config.controllers
        ]
        tasks.append(asyncio.create_task(self._watch_exits()))
        tasks.append(asyncio.create_task(self._watch_roles()))
        await self.stopping.wait()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self.stop_all()

    async def stop_all(self) -> None:
        replicas = list(self.replicas.values())
        self.replicas.clear()
        await asyncio.gather(*(asyncio.to_thread(r.stop) for r in replicas))
        self._save_pids()

    async def _controller_loop(self, cid: int, host: str, port: int) -> None:
        backoff = 0.05
        while not self.stopping.is_set():
            try:
                reader, writer = await wire.open_connection(host, port)
            except OSError:
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 1.0)
                continue
            backoff = 0.05
            self.writers[cid] = writer
            reporter = asyncio.create_task(self._report_loop(writer))
            try:
                hello = {
                    "op": "hello",
                    "role": "agent",
                    "report": wire.report_to_json(self.report()),
                }
                await wire.send(writer, hello)
                while (message := await wire.receive(reader)) is not None:
                    self._handle(message)
            except (OSError, ValueError):
                pass
            finally:
                reporter.cancel()
                self.writers.pop(cid, None)
                writer.close()
            await asyncio.sleep(backoff)

    async def _report_loop(self, writer: asyncio.StreamWriter) -> None:
        """S1: the periodic report (identity, capacity, every replica's status)."""
        with contextlib.suppress(OSError):
            while True:
                await asyncio.sleep(self.config.report_interval)
                await wire.send(
                    writer, {"op": "report", "report": wire.report_to_json(self.report())}
                )

    def _handle(self, message: dict[str, Any]) -> None:
        op = message.get("op")
        if op == "launch":
            self._in_background(self._launch(message))
        elif op == "group":
            self._update_group(message)
        elif op == "kill":
            self._in_background(self._kill(message["key"]))

    def _in_background(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self.background.add(task)  # keep a reference until done
        task.add_done_callback(self.background.discard)

    # -- replicas --------------------------------------------------------------------------
    async def _launch(self, message: dict[str, Any]) -> None:
        replica = message["replica"]
        key = replica_key(message["task_id"], replica["index"], replica["incarnation"])
        if key in self.statuses:  # a repeated launch (replay, new leader): say where it is
            self._update_group(message)
            self._broadcast(self.statuses[key])
            return
        self._set(ReplicaStatus(key, "staging"))
        info = {
            "task_id": message["task_id"],
            "index": replica["index"],
            "incarnation": replica["incarnation"],
            "ports": dict(replica["ports"]),
            "group": message.get("group"),
        }
        try:
            started = await asyncio.to_thread(
                start_replica,
                key,
                message["task_id"],
                replica["index"],
                spec_from_json(message["spec"]),
                dict(replica["ports"]),
                self.config.address,
                self.config.bind or self.config.address,
                self.work_dir,
                info,
                cluster=self.config.cluster,
            )
        except GaiaError as exc:
            self._set(ReplicaStatus(key, "failed", message=exc.one_line()))
            return
        except Exception as exc:  # a broken app module must not take the agent down
            self._set(ReplicaStatus(key, "failed", message=f"{type(exc).__name__}: {exc}"))
            return
        self.replicas[key] = started
        self._save_pids()
        if key in self.killed_early:
            await self._kill(key)
        else:
            self._set(ReplicaStatus(key, "running", pid=started.pid))

    async def _kill(self, key: str) -> None:
        replica = self.replicas.pop(key, None)
        if replica is None:
            status = self.statuses.get(key)
            if status is None:
                self._set(ReplicaStatus(key, "killed", message="killed before launch"))
            elif status.state == "staging":
                self.killed_early.add(key)
            return
        await asyncio.to_thread(replica.stop)
        self._save_pids()
        self._set(ReplicaStatus(key, "killed", exit_code=replica.exit_code(), pid=replica.pid))

    async def _watch_exits(self) -> None:
        while True:
            await asyncio.sleep(0.1)
            for key, replica in list(self.replicas.items()):
                code = replica.exit_code()
                if code is None or self.replicas.get(key) is not replica:
                    continue
                del self.replicas[key]
                self._save_pids()
                if isinstance(replica, GroupReplica) and code != 0:
                    why = replica.failure() or f"exit code {code}"
                    if self.restarts.get(key, 0) < GROUP_RESTARTS:
                        self.restarts[key] = self.restarts.get(key, 0) + 1
                        self._in_background(self._restart_group(replica, why))
                        continue
                    tail = why
                else:
                    tail = replica.process.log_tail(3) if code else ""
                state = "finished" if code == 0 else "failed"
                self._set(ReplicaStatus(key, state, exit_code=code, pid=replica.pid, message=tail))

    async def _restart_group(self, old: GroupReplica, why: str) -> None:
        """A failed replica of a live R > 1 task starts again here: a fresh server that
        replays its group's committed log (the group kept serving meanwhile)."""
        key = old.key
        self._set(ReplicaStatus(key, "staging", pid=old.pid, message=f"restarting: {why}"))
        await asyncio.to_thread(old.stop)
        try:
            new = await asyncio.to_thread(
                start_group_replica, key, old.member, old.data_dir, GROUP_START_S
            )
        except GaiaError as exc:
            self._set(ReplicaStatus(key, "failed", message=exc.one_line()))
            return
        if key in self.killed_early or self.statuses.get(key, ReplicaStatus(key, "")).state \
                in TERMINAL:
            await asyncio.to_thread(new.stop)
            return
        self.replicas[key] = new
        self._save_pids()
        self._set(ReplicaStatus(key, "running", pid=new.pid, message=f"restarted after: {why}"))

    async def _watch_roles(self) -> None:
        """Report a group replica's role (leader/backup/...) as soon as it changes."""
        while True:
            await asyncio.sleep(ROLE_POLL_S)
            for key, replica in list(self.replicas.items()):
                if not isinstance(replica, GroupReplica):
                    continue
                role, view = replica.role()  # two small files: cheaper than a thread hop
                status = self.statuses.get(key)
                if status is not None and status.state == "running" and \
                        (status.role, status.view) != (role, view):
                    self._set(replace(status, role=role, view=view))

    def _update_group(self, message: dict[str, Any]) -> None:
        """A member of this replica's group moved: rewrite its group files."""
        group = message.get("group")
        replica = message.get("replica")
        if not group or not replica:
            return
        key = replica_key(message["task_id"], replica["index"], replica["incarnation"])
        if key not in self.replicas:
            return
        with contextlib.suppress(OSError, ValueError, KeyError):
            update_group(self.work_dir, key, group, spec_from_json(message["spec"]),
                         self.config.cluster, self.config.address)

    def _set(self, status: ReplicaStatus) -> None:
        self.statuses.pop(status.key, None)  # re-insert: newest last
        self.statuses[status.key] = status
        terminal = [k for k, s in self.statuses.items() if s.state in TERMINAL]
        for old in terminal[: max(0, len(terminal) - KEEP_TERMINAL)]:
            del self.statuses[old]
        self._broadcast(status)

    def _broadcast(self, status: ReplicaStatus) -> None:
        message = wire.dumps(
            {"op": "status", "agent_id": self.config.agent_id, "status": asdict(status)}
        )
        for writer in list(self.writers.values()):
            with contextlib.suppress(OSError, RuntimeError):
                writer.write(message)

    def _save_pids(self) -> None:
        pids = {key: [[p, process_start(p)] for p in r.pids()] for key, r in self.replicas.items()}
        tmp = self.work_dir / f"{PIDS_FILE}.tmp"
        tmp.write_text(json.dumps(pids))
        os.replace(tmp, self.work_dir / PIDS_FILE)


def process_start(pid: int) -> int | None:
    """Start time of a process (tells the process we started from a reused pid)."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def cleanup_leftovers(pids_file: Path) -> list[int]:
    """Kill the process groups of replicas an earlier run of this agent left running."""
    try:
        recorded = json.loads(pids_file.read_text())
    except (OSError, ValueError):
        return []
    killed = []
    for processes in recorded.values():
        for pid, start in processes:
            if start is not None and process_start(pid) == start:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGKILL)
                    killed.append(pid)
    pids_file.unlink(missing_ok=True)
    return killed


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m gaia.tripod.agent CONFIG.json", file=sys.stderr)
        return 2
    config = AgentConfig.load(Path(args[0]))
    asyncio.run(Agent(config).run())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
