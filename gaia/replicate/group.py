"""A replicated deployment of one server: start it, watch it, break it, check it, stop it.

`ReplicatedGroup` places N replicas (shm: all on this host; tcp: one network namespace
each, APUS over TCP between them), writes replicate.json and the APUS group spec, starts
every APUS replica (node.py), then every agent (agent.py, which starts the server), and
runs a monitor thread that folds the replicas' status files into deployment.json
whenever something changes, so leader-aware clients follow the leader. Tests, the YCSB
provider, the overhead experiment and the `gaia replicate` supervisor all use it.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gaia.apus.layout import LayoutConfig, new_group_id
from gaia.apus.reader import CommittedLogReader
from gaia.apus.ringio import ring_name
from gaia.apus.runtime.segments import unlink_segments
from gaia.apus.runtime.spec import GroupSpec
from gaia.apus.runtime.status import (
    STATUS_FILE,
    ReplicaStatus,
    pid_alive,
    read_status,
    read_statuses,
)
from gaia.deployment import Deployment
from gaia.errors import GaiaError
from gaia.intercept import ring_layout as RL
from gaia.intercept.checker import CheckReport, OutputChecker
from gaia.intercept.ring import Ring
from gaia.intercept.shm import shm_path
from gaia.intercept.trust import trusting
from gaia.net import free_ports
from gaia.paths import REPO, new_run_dir
from gaia.proc import Process, spawn
from gaia.replicate import control
from gaia.replicate.forwarder import Forwarder
from gaia.replicate.gate import gate_name
from gaia.replicate.spec import ReplicateSpec
from gaia.replicate.status import (
    AGENT_FILE,
    BACKUP,
    DOWN_STATES,
    SERVING,
    AgentStatus,
    compose,
    read_agent_statuses,
    same_content,
)

MONITOR_S = 0.01
LIVENESS_S = 0.25  # full refresh (dead processes) at least this often
TICK_US = 1000
# A bound, not an expectation: a cold numba cache (fresh clone) compiles the APUS replica
# first, measured at 10-40 s on a quiet 2-core machine but past 4 min at load 36.
START_TIMEOUT_S = 480.0


@dataclass
class LeaderChange:
    """The monitor saw deployment.json name a new leader (or none) at `at` (monotonic)."""

    at: float
    leader: int | None
    view: int


class ReplicatedGroup:
    def __init__(self, spec: ReplicateSpec, run_dir: Path | None = None) -> None:
        self.spec = spec
        self.run_dir = Path(run_dir) if run_dir else new_run_dir("replicate")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.procs: dict[tuple[int, str], Process] = {}  # (replica, "node"|"agent")
        self.net: Any = None  # NetnsCluster in tcp mode
        self.forwarder: Forwarder | None = None
        self.current: Deployment | None = None
        self.changes: list[LeaderChange] = []
        self._stop = threading.Event()
        self._monitor: threading.Thread | None = None
        self._lock = threading.Lock()
        self._apus_spec: GroupSpec | None = None
        self._status_paths: list[Path] = []
        self._seen: tuple[int, ...] = ()
        self._composed_at = 0.0

    # ------------------------------------------------------------------ construction
    @classmethod
    def of(cls, app: str | None = None, replicas: int = 3, command: list[str] | None = None,
           run_dir: Path | None = None, **options: Any) -> ReplicatedGroup:
        """A group of `replicas` replicas of `app` (or of a generic `command`)."""
        spec = ReplicateSpec(replicas=list(range(replicas)), app=app, command=command,
                             **options)
        return cls(spec, run_dir)

    @property
    def apus_dir(self) -> Path:
        return ReplicateSpec.apus_dir(self.run_dir)

    def _place(self) -> None:
        """Hosts, ports and (tcp) namespaces; the spec files."""
        spec = self.spec
        spec.group_id = spec.group_id or new_group_id()
        n = len(spec.replicas)
        apus = GroupSpec(replicas=spec.replicas, group_id=spec.group_id, transport=spec.transport,
                         durability=spec.durability,
                         layout=LayoutConfig(max_members=max(n + 2, 4)), tick_us=TICK_US,
                         election_ticks=max(2, spec.election_ms * 1000 // TICK_US),
                         ring_dead_ms=spec.ring_dead_ms)
        if spec.transport == "tcp":
            self._place_tcp(apus)
        else:
            spec.hosts = {r: "127.0.0.1" for r in spec.replicas}
        if not spec.app_ports:
            spec.app_ports = dict(zip(spec.replicas, free_ports(n), strict=True))
        spec.save(self.run_dir)
        self.apus_dir.mkdir(parents=True, exist_ok=True)
        apus.save(self.apus_dir)

    def _place_tcp(self, apus: GroupSpec) -> None:
        """One network namespace per replica when this process may create them (root +
        iproute2), else loopback."""
        from gaia.cluster.netns import NetnsCluster, netns_unavailable_reason

        spec = self.spec
        if netns_unavailable_reason() is None:
            self.net = NetnsCluster(len(spec.replicas)).create()
            hosts = self.net.hosts
            spec.hosts = {r: h.address for r, h in zip(spec.replicas, hosts, strict=True)}
            spec.namespaces = {r: h.namespace for r, h in zip(spec.replicas, hosts, strict=True)}
            apus.addresses = {r: f"{spec.hosts[r]}:7700" for r in spec.replicas}
            apus.namespaces = dict(spec.namespaces)
        else:
            spec.hosts = {r: "127.0.0.1" for r in spec.replicas}
            ports = free_ports(len(spec.replicas))
            apus.addresses = {r: f"127.0.0.1:{p}" for r, p in zip(spec.replicas, ports,
                                                                   strict=True)}

    # ------------------------------------------------------------------ processes
    def _argv(self, replica: int, module: str, run_dir: Path) -> list[str]:
        argv = [sys.executable, "-m", module, "--run-dir", str(run_dir), "--id", str(replica)]
        ns = self.spec.namespaces.get(replica)
        return ["ip", "netns", "exec", ns, *argv] if ns else argv

    def _spawn_node(self, replica: int) -> Process:
        log = self.apus_dir / f"r{replica}" / "replica.log"
        proc = spawn(f"apus-r{replica}", self._argv(replica, "gaia.replicate.node",
                                                    self.apus_dir), log, cwd=REPO)
        self.procs[(replica, "node")] = proc
        return proc

    def _spawn_agent(self, replica: int, recover: bool = False) -> Process:
        log = ReplicateSpec.replica_dir(self.run_dir, replica) / "agent.log"
        argv = self._argv(replica, "gaia.replicate.agent", self.run_dir)
        proc = spawn(f"agent-r{replica}", [*argv, "--recover"] if recover else argv, log,
                     cwd=REPO)
        self.procs[(replica, "agent")] = proc
        return proc

    def _node_status(self, replica: int) -> ReplicaStatus | None:
        return read_status(self.apus_dir, replica)

    def _ticking(self, replica: int, pid: int) -> bool:
        """The APUS replica process `pid` runs its loop: it published a role in its ring."""
        st = self._node_status(replica)
        if st is None or st.pid != pid or st.role == "starting":
            return False
        try:
            ring = Ring.open(ring_name(self.spec.group_id, replica))
        except GaiaError:
            return False
        try:
            return ring.state in (RL.REPLICA_BACKUP, RL.REPLICA_LEADER)
        finally:
            ring.close()

    def _start_nodes(self, replicas: list[int], timeout: float) -> None:
        """Start APUS replicas and wait until they run. The first one alone first: when
        numba's cache is cold (new code) it compiles the hot loop once for all of them,
        instead of every process compiling it at once on shared cores."""
        first, rest = replicas[:1], replicas[1:]
        for batch in (first, rest):
            for r in batch:
                self._spawn_node(r)
            self._wait_nodes(batch, timeout)

    def _wait_nodes(self, replicas: list[int], timeout: float) -> None:
        """Until each new APUS replica process runs its loop."""
        deadline = time.monotonic() + timeout
        pending = set(replicas)
        while pending:
            for r in sorted(pending):
                proc = self.procs[(r, "node")]
                if self._ticking(r, proc.pid):
                    pending.discard(r)
                elif not proc.alive():
                    raise GaiaError(f"the APUS replica r{r} exited with code "
                                    f"{proc.popen.returncode} while starting: "
                                    f"{proc.log_tail(3)}", f"see {proc.log_path}")
            if pending and time.monotonic() > deadline:
                raise GaiaError(f"APUS replicas {sorted(pending)} did not start within "
                                f"{timeout:.0f} s", f"see {self.apus_dir}/r*/replica.log")
            time.sleep(0.02)

    def start(self, timeout: float = START_TIMEOUT_S) -> ReplicatedGroup:
        """Start everything; returns once a leader serves (GaiaError naming the failing
        replica if a server will not start, at once if a process dies)."""
        if self.procs:  # a second start would lose track of the first one's processes
            raise GaiaError("this replicated group was already started",
                            "use it as it is, or stop() it and start a new ReplicatedGroup")
        try:
            self._place()
            self._apus_spec = GroupSpec.load(self.apus_dir)
            self._status_paths = [
                *(self.apus_dir / f"r{r}" / STATUS_FILE for r in self.spec.replicas),
                *(ReplicateSpec.replica_dir(self.run_dir, r) / AGENT_FILE
                  for r in self.spec.replicas)]
            self.current = compose(self.run_dir, self.spec, {}, {})
            self.current.save()
            self._start_nodes(self.spec.replicas, timeout)
            for r in self.spec.replicas:
                self._spawn_agent(r)
            self._monitor = threading.Thread(target=self._watch, name="replicate-monitor",
                                             daemon=True)
            self._monitor.start()
            if self.spec.front_port is not None:
                self.forwarder = Forwarder(self.spec.front_port, self.leader_address)
                self.spec.front_port = self.forwarder.port
                self.spec.save(self.run_dir)
            self.wait_started(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    # ------------------------------------------------------------------ watching
    def _fingerprint(self) -> tuple[int, ...]:
        """The status files' mtimes: what refresh() depends on, cheaply (processes that
        die without writing anything are noticed by the full refresh every LIVENESS_S)."""
        stamps = []
        for path in self._status_paths:
            try:
                stamps.append(path.stat().st_mtime_ns)
            except OSError:
                stamps.append(0)
        return tuple(stamps)

    def refresh(self) -> Deployment:
        """Fold the status files into deployment.json (rewritten only on change)."""
        with self._lock:
            seen = self._fingerprint()
            now = time.monotonic()
            if (seen == self._seen and self.current is not None
                    and now - self._composed_at < LIVENESS_S):
                return self.current
            self._composed_at = now
            apus = read_statuses(self.apus_dir, self._apus_spec)
            agents = read_agent_statuses(self.run_dir, self.spec)
            dep = compose(self.run_dir, self.spec, apus, agents,
                          self.forwarder.port if self.forwarder else None)
            self._seen = seen
            if not same_content(dep, self.current):
                if self.current is None or dep.leader != self.current.leader:
                    self.changes.append(LeaderChange(time.monotonic(), dep.leader, dep.view))
                dep.save()
                self.current = dep
            return self.current

    def _watch(self) -> None:
        while not self._stop.wait(MONITOR_S):
            try:
                self.refresh()
            except (OSError, GaiaError, ValueError):
                pass  # a file being replaced, a replica restarting: next round

    def agents(self) -> dict[int, AgentStatus]:
        return read_agent_statuses(self.run_dir, self.spec)

    def failures(self) -> list[str]:
        """What the agents reported as broken (servers that did not start or died)."""
        return [a.error for a in self.agents().values() if a.state in DOWN_STATES and a.error]

    def wait_started(self, timeout: float) -> Deployment:
        """Until a leader serves and every replica's server is up (or one failed: that is
        a GaiaError with the agent's own report)."""
        deadline = time.monotonic() + timeout
        while True:
            agents = self.agents()
            broken = [a.error for a in agents.values() if a.state in DOWN_STATES]
            if broken:
                problem, _, fix = broken[0].partition(" — fix: ")
                raise GaiaError(problem, fix or f"see {self.run_dir}/r*/agent.log")
            dep = self.refresh()
            states = {a.state for a in agents.values()}
            if (dep.leader is not None and len(agents) == len(self.spec.replicas)
                    and states <= {BACKUP, SERVING}):
                return dep
            self._check_processes()
            if time.monotonic() > deadline:
                raise GaiaError(f"the replicated {self.spec.name} group did not start within "
                                f"{timeout:.0f} s (agents: "
                                f"{ {r: a.state for r, a in agents.items()} })",
                                f"see {self.run_dir}/r*/agent.log and apus/r*/replica.log")
            time.sleep(0.02)

    def _check_processes(self) -> None:
        for (r, kind), proc in self.procs.items():
            if not proc.alive() and proc.popen.returncode not in (0, -9, -15, None):
                raise GaiaError(f"the {kind} process of replica r{r} exited with code "
                                f"{proc.popen.returncode}: {proc.log_tail(3)}",
                                f"see {proc.log_path}")

    def wait_leader(self, timeout: float = 60.0, not_leader: int | None = None) -> Deployment:
        """Until deployment.json names a serving leader other than `not_leader`."""
        deadline = time.monotonic() + timeout
        while True:
            dep = self.refresh()
            if dep.leader is not None and dep.leader != not_leader:
                return dep
            if time.monotonic() > deadline:
                raise GaiaError(f"no serving leader (other than {not_leader}) within "
                                f"{timeout:.0f} s; agents: {self.failures() or 'no errors'}",
                                f"see {self.run_dir}/r*/agent.log")
            time.sleep(0.01)

    @property
    def leader(self) -> int | None:
        return self.refresh().leader

    def leader_address(self) -> tuple[str, int] | None:
        dep = self.current
        if dep is None or dep.leader is None:
            return None
        return dep.leader_endpoint()

    def endpoint(self, replica: int) -> tuple[str, int]:
        return self.spec.hosts.get(replica, "127.0.0.1"), self.spec.app_ports[replica]

    @contextmanager
    def trusted(self, replica: int) -> Iterator[tuple[str, int]]:
        """Read a replica's server directly, backups included (yields its endpoint).

        A backup's shim runs input only from trusted local connections (gaia_ring.h "Who
        may give a server input"); inside this block every connection this process opens
        to the replica's port is one. For read-only checks: a write made here changes
        that replica alone."""
        ring = Ring.open(ring_name(self.spec.group_id, replica))
        try:
            with trusting(ring, self.spec.app_ports[replica]):
                yield self.endpoint(replica)
        finally:
            ring.close()

    # ------------------------------------------------------------------ faults
    def pids(self, replica: int) -> dict[str, int | None]:
        """The replica's processes now: APUS replica, agent, server."""
        st = self._node_status(replica)
        agent = self.agents().get(replica)
        return {"node": st.pid if st else None, "agent": agent.pid if agent else None,
                "server": agent.server_pid if agent else None}

    def kill_replica(self, replica: int, parts: tuple[str, ...] = ("node", "agent", "server")
                     ) -> dict[str, int | None]:
        """SIGKILL the replica's processes (all three: its host died)."""
        pids = self.pids(replica)
        for part in parts:
            pid = pids.get(part)
            if pid and pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
        for part in parts:
            proc = self.procs.get((replica, part))
            if proc is not None:
                proc.kill()
        return pids

    def restart_replica(self, replica: int, timeout: float = 240.0,
                        from_checkpoint: bool = False) -> None:
        """Start a killed replica again: a fresh APUS replica (it rejoins and the leader
        syncs its log), then its agent with a fresh server, which either replays the
        whole committed log or (from_checkpoint) goes through the guard: restores a live
        backup's newest checkpoint and replays the suffix after it."""
        self.kill_replica(replica)
        self._unlink_replica_segments(replica)
        self._spawn_node(replica)
        self._wait_nodes([replica], timeout)
        self._spawn_agent(replica, recover=from_checkpoint)

    def checkpoint(self, replica: int) -> dict[str, Any]:
        """Have a backup's guard checkpoint its server now (index, digest, size)."""
        return self._agent_call(replica, {"op": "checkpoint"}, 300)

    def wait_backup(self, replica: int, timeout: float = 240.0) -> AgentStatus:
        """Until the replica's agent replays as a backup (GaiaError if it failed)."""
        deadline = time.monotonic() + timeout
        while True:
            agent = self.agents().get(replica)
            proc = self.procs.get((replica, "agent"))
            fresh = agent is not None and proc is not None and agent.pid == proc.pid
            if fresh and agent.state in (BACKUP, SERVING):
                return agent
            if fresh and agent.state in DOWN_STATES:
                raise GaiaError(agent.error, f"see {self.run_dir}/r{replica}/agent.log")
            if time.monotonic() > deadline:
                raise GaiaError(f"replica r{replica} did not come back within {timeout:.0f} s",
                                f"see {self.run_dir}/r{replica}/agent.log")
            time.sleep(0.02)

    # ------------------------------------------------------------------ checking
    def _agent_call(self, replica: int, request: dict[str, Any], timeout: float = 120.0
                    ) -> dict[str, Any]:
        sock = ReplicateSpec.replica_dir(self.run_dir, replica) / control.SOCKET_NAME
        return control.call(sock, request, timeout)

    def live_replicas(self) -> list[int]:
        """Replicas whose agent runs a server as backup or leader."""
        return sorted(r for r, a in self.agents().items()
                      if a.state in (BACKUP, SERVING) and pid_alive(a.pid))

    def commit_index(self) -> int:
        leader = self.wait_leader(30).leader
        assert leader is not None
        with CommittedLogReader(self.spec.group_id, leader, register=False) as reader:
            return reader.commit_index()

    def wait_caught_up(self, timeout: float = 120.0) -> int:
        """Every live backup has executed everything committed so far; that index."""
        index = self.commit_index()
        for r in self.live_replicas():
            self._agent_call(r, {"op": "wait_applied", "index": index, "timeout": timeout},
                             timeout + 10)
        return index

    def digests(self) -> dict[int, str]:
        """State digest of every live replica's server (call wait_caught_up first)."""
        return {r: self._agent_call(r, {"op": "digest"})["digest"]
                for r in self.live_replicas()}

    def check_outputs(self, timeout: float = 120.0) -> CheckReport:
        """The output checker over every live replica's ring, against the leader's log,
        once every backup has executed everything committed so far."""
        self.wait_caught_up(timeout)
        leader = self.wait_leader(30).leader
        assert leader is not None
        reader = CommittedLogReader(self.spec.group_id, leader, register=False)
        rings = {r: Ring.open(ring_name(self.spec.group_id, r)) for r in self.live_replicas()}
        try:
            checker = OutputChecker(self.spec.app or "", reader)
            checker.add_rings_settled({
                f"r{r}": ring
                for r, ring in sorted(rings.items(), key=lambda kv: kv[0] != leader)})
            return checker.check()
        finally:
            for ring in rings.values():
                ring.close()
            reader.close()

    def describe(self, lines: int = 15) -> str:
        """deployment.json and the tail of every replica's agent and APUS log (for
        reports of a run that went wrong)."""
        parts = [f"deployment: {self.current}"]
        for r in self.spec.replicas:
            for log in (ReplicateSpec.replica_dir(self.run_dir, r) / "agent.log",
                        self.apus_dir / f"r{r}" / "replica.log"):
                try:
                    tail = log.read_text(errors="replace").splitlines()[-lines:]
                except OSError:
                    tail = ["(missing)"]
                parts.append(f"--- {log}\n" + "\n".join(tail))
        return "\n".join(parts)

    # ------------------------------------------------------------------ stopping
    def _unlink_replica_segments(self, replica: int) -> None:
        shm_path(gate_name(self.spec.group_id, replica)).unlink(missing_ok=True)

    def stop(self, grace: float = 20.0) -> None:
        """Stop agents (they stop their servers), then the APUS replicas; remove shared
        memory and namespaces. Idempotent."""
        self._stop.set()
        if self._monitor is not None:
            self._monitor.join(5)
        if self.forwarder is not None:
            self.forwarder.close()
        for kind in ("agent", "node"):
            procs = [p for (_, k), p in self.procs.items() if k == kind]
            for p in procs:
                p.signal(signal.SIGCONT)
                p.signal(signal.SIGTERM)
            deadline = time.monotonic() + grace
            for p in procs:
                try:
                    p.popen.wait(max(0.1, deadline - time.monotonic()))
                except Exception:
                    p.kill()
        for agent in self.agents().values():  # servers of agents that were killed
            if agent.server_pid and pid_alive(agent.server_pid):
                os.kill(agent.server_pid, signal.SIGKILL)
        if self.spec.group_id:
            unlink_segments(self.spec.group_id, sorted(set(self.spec.replicas) | set(range(8))))
            for r in self.spec.replicas:
                self._unlink_replica_segments(r)
        if self.net is not None:
            self.net.destroy()
            self.net = None
        self._mark_down()

    def _mark_down(self) -> None:
        if self.current is not None:
            self.current.leader = None
            for replica in self.current.replicas:
                replica.role = "down"
            self.current.save()

    def remove(self) -> None:
        """Delete the run dir (servers' data included)."""
        shutil.rmtree(self.run_dir, ignore_errors=True)

    def __enter__(self) -> ReplicatedGroup:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
