"""Bringing a TRIPOD deployment up and down: controllers, agents on hosts, the run dir.

Hosts are network namespaces on a bridge (`gaia.cluster.netns`, the default: each agent a
host with its own address), SSH hosts from an inventory (`gaia.cluster.remote`, fabric),
or local processes (`local`: host identities are then simulated — only for machines
without namespaces). Controllers run as local processes; agents reach them through the
bridge's gateway address (namespaces) or `advertise` (SSH hosts).

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
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from gaia.cluster.host import Host, HostProcess, LocalHost
from gaia.errors import ConfigError, GaiaError
from gaia.net import free_ports
from gaia.tripod import wire
from gaia.tripod.agent import AgentConfig
from gaia.tripod.controller import ControllerConfig
from gaia.tripod.framework import LAYOUT_FILE

OPTIONS_FILE = "options.json"
PORT_BASE = 31000


@dataclass
class TripodOptions:
    agents: int = 5
    controllers: int = 3
    hosts: str = "netns"  # netns | local | path to an SSH inventory
    cpus: float | None = None  # per agent; None = what the host has
    mem_mb: int | None = None
    log: str = "file"
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


@dataclass
class TripodCluster:
    run_dir: Path
    options: TripodOptions = field(default_factory=TripodOptions)
    hosts: list[Host] = field(default_factory=list)
    controller_procs: dict[int, HostProcess] = field(default_factory=dict)
    agent_procs: dict[str, HostProcess] = field(default_factory=dict)
    agent_hosts: dict[str, Host] = field(default_factory=dict)
    controller_ports: list[int] = field(default_factory=list)
    agent_facing: str = "127.0.0.1"
    netns: Any = None

    # -- bring up ----------------------------------------------------------------------------
    def start(self, timeout: float = 60.0) -> TripodCluster:
        if self.controller_procs:
            return self  # already up
        self.options.validate()
        self.run_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._make_hosts()
            self.controller_ports = free_ports(self.options.controllers, host="0.0.0.0")
            for cid in range(self.options.controllers):
                self.start_controller(cid)
            for index, host in enumerate(self.hosts):
                self.agent_hosts[f"agent-{host.name}"] = host
                self.start_agent(f"agent-{host.name}", index)
            self.save_layout(ready=False)
            self.wait_ready(timeout)
            self.save_layout(ready=True)
        except BaseException:
            self.stop()
            raise
        return self

    def _make_hosts(self) -> None:
        kind = self.options.hosts
        if kind == "netns":
            from gaia.cluster.netns import NetnsCluster

            names = [f"h{i}" for i in range(1, self.options.agents + 1)]
            self.netns = NetnsCluster(names).create()
            self.hosts = list(self.netns.hosts)
            self.agent_facing = self.netns.gateway
        elif kind == "local":
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

    def controllers(self) -> list[tuple[int, str, int]]:
        return [(cid, self.agent_facing, port) for cid, port in enumerate(self.controller_ports)]

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
        process = LocalHost().spawn(
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
            f"{host.spec.workdir}/tripod/{agent_id}" if remote else str(self.run_dir / agent_id)  # type: ignore[attr-defined]
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
                    "client_address": "127.0.0.1",
                    "address": self.agent_facing,
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
    def query(self, timeout: float = 5.0) -> dict[str, Any]:
        return query_leader([("127.0.0.1", p) for p in self.controller_ports], timeout)

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
        """Agents first (they stop their replicas), then controllers, then the hosts."""
        for process in self.agent_procs.values():
            process.stop(10.0)
        for process in self.controller_procs.values():
            process.stop(5.0)
        if self.netns is not None:
            self.netns.destroy()
            self.netns = None
        for host in self.hosts:
            close = getattr(host, "close", None)
            if close is not None:
                close()

    def __enter__(self) -> TripodCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


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
