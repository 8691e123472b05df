"""Bringing a TRIPOD deployment up and down: controllers, agents on hosts, the run dir.

Hosts are network namespaces on a bridge (`gaia.cluster.netns`, the default: each agent a
host with its own address), SSH hosts from an inventory (`gaia.cluster.remote`, fabric),
or local processes (`local`: host identities are then simulated — only for machines
without namespaces). With namespaces every controller is a host of its own too (`c0`,
`c1`, ...), so the controllers' APUS group talks over tcp through the bridge and network
faults (partitions) act on it; every namespace host also gets a private /dev/shm (as a
separate machine has), so a host's shared-memory segments die with it. With SSH hosts
the controllers run on this machine (APUS over loopback) and agents reach them at
`advertise`.

The run dir holds `tripod.json` (controllers, agents, pids: how the CLI and frameworks
find the deployment), the DecisionLog (`log/`), each process's config and log, and the
`deployment.json` files the leader writes. `gaia tripod up` runs `TripodCluster` inside a
background supervisor (`python -m gaia.tripod.deploy RUN_DIR`) that owns the namespaces
and removes everything on SIGTERM (`gaia tripod down`).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gaia.cluster.host import Host, HostProcess, LocalHost
from gaia.cluster.netns import NetnsHost
from gaia.errors import ConfigError, GaiaError
from gaia.net import free_ports
from gaia.tripod import wire
from gaia.tripod.agent import AgentConfig
from gaia.tripod.controller import ControllerConfig
from gaia.tripod.framework import LAYOUT_FILE

OPTIONS_FILE = "options.json"
PORT_BASE = 31000
CONTROLLER_PORT = 5050  # namespace hosts: every controller on its own address
APUS_LOG_PORT = 5051
# A namespace host's own /dev/shm: shared-memory segments (APUS regions, logs, rings)
# belong to the host and vanish with its last process, as on a separate machine.
PRIVATE_SHM = 'mount -t tmpfs -o mode=1777 gaia-host-shm /dev/shm && exec "$@"'


class PrivateShmHost(NetnsHost):
    """A namespace host whose long-lived processes see a /dev/shm of their own."""

    @classmethod
    def of(cls, host: NetnsHost) -> PrivateShmHost:
        return cls(host.name, host.namespace, host.address)

    def spawn(
        self, name: str, argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None
    ) -> HostProcess:
        return super().spawn(name, ["sh", "-c", PRIVATE_SHM, "gaia-host", *argv], log_path, env)


@dataclass
class TripodOptions:
    agents: int = 5
    controllers: int = 3
    hosts: str = "netns"  # netns | local | path to an SSH inventory
    cpus: float | None = None  # per agent; None = what the host has
    mem_mb: int | None = None
    log: str = "apus"  # the controllers' DecisionLog: apus (default) or file
    log_durability: str = "fsync"  # apus: fsync (a restarted controller keeps its log) or memory
    report_interval: float = 0.5
    agent_timeout: float = 3.0
    launch_timeout: float = 10.0
    offer_interval: float = 0.2
    advertise: str | None = None  # controllers' address as SSH hosts see it

    def validate(self) -> None:
        if not 1 <= self.controllers <= 9:
            raise ConfigError(
                f"{self.controllers} controllers", "use 1 to 9 controllers (3 is usual)"
            )
        if not 1 <= self.agents <= 64:
            raise ConfigError(f"{self.agents} agents", "use 1 to 64 agents")
        if self.log not in ("apus", "file"):
            raise ConfigError(f"unknown decision log {self.log!r}", "use --log apus or file")


@dataclass
class TripodCluster:
    run_dir: Path
    options: TripodOptions = field(default_factory=TripodOptions)
    hosts: list[Host] = field(default_factory=list)
    controller_procs: dict[int, HostProcess] = field(default_factory=dict)
    agent_procs: dict[str, HostProcess] = field(default_factory=dict)
    agent_hosts: dict[str, Host] = field(default_factory=dict)
    controller_ports: list[int] = field(default_factory=list)
    controller_hosts: dict[int, Host] = field(default_factory=dict)
    agent_facing: str = "127.0.0.1"
    netns: Any = None
    log_group: Any = None  # the controllers' APUS GroupSpec (log "apus")

    # -- bring up ----------------------------------------------------------------------------
    def start(self, timeout: float = 180.0) -> TripodCluster:
        if self.controller_procs:
            return self  # already up
        self.options.validate()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            deadline = time.monotonic() + timeout
            self._make_hosts()
            self._controller_log()
            self.start_controller(0)
            self._wait_compiled(0, deadline)
            for cid in range(1, self.options.controllers):
                self.start_controller(cid)
            for index, host in enumerate(self.hosts):
                self.agent_hosts[f"agent-{host.name}"] = host
                self.start_agent(f"agent-{host.name}", index)
            self.save_layout(ready=False)
            self.wait_ready(max(1.0, deadline - time.monotonic()))
            self.save_layout(ready=True)
        except BaseException:
            self.stop()
            raise
        return self

    def _make_hosts(self) -> None:
        kind = self.options.hosts
        n = self.options.controllers
        if kind == "netns":
            from gaia.cluster.netns import NetnsCluster

            names = [f"h{i}" for i in range(1, self.options.agents + 1)]
            self.netns = NetnsCluster(names + [f"c{c}" for c in range(n)]).create()
            self.hosts = [PrivateShmHost.of(h) for h in self.netns.hosts[: len(names)]]
            self.controller_hosts = {
                c: PrivateShmHost.of(h) for c, h in enumerate(self.netns.hosts[len(names) :])
            }
            self.controller_ports = [CONTROLLER_PORT] * n  # each host has its own ports
            return
        self.controller_hosts = {c: LocalHost(f"controller{c}") for c in range(n)}
        self.controller_ports = free_ports(n, host="0.0.0.0")
        if kind == "local":
            self.hosts = [LocalHost(f"local{i}") for i in range(1, self.options.agents + 1)]
        else:
            from gaia.cluster.remote import connect_inventory

            if not self.options.advertise:
                raise ConfigError(
                    "SSH hosts need the address at which they reach this machine's controllers",
                    "pass --advertise ADDRESS",
                )
            self.hosts = connect_inventory(Path(kind))[: self.options.agents]
            self.agent_facing = self.options.advertise

    def _controller_log(self) -> None:
        """The controllers' APUS group spec (log/group.json), before any controller runs."""
        if self.options.log != "apus":
            return
        from gaia.tripod.apus_log import controller_group_spec

        if self.netns is not None:
            addresses = {c: f"{h.address}:{APUS_LOG_PORT}" for c, h in self.controller_hosts.items()}
        else:
            ports = free_ports(self.options.controllers)
            addresses = {c: f"127.0.0.1:{p}" for c, p in enumerate(ports)}
        self.log_group = controller_group_spec(
            self.run_dir / "log", addresses, durability=self.options.log_durability
        )

    def _wait_compiled(self, cid: int, deadline: float) -> None:
        """Until controller `cid`'s APUS replica runs its (numba) loop: the first controller
        compiles alone and fills the cache the others load (three compiling at once on a
        cold cache took over 3 minutes on a busy 2-core machine). No error here: a slow
        start shows in wait_ready."""
        if self.log_group is None:
            return
        from gaia.apus.runtime.status import read_statuses

        while time.monotonic() < deadline:
            self._check_processes()
            status = read_statuses(self.run_dir / "log", self.log_group).get(cid)
            if status is not None and status.role not in ("starting", "down"):
                return
            time.sleep(0.1)

    def controller_address(self, cid: int) -> str:
        """Where agents and clients reach controller `cid`."""
        if self.netns is not None:
            return self.controller_hosts[cid].address
        return self.agent_facing

    def controllers(self) -> list[tuple[int, str, int]]:
        return [
            (cid, self.controller_address(cid), port)
            for cid, port in enumerate(self.controller_ports)
        ]

    def start_controller(self, cid: int) -> HostProcess:
        o = self.options
        config = ControllerConfig(
            controller_id=cid,
            controllers=self.controllers(),
            run_dir=str(self.run_dir),
            log_dir=str(self.run_dir / "log"),
            log_kind=o.log,
            offer_interval=o.offer_interval,
            agent_timeout=o.agent_timeout,
            launch_timeout=o.launch_timeout,
        )
        path = config.save(self.run_dir / f"controller-{cid}.json")
        process = self.controller_hosts[cid].spawn(
            f"tripod-controller-{cid}",
            [sys.executable, "-m", "gaia.tripod.controller", str(path)],
            self.run_dir / f"controller-{cid}.log",
        )
        self.controller_procs[cid] = process
        return process

    def start_agent(self, agent_id: str, index: int | None = None) -> HostProcess:
        host = self.agent_hosts[agent_id]
        if index is None:
            index = list(self.agent_hosts).index(agent_id)
        o = self.options
        local = self.options.hosts == "local"
        lo = PORT_BASE + (200 * index if local else 0)  # local agents share one port space
        remote = self.options.hosts not in ("netns", "local")
        work_dir = (
            f"{host.spec.workdir}/tripod/{agent_id}" if remote else str(self.agent_work_dir(agent_id))  # type: ignore[attr-defined]
        )
        config = AgentConfig(
            agent_id=agent_id,
            host=host.name,
            address=host.address,
            controllers=self.controllers(),
            work_dir=work_dir,
            cpus=o.cpus,
            mem_mb=o.mem_mb,
            port_range=(lo, lo + 199),
            report_interval=o.report_interval,
            cluster=str(self.run_dir),
        )
        path = config.save(self.run_dir / f"{agent_id}.json")
        python = sys.executable
        if remote:
            host.run(["mkdir", "-p", work_dir])
            host.put(path, f"{work_dir}/agent.json")
            path, python = Path(f"{work_dir}/agent.json"), host.spec.python  # type: ignore[attr-defined]
        process = host.spawn(
            f"tripod-{agent_id}",
            [python, "-m", "gaia.tripod.agent", str(path)],
            self.run_dir / f"{agent_id}.log" if not remote else Path(f"{work_dir}/agent.log"),
        )
        self.agent_procs[agent_id] = process
        return process

    def agent_work_dir(self, agent_id: str) -> Path:
        """Where a namespace or local agent keeps its replicas (this machine's disk)."""
        return self.run_dir / agent_id

    def wait_ready(self, timeout: float) -> dict[str, Any]:
        """Until a controller leads and every agent is registered and live."""
        deadline = time.monotonic() + timeout
        view: dict[str, Any] = {}
        while time.monotonic() < deadline:
            self._check_processes()
            try:
                view = self.query(timeout=2.0)
            except GaiaError:
                time.sleep(0.1)
                continue
            live = [a for a in view["agents"] if a["live"] and a["active"]]
            if view.get("leading") and len(live) >= len(self.agent_procs):
                return view
            time.sleep(0.1)
        raise GaiaError(
            f"TRIPOD did not come up within {timeout:g} s "
            f"(leader: {view.get('leader')}, live agents: {sum(a['live'] for a in view.get('agents', []))})",
            f"look at the controller and agent logs in {self.run_dir}",
        )

    def _check_processes(self) -> None:
        for name, process in [*self.controller_procs.items(), *self.agent_procs.items()]:
            if not process.alive():
                raise GaiaError(
                    f"TRIPOD process {name} exited while starting: {process.log_tail(5)}",
                    f"look at its log in {self.run_dir}",
                )

    def layout(self, ready: bool) -> dict[str, Any]:
        return {
            "run_dir": str(self.run_dir),
            "ready": ready,
            "hosts": self.options.hosts,
            "options": asdict(self.options),
            "supervisor_pid": os.getpid(),
            "netns_run": getattr(self.netns, "run", None),
            "controllers": [
                {
                    "id": cid,
                    "client_address": "127.0.0.1" if self.netns is None else self.controller_address(cid),
                    "address": self.controller_address(cid),
                    "host": self.controller_hosts[cid].name if cid in self.controller_hosts else None,
                    "namespace": getattr(self.controller_hosts.get(cid), "namespace", None),
                    "port": port,
                    "pid": self.controller_procs[cid].pid if cid in self.controller_procs else None,
                }
                for cid, port in enumerate(self.controller_ports)
            ],
            "agents": [
                {
                    "agent_id": agent_id,
                    "host": host.name,
                    "address": host.address,
                    "namespace": getattr(host, "namespace", None),
                    "pid": self.agent_procs[agent_id].pid if agent_id in self.agent_procs else None,
                }
                for agent_id, host in self.agent_hosts.items()
            ],
        }

    def save_layout(self, ready: bool) -> Path:
        path = self.run_dir / LAYOUT_FILE
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.layout(ready), indent=1))
        os.replace(tmp, path)
        return path

    # -- using it ------------------------------------------------------------------------------
    def client_addresses(self) -> list[tuple[str, int]]:
        host = "127.0.0.1" if self.netns is None else None
        return [(host or address, port) for _, address, port in self.controllers()]

    def query(self, timeout: float = 5.0) -> dict[str, Any]:
        return query_leader(self.client_addresses(), timeout)

    def kill_controller(self, cid: int) -> None:
        self.controller_procs[cid].kill()

    def kill_host(self, agent_id: str) -> None:
        """The host dies: its agent and every replica on it (SIGKILL), no goodbye."""
        self.agent_procs[agent_id].kill()
        host = self.agent_hosts[agent_id]
        for pid in host.pids() if hasattr(host, "pids") else ():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    # -- tear down -----------------------------------------------------------------------------
    def stop(self) -> None:
        """Agents first (they stop their replicas), then controllers, then the hosts;
        processes of one kind in parallel (each may take seconds to stop its replicas)."""
        _stop_all(self.agent_procs.values(), 30.0)
        if self.options.hosts in ("netns", "local"):  # an agent killed mid-stop: its replicas
            from gaia.replicate.control import SOCKET_NAME, bindable
            from gaia.tripod.agent import PIDS_FILE, cleanup_leftovers

            for agent_id in self.agent_procs:
                work_dir = self.agent_work_dir(agent_id)
                cleanup_leftovers(work_dir / PIDS_FILE)
                for member_dir in work_dir.glob("replicas/*/group/r[0-9]*"):
                    sock = bindable(member_dir / SOCKET_NAME)  # the agent's socket or the
                    if sock.parent != member_dir:  # short stand-in a killed agent left
                        sock.unlink(missing_ok=True)
        _stop_all(self.controller_procs.values(), 10.0)
        if self.netns is None:  # local mode: one shared /dev/shm (namespace hosts own theirs)
            self._unlink_local_segments()
        if self.netns is not None:
            self.netns.destroy()
            self.netns = None
        for host in self.hosts:
            close = getattr(host, "close", None)
            if close is not None:
                close()

    def _unlink_local_segments(self) -> None:
        """Shared memory of the controllers' and the tasks' APUS groups that a replica
        killed before its own cleanup left in this machine's /dev/shm."""
        from gaia.intercept.shm import shm_path
        from gaia.tripod.group_replica import apus_group_id

        groups = [apus_group_id(str(self.run_dir), task.name)
                  for task in (self.run_dir / "tasks").glob("*")]
        if self.log_group is not None:
            groups.append(self.log_group.group_id)
        shm_dir = shm_path("/gaia-x").parent
        for group_id in groups:
            for path in shm_dir.glob(f"gaia-{group_id}-*"):
                path.unlink(missing_ok=True)

    def __enter__(self) -> TripodCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _stop_all(processes: Any, timeout: float) -> None:
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(lambda p: p.stop(timeout), list(processes)))


def query_leader(addresses: list[tuple[str, int]], timeout: float = 5.0) -> dict[str, Any]:
    """The cluster view from the leading controller (else from any that answers)."""
    answer: dict[str, Any] | None = None
    problem: GaiaError | None = None
    for address in addresses:
        try:
            view = wire.request(address, {"op": "query"}, timeout)
        except GaiaError as exc:
            problem = exc
            continue
        if view.get("leading"):
            return view
        answer = answer or view
    if answer is not None:
        return answer
    assert problem is not None
    raise problem


def supervise(run_dir: Path) -> int:
    """The background owner of a deployment started by `gaia tripod up`."""
    options = TripodOptions(**json.loads((run_dir / OPTIONS_FILE).read_text()))
    stop = threading.Event()
    cluster = TripodCluster(run_dir, options)
    try:
        cluster.start()
    except GaiaError as exc:
        print(exc.one_line(), file=sys.stderr, flush=True)
        return exc.exit_code
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    print(f"TRIPOD up in {run_dir}", flush=True)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        cluster.stop()
        print("TRIPOD down", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(supervise(Path(sys.argv[1])))
