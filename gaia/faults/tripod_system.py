"""`--infra tripod`: the app as an R = 3 task placed by TRIPOD, under host, controller
and network faults.

TRIPOD (gaia.tripod) runs on network namespaces: one host per agent and per controller.
The campaign submits one replicated task (its replicas form an APUS group through the
replicated-server layer) and gives the nemesis every host as a node:

- `agent-h<N>`: kill = the host dies (`TripodCluster.kill_host`: agent and every replica
  on it); TRIPOD re-places the lost replica on another host; undo = the host reboots
  (its agent starts again, empty);
- `controller-<N>`: kill = the controller dies (`kill_controller`); another leads;
  undo = it restarts and replays the decision log;
- partitions and loss act on the hosts' namespaces, cutting agents, replicas and
  controllers apart (tcp everywhere).

`@leader` is the host of the task's serving replica. The workload follows the serving
replica through the task's deployment.json, as with `--infra apus`.
"""

from __future__ import annotations

import shutil
import signal
import threading
import time
from pathlib import Path
from typing import Any

from gaia.cluster.nemesis import Node
from gaia.deployment import Deployment
from gaia.errors import ConfigError, GaiaError
from gaia.faults.clients import Connector, connector
from gaia.faults.options import CampaignOptions
from gaia.faults.systems import System
from gaia.faults.workload import read_at

TASK_ID = "kv"
AGENTS = 5
R = 3
WATCH_S = 0.01


class HostHandle:
    """A TRIPOD host (agent host or controller) as the nemesis's process."""

    def __init__(self, system: TripodSystem, name: str) -> None:
        self.system, self.name = system, name

    def _process(self) -> Any:
        cluster = self.system.cluster
        if self.name.startswith("controller-"):
            return cluster.controller_procs.get(int(self.name.rsplit("-", 1)[1]))
        return cluster.agent_procs.get(self.name)

    @property
    def pid(self) -> int:
        process = self._process()
        return process.pid if process is not None else 0

    def alive(self) -> bool:
        process = self._process()
        return process is not None and process.alive()

    def signal(self, sig: int) -> None:
        if sig in (signal.SIGSTOP, signal.SIGCONT):
            raise GaiaError("TRIPOD hosts are not paused by the campaign",
                            "use kill or network faults with --infra tripod")
        process = self._process()
        if process is not None:
            process.signal(sig)

    def kill(self) -> None:
        cluster = self.system.cluster
        if self.name.startswith("controller-"):
            cluster.kill_controller(int(self.name.rsplit("-", 1)[1]))
        else:
            cluster.kill_host(self.name)

    def stop(self, timeout: float = 10.0) -> None:
        self.kill()

    def log_tail(self, lines: int = 20) -> str:
        process = self._process()
        return process.log_tail(lines) if process is not None else ""


class TripodSystem(System):
    kinds = ("kill", "restart", "partition", "one-way", "loss")
    transport = "tcp"

    @classmethod
    def refuse(cls, options: CampaignOptions) -> None:
        from gaia.cluster.netns import netns_unavailable_reason

        reason = netns_unavailable_reason()
        if reason is not None:
            raise ConfigError(f"--infra tripod runs on network namespaces: {reason}",
                              "run as root with iproute2, or use --infra apus")
        if options.transport != "tcp":
            raise ConfigError("--infra tripod places replicas on separate hosts: their "
                              "APUS groups talk over tcp", "pass --transport tcp")
        if options.replicas != R:
            raise ConfigError(f"--infra tripod runs R={R} tasks", f"pass --replicas {R}")

    def __init__(self, options: CampaignOptions, run_dir: Path) -> None:
        self.options = options
        self.run_dir = run_dir
        self.cluster: Any = None
        self.framework: Any = None
        self.current: Deployment | None = None
        self.changes: list[tuple[int, str | None]] = []
        self._stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._nodes: list[Node] = []

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        from gaia.tripod.deploy import TripodCluster, TripodOptions
        from gaia.tripod.entries import TaskSpec
        from gaia.tripod.framework import Framework

        self.cluster = TripodCluster(self.run_dir, TripodOptions(agents=AGENTS)).start(180)
        self.framework = Framework.from_run_dir(self.run_dir, name="faults", max_r=R)
        self.framework.connect(60)
        self.framework.submit(TaskSpec(app=self.options.app), r=R, task_id=TASK_ID,
                              timeout=240)
        self._watcher = threading.Thread(target=self._watch, name="tripod-watch",
                                         daemon=True)
        self._watcher.start()
        self._nodes = [Node(name, host, launch=lambda n=name: self._relaunch(n),
                            process=HostHandle(self, name))
                       for name, host in self._hosts().items()]
        self._wait(lambda: self.leader_endpoint() is not None, 240, "a serving replica")
        client = connector(self.options.app, 60.0)(*self.leader_endpoint())
        try:
            client.setup()
        finally:
            client.close()

    def _hosts(self) -> dict[str, Any]:
        hosts = dict(self.cluster.agent_hosts)
        hosts.update({f"controller-{c}": h for c, h in self.cluster.controller_hosts.items()})
        return hosts

    def _relaunch(self, name: str) -> HostHandle:
        if name.startswith("controller-"):
            self.cluster.start_controller(int(name.rsplit("-", 1)[1]))
        else:
            self.cluster.start_agent(name)
        return next(n.process for n in self._nodes if n.name == name)

    def _watch(self) -> None:
        from gaia.tripod.replicas import task_dir

        path = task_dir(self.cluster, TASK_ID)
        while not self._stop.wait(WATCH_S):
            try:
                dep = Deployment.load(path)
            except (GaiaError, OSError, ValueError):
                continue
            if self.current is None or dep.leader != self.current.leader:
                self.changes.append((time.monotonic_ns(), self._host_of(dep.leader)))
            self.current = dep

    def _host_of(self, replica: int | None) -> str | None:
        if replica is None:
            return None
        from gaia.tripod.replicas import placed_replicas

        try:
            placed = placed_replicas(self.cluster, TASK_ID)
        except GaiaError:
            return f"replica-{replica}"
        # deployment.json names the replica by its index (every incarnation keeps it)
        return next((p.agent_id for p in placed if p.index == replica), f"replica-{replica}")

    def stop(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(5)
        if self.framework is not None:
            self.framework.close()
        if self.cluster is not None:
            self.cluster.stop()

    def remove(self) -> None:
        shutil.rmtree(self.run_dir, ignore_errors=True)

    # ------------------------------------------------------------------ views
    def nodes(self) -> list[Node]:
        return self._nodes

    def leader(self) -> str | None:
        dep = self.current
        return None if dep is None else self._host_of(dep.leader)

    def leader_endpoint(self) -> tuple[str, int] | None:
        dep = self.current
        if dep is None or dep.leader is None:
            return None
        return dep.leader_endpoint()

    def _running(self) -> list[Any]:
        from gaia.tripod.replicas import placed_replicas

        return [p for p in placed_replicas(self.cluster, TASK_ID)
                if p.placement == "placed" and p.status == "running"]

    def endpoints(self) -> dict[str, tuple[str, int]]:
        return {f"replica-{p.index}": (p.address, p.app_port) for p in self._running()}

    def replica_reads(self, keys: list[str], connect: Connector) -> dict[str, dict[str, Any]]:
        """The serving replica's values only. A backup's shim runs input only from
        connections trusted through its ring, and each TRIPOD host keeps its rings in a
        /dev/shm of its own (gaia.tripod.deploy.PrivateShmHost) that this process cannot
        open; the backups are judged by their digests instead, which `recover` waited to
        be equal to the leader's (equal states hold the same values)."""
        where = self.leader_endpoint()
        if where is None:
            raise GaiaError("no TRIPOD replica serves after healing",
                            f"see the agents' logs under {self.run_dir}")
        return {self.leader() or "leader": read_at(connect, where, keys)}

    def replica_at(self, host: str, port: int) -> str | None:
        found = [name for name, where in self.endpoints().items() if where == (host, port)]
        return found[0] if found else None

    def leader_changes(self) -> list[tuple[int, str | None]]:
        return list(self.changes)

    # ------------------------------------------------------------------ healing
    def _down(self) -> list[str]:
        return [n.name for n in self._nodes if not n.process.alive()]

    def healthy(self) -> bool:
        from gaia.tripod.replicas import group_agrees

        try:
            running = self._running()
            return (not self._down() and len(running) == R and group_agrees(running)
                    and self.leader_endpoint() is not None)
        except GaiaError:
            return False  # a controller in transition

    def supervise(self, busy: set[str]) -> None:
        for name in self._down():
            if name not in busy:
                self._relaunch(name)

    def recover(self, timeout: float = 240.0) -> list[str]:
        from gaia.tripod.replicas import wait_whole

        restarted = self._down()
        for name in restarted:
            self._relaunch(name)
        wait_whole(self.cluster, TASK_ID, R, timeout)
        self._wait(lambda: self.leader_endpoint() is not None, timeout, "a serving replica")
        self.digests(timeout)  # waits until every replica executed what the leader did
        return restarted

    def digests(self, timeout: float = 120.0) -> dict[str, str]:
        from gaia.tripod.replicas import caught_up_digests

        return {f"replica-{i}": d
                for i, d in caught_up_digests(self._running(), timeout).items()}

    def _wait(self, predicate: Any, timeout: float, what: str) -> None:
        from gaia.tripod.replicas import wait_until

        wait_until(predicate, timeout, what)
