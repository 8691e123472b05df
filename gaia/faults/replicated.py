"""`--infra apus`: an unmodified server replicated by APUS (gaia.replicate) under faults.

A replica is three processes (APUS replica, agent, server under the shim); to the
nemesis it is one `Node` whose process is all three: kill -9 kills them together (the
host died), pause SIGSTOPs all three (the host froze), relaunch starts a fresh replica
that rejoins and replays the committed log (`ReplicatedGroup.restart_replica`). On tcp
every replica is a network namespace, so partitions and loss act on APUS's traffic and
on the clients' traffic to that replica.

A leader that was paused and resumes finds itself deposed; its agent stops its server
(it must not serve unreplicated) and the replica stays down until restarted. `supervise`
does that restart, as a process supervisor would, after each fault is healed.
"""

from __future__ import annotations

import os
import shutil
import signal
import time
from contextlib import AbstractContextManager
from pathlib import Path

from gaia.apus import logstore
from gaia.apus.reader import CommittedLogReader
from gaia.apus.runtime.status import pid_alive
from gaia.cluster.host import Host, LocalHost
from gaia.cluster.nemesis import Node
from gaia.errors import GaiaError
from gaia.faults.clients import connector
from gaia.faults.options import CampaignOptions
from gaia.faults.systems import System
from gaia.replicate.group import ReplicatedGroup
from gaia.replicate.status import BACKUP, DOWN_STATES, SERVING

PARTS = ("node", "agent", "server")
# Share of the APUS log (entries or arena bytes) a deployment may fill before the campaign
# replaces it: a restarted replica's agent replays the committed log from entry 1, and
# APUS compacts the log at about half its capacity (then a restart cannot replay).
LOG_HEADROOM = 0.15
# A frozen host stops everything at once; signals go one by one, so the agent (which
# judges the others' liveness) stops first and resumes last: it never sees a stopped
# server or replica it could declare dead.
STOP_ORDER = ("agent", "node", "server")
CONT_ORDER = ("server", "node", "agent")


def log_fill(group: ReplicatedGroup) -> float:
    """How full the leader's APUS log is (entries or bytes, whichever is nearer its cap);
    1.0 once anything was compacted (a restart could no longer replay from entry 1)."""
    leader = group.wait_leader(30).leader
    assert leader is not None
    with CommittedLogReader(group.spec.group_id, leader, register=False) as reader:
        log = reader.log
        if log.first > 1:
            return 1.0
        w64 = log.w64
        entries = (log.last - log.first + 1) / int(w64[logstore.G_INDEX_CAP])
        words = logstore.log_used_words(w64) / int(w64[logstore.G_ARENA_WORDS])
        return max(entries, words)


def replica_name(replica: int) -> str:
    return f"r{replica}"


class ReplicaProcess:
    """The nemesis's handle on one replica's three processes (HostProcess protocol)."""

    def __init__(self, group: ReplicatedGroup, replica: int) -> None:
        self.group = group
        self.replica = replica
        self.name = replica_name(replica)
        self._stopped: set[int] = set()  # pids SIGSTOPped, to be SIGCONTinued

    def _pids(self, order: tuple[str, ...] = PARTS) -> list[int]:
        pids = self.group.pids(self.replica)
        return [pid for part in order if (pid := pids.get(part)) and pid_alive(pid)]

    @property
    def pid(self) -> int:
        return self.group.pids(self.replica).get("node") or 0

    def alive(self) -> bool:
        return pid_alive(self.pid)

    def signal(self, sig: int) -> None:
        pids = self._pids(CONT_ORDER if sig == signal.SIGCONT else STOP_ORDER)
        if sig == signal.SIGSTOP:
            self._stopped.update(pids)
        elif sig == signal.SIGCONT:
            pids = [p for p in self._stopped if p not in pids] + pids
            self._stopped.clear()
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        self.group.kill_replica(self.replica)
        self._stopped.clear()

    def stop(self, timeout: float = 10.0) -> int | None:
        self.kill()
        return None

    def log_tail(self, lines: int = 20) -> str:
        log = self.group.run_dir / replica_name(self.replica) / "agent.log"
        try:
            return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


class ReplicatedSystem(System):
    def __init__(self, options: CampaignOptions, run_dir: Path) -> None:
        self.options = options
        self.run_dir = run_dir
        self.transport = options.transport
        extra = {} if options.election_ms is None else {"election_ms": options.election_ms}
        self.group = ReplicatedGroup.of(options.app, options.replicas,
                                        transport=options.transport, run_dir=run_dir / "group",
                                        durability=options.durability, **extra)
        self.handles = {r: ReplicaProcess(self.group, r) for r in self.group.spec.replicas}
        self._nodes: list[Node] = []

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        self.group.start()
        hosts: list[Host] = (list(self.group.net.hosts) if self.group.net is not None
                             else [LocalHost() for _ in self.handles])
        self._nodes = [Node(replica_name(r), host, launch=lambda r=r: self._relaunch(r),
                            process=self.handles[r])
                       for r, host in zip(self.group.spec.replicas, hosts, strict=True)]
        self._setup_schema()

    def _setup_schema(self) -> None:
        where = self.leader_endpoint()
        assert where is not None
        client = connector(self.options.app, timeout=30.0)(*where)
        try:
            client.setup()
        finally:
            client.close()

    def _relaunch(self, replica: int) -> ReplicaProcess:
        self.log(f"nemesis relaunches {replica_name(replica)}")
        self._restart(replica)
        return self.handles[replica]

    def stop(self) -> None:
        self.group.stop()

    def remove(self) -> None:
        shutil.rmtree(self.run_dir, ignore_errors=True)

    @property
    def reusable(self) -> bool:  # type: ignore[override]
        """Whether restarts can still replay the whole log (see LOG_HEADROOM)."""
        try:
            return log_fill(self.group) < LOG_HEADROOM
        except GaiaError:
            return False

    # ------------------------------------------------------------------ views
    def nodes(self) -> list[Node]:
        return self._nodes

    def leader(self) -> str | None:
        current = self.group.current
        return None if current is None or current.leader is None else \
            replica_name(current.leader)

    def leader_endpoint(self) -> tuple[str, int] | None:
        return self.group.leader_address()

    def _live(self) -> list[int]:
        return self.group.live_replicas()

    def endpoints(self) -> dict[str, tuple[str, int]]:
        return {replica_name(r): self.group.endpoint(r) for r in self._live()}

    def reading(self, name: str) -> AbstractContextManager[tuple[str, int]]:
        """Backups run input only from trusted local connections (the deposed-leader
        fix): read through `ReplicatedGroup.trusted` (read-only)."""
        return self.group.trusted(int(name[1:]))

    def replica_at(self, host: str, port: int) -> str | None:
        for r in self.group.spec.replicas:
            if self.group.endpoint(r) == (host, port):
                return replica_name(r)
        return None

    def leader_changes(self) -> list[tuple[int, str | None]]:
        return [(int(c.at * 1e9), None if c.leader is None else replica_name(c.leader))
                for c in list(self.group.changes)]

    # ------------------------------------------------------------------ healing
    def _state(self, replica: int, agents: dict) -> str:
        """"up" (backup or serving), "starting" (a fresh agent not there yet) or "down"."""
        proc = self.group.procs.get((replica, "agent"))
        if proc is None or not proc.alive() or not self.handles[replica].alive():
            return "down"
        agent = agents.get(replica)
        if agent is None or agent.pid != proc.pid:
            return "starting"  # its status file is still the previous agent's
        if agent.state in DOWN_STATES:
            return "down"
        return "up" if agent.state in (BACKUP, SERVING) else "starting"

    def _states(self) -> dict[int, str]:
        agents = self.group.agents()
        return {r: self._state(r, agents) for r in self.group.spec.replicas}

    def healthy(self) -> bool:
        return (all(s == "up" for s in self._states().values())
                and self.group.refresh().leader is not None)

    def _restartable(self, states: dict[int, str]) -> list[int]:
        """Down replicas it is safe to restart now. A restart starts a fresh APUS replica
        (with memory durability its log is gone): a down replica whose APUS replica still
        runs (its agent was deposed) keeps voting with its log, so it is restarted only
        once every other replica is up, never two stateless replicas at a time."""
        found = []
        for r, state in states.items():
            others_up = all(s == "up" for o, s in states.items() if o != r)
            if state == "down" and (not self.handles[r].alive() or others_up):
                found.append(r)
        return found

    def _restart(self, replica: int, timeout: float = 240.0) -> None:
        """Restart a replica. Once APUS compacted the log a fresh replica cannot replay it
        from entry 1: then a live backup checkpoints its server and the replica starts
        from that checkpoint plus the log after it (the guard's recovery path)."""
        try:
            compacted = log_fill(self.group) >= 1.0
        except GaiaError:
            compacted = False
        leader = self.group.current.leader if self.group.current else None
        donors = [r for r in self._live() if r not in (replica, leader)]
        if compacted and donors:
            self.log(f"the log was compacted: r{donors[0]} checkpoints for r{replica}")
            self.group.checkpoint(donors[0])
            self.group.restart_replica(replica, timeout, from_checkpoint=True)
        else:
            self.group.restart_replica(replica, timeout)

    def supervise(self, busy: set[str]) -> None:
        for r in self._restartable(self._states()):
            if replica_name(r) not in busy:
                self.log(f"supervisor restarts {replica_name(r)}")
                self._restart(r)

    def recover(self, timeout: float = 240.0) -> list[str]:
        deadline = time.monotonic() + timeout
        restarted: list[str] = []
        while True:
            states = self._states()
            if all(s == "up" for s in states.values()):
                break
            if time.monotonic() > deadline:
                raise GaiaError(f"the group did not heal within {timeout:.0f} s: {states}",
                                f"see {self.group.run_dir}/r*/agent.log")
            for r in self._restartable(states):
                self.log(f"healing restarts {replica_name(r)}")
                self._restart(r, timeout)
                restarted.append(replica_name(r))
                self.group.wait_backup(r, max(1.0, deadline - time.monotonic()))
            time.sleep(0.05)
        self.group.wait_leader(max(1.0, deadline - time.monotonic()))
        self.group.wait_caught_up(max(1.0, deadline - time.monotonic()))
        return restarted

    def log(self, line: str) -> None:
        """What the harness did to the deployment (beside its replicas' logs)."""
        with open(self.group.run_dir / "harness.log", "a") as out:
            out.write(f"{time.time():.3f} {line}\n")

    def digests(self) -> dict[str, str]:
        self.group.wait_caught_up()
        return {replica_name(r): d for r, d in self.group.digests().items()}

    def describe(self) -> str:
        return self.group.describe()
