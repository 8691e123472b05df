"""Start a baseline protocol's replica processes, drive runs, check agreement, clean up.

Replica 0 is the leader. Each replica is a `python -m gaia.baselines.<protocol>.node`
process started with gaia.proc (own log file under the run directory) and a control
block (control.py). A run is one closed loop of proposals issued inside the leader
process, so latency is measured propose->commit at the leader — like APUS's.
"""

from __future__ import annotations

import json
import signal
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gaia import proc
from gaia.apus.transport import unlink_group
from gaia.baselines import control as ctl
from gaia.baselines import node as common
from gaia.errors import ConfigError, GaiaError
from gaia.net import free_ports


@dataclass(frozen=True)
class NodeSpec:
    """How a protocol's replica processes are started and who drives runs."""

    module: str
    addresses: bool  # replicas need each other's host:port (--addresses)
    stable_leader: bool  # replica 0 leads and tells the others to stop; else elected


PROTOCOLS = {
    "multipaxos": NodeSpec("gaia.baselines.multipaxos.node", True, True),
    "dare": NodeSpec("gaia.baselines.dare.node", False, True),
    "pysyncobj": NodeSpec("gaia.peers.pysyncobj_node", True, False),
}


@dataclass
class RunResult:
    """One closed-loop run at the leader."""

    samples_ns: np.ndarray  # propose->commit per entry, in commit order
    elapsed_ns: int
    committed: int  # negative: the run stopped when a majority was lost

    @property
    def throughput(self) -> float:
        return abs(self.committed) / (self.elapsed_ns / 1e9) if self.elapsed_ns else 0.0


class BaselineCluster:
    """N replicas of one baseline protocol on this host."""

    def __init__(self, protocol: str, replicas: int, run_dir: Path, *,
                 durability: str = "memory", data_dir: Path | None = None,
                 max_payload: int = common.DEFAULT_MAX_PAYLOAD,
                 slots: int = common.DEFAULT_SLOTS) -> None:
        if protocol not in PROTOCOLS:
            raise ConfigError(f"unknown baseline {protocol!r}",
                              f"choose one of {', '.join(PROTOCOLS)}")
        if replicas < 1:
            raise ConfigError(f"{replicas} replicas cannot form a group", "use 1 or more")
        if durability == "fsync" and data_dir is None:
            data_dir = Path(run_dir) / "data"
        self.protocol = protocol
        self.spec = PROTOCOLS[protocol]
        self.replicas = replicas
        self.run_dir = Path(run_dir)
        self.durability = durability
        self.data_dir = data_dir
        self.max_payload = max_payload
        self.slots = slots
        self.group = f"{protocol}-{uuid.uuid4().hex[:10]}"
        self.processes: dict[int, proc.Process] = {}
        self.controls: dict[int, ctl.Control] = {}

    def _argv(self, replica: int, addresses: str) -> list[str]:
        argv = [sys.executable, "-m", self.spec.module, "--id", str(replica),
                "--replicas", str(self.replicas), "--group", self.group,
                "--run-dir", str(self.run_dir), "--durability", self.durability,
                "--max-payload", str(self.max_payload), "--slots", str(self.slots)]
        if self.data_dir is not None:
            argv += ["--data-dir", str(self.data_dir)]
        if addresses:
            argv += ["--addresses", addresses]
        return argv

    def start(self, timeout: float = 300.0) -> BaselineCluster:
        """Start backups first, then the leader; return when every replica is ready."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        addresses = ""
        if self.spec.addresses:
            addresses = ",".join(f"127.0.0.1:{p}" for p in free_ports(self.replicas))
        for replica in [*range(1, self.replicas), 0]:  # a stable leader dials the others
            self.controls[replica] = ctl.Control(ctl.control_path(self.run_dir, replica),
                                                 create=True)
            self.processes[replica] = proc.spawn(
                f"{self.protocol}-r{replica}", self._argv(replica, addresses),
                self.run_dir / f"{self.protocol}-r{replica}.log")
        try:
            for replica in self.processes:
                self._wait(replica, lambda w: w[ctl.STATE] in (ctl.READY, ctl.RUNNING),
                           "starting", timeout)
            self.wait_leader(timeout)
        except GaiaError:
            self.close()
            raise
        return self

    def _wait(self, replica: int, predicate, what: str, timeout: float) -> None:
        process = self.processes[replica]
        self.controls[replica].wait(
            predicate, f"{what} ({self.protocol} replica {replica})", timeout,
            alive=process.alive, log_tail=lambda: process.log_tail(8))

    def leader(self) -> int | None:
        """The replica that leads now (the stable leader, or the elected one)."""
        for replica, control in self.controls.items():
            if self.processes[replica].alive() and control.words[ctl.LEADER] == 1:
                return replica
        return None

    def wait_leader(self, timeout: float = 120.0) -> int:
        deadline = time.monotonic() + timeout
        while (leader := self.leader()) is None:
            if time.monotonic() > deadline:
                raise GaiaError(f"{self.protocol}: no leader after {timeout:.0f} s",
                                "the machine may be overloaded; retry with fewer replicas")
            time.sleep(0.01)
        return leader

    def run(self, rounds: int, window: int = 1, payload: int = 64,
            timeout: float = 600.0) -> RunResult:
        """One closed loop of `rounds` proposals with `window` outstanding, issued inside
        the leader's process."""
        if not 8 <= payload <= self.max_payload:
            raise ConfigError(f"payload {payload} B is outside 8..{self.max_payload}",
                              "choose a payload size in that range")
        leader = self.wait_leader(timeout)
        seq = self.controls[leader].command(ctl.RUN, rounds, window, payload)
        self._wait(leader, lambda w: w[ctl.DONE_SEQ] >= seq, f"running {rounds} proposals",
                   timeout)
        with np.load(common.result_path(self.run_dir, leader, seq)) as data:
            return RunResult(data["samples"].copy(), int(data["elapsed_ns"]),
                             int(data["committed"]))

    def progress(self) -> int:
        """Entries committed so far in the current run (read live from the leader)."""
        leader = self.leader()
        return 0 if leader is None else int(self.controls[leader].words[ctl.COMMITTED])

    def pids(self) -> dict[int, int]:
        return {r: p.pid for r, p in self.processes.items() if p.alive()}

    def kill(self, replica: int) -> None:
        """Crash a replica (SIGKILL): no goodbye, no state file."""
        self.processes[replica].signal(signal.SIGKILL)
        self.processes[replica].kill()

    def stop(self, timeout: float = 60.0) -> dict[int, dict]:
        """Stop the leader (it tells the backups); returns each replica's final log state
        {last, digest} — only replicas that were alive to the end report one."""
        if not self.spec.stable_leader:
            self._settle()
        for replica, process in self.processes.items():
            if process.alive() and (replica == 0 or not self.spec.stable_leader):
                self.controls[replica].command(ctl.STOP)
        for process in self.processes.values():
            try:
                process.popen.wait(timeout)
            except Exception:
                process.kill()
        states = {}
        for replica in self.processes:
            path = common.state_path(self.run_dir, replica)
            if path.exists():
                states[replica] = json.loads(path.read_text())
        self.close()
        return states

    def _settle(self, timeout: float = 15.0) -> None:
        """Elected protocols: let followers apply what the leader committed before all
        replicas stop at once (they learn commits one heartbeat later)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            applied = {int(self.controls[r].words[ctl.APPLIED])
                       for r, p in self.processes.items() if p.alive()}
            if len(applied) <= 1:
                return
            time.sleep(0.02)

    def close(self) -> None:
        for process in self.processes.values():
            process.stop(timeout=5)
        if self.protocol == "dare":
            unlink_group(self.group)

    def __enter__(self) -> BaselineCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
