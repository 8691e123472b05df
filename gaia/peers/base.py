"""What every external consensus peer (etcd, ZooKeeper) offers the harness.

A `PeerCluster` starts N real members on loopback ports chosen by the harness, with data
directories under one root (tmpfs for the protocol comparison, a disk directory for the
disk variant), finds the current leader, kills and restarts members, and hands out a
key-value client. Members are processes started with gaia.proc, logs in the run dir.
"""

from __future__ import annotations

import abc
import shutil
import time
import uuid
from pathlib import Path
from typing import Protocol

from gaia import proc
from gaia.errors import ConfigError, GaiaError

TMPFS_ROOT = Path("/dev/shm")


class KVClient(Protocol):
    def put(self, key: str, value: bytes) -> None: ...
    def get(self, key: str) -> bytes | None: ...
    def close(self) -> None: ...


def data_root(storage: str, base: Path | None = None) -> Path:
    """A fresh directory for members' data: on tmpfs ("tmpfs") or under `base` ("disk")."""
    if storage == "tmpfs":
        root = TMPFS_ROOT / f"gaia-peers-{uuid.uuid4().hex[:10]}"
    elif storage == "disk":
        root = Path(base or "/var/tmp") / f"gaia-peers-{uuid.uuid4().hex[:10]}"
    else:
        raise ConfigError(f"unknown storage {storage!r}", "choose tmpfs or disk")
    root.mkdir(parents=True)
    return root


class PeerCluster(abc.ABC):
    """N members of one external consensus system on this host."""

    name: str = ""
    min_members = 1

    def __init__(self, members: int, run_dir: Path, storage: str = "tmpfs") -> None:
        if members < self.min_members:
            raise ConfigError(f"{self.name} needs at least {self.min_members} members",
                              f"ask for {self.min_members} or more")
        self.members = members
        self.run_dir = Path(run_dir)
        self.storage = storage
        self.root = data_root(storage, self.run_dir)
        self.processes: dict[int, proc.Process] = {}

    # -- lifecycle ------------------------------------------------------------------
    @abc.abstractmethod
    def argv(self, member: int) -> list[str]:
        """The command line of member `member` (its config written beforehand)."""

    @abc.abstractmethod
    def member_ready(self, member: int) -> bool:
        """True once the member serves requests as part of a quorum."""

    @abc.abstractmethod
    def leader(self) -> int | None:
        """The member that currently leads (None during an election)."""

    @abc.abstractmethod
    def client(self, member: int | None = None) -> KVClient:
        """A client connected to `member` (default: the leader, else any live member)."""

    @abc.abstractmethod
    def prepare(self) -> None:
        """Choose ports, write configuration and data directories before the first start."""

    def start(self, timeout: float = 120.0) -> PeerCluster:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.prepare()
        for member in range(self.members):
            self.start_member(member)
        try:
            self.wait_ready(timeout)
        except GaiaError:
            self.stop()
            raise
        return self

    def start_member(self, member: int) -> None:
        self.processes[member] = proc.spawn(
            f"{self.name}-m{member}", self.argv(member),
            self.run_dir / f"{self.name}-m{member}.log")

    def wait_ready(self, timeout: float, members: list[int] | None = None) -> int:
        """Wait until the given members (default: all live ones) serve and a leader
        exists; returns the leader."""
        deadline = time.monotonic() + timeout
        wanted = members if members is not None else list(self.processes)
        while True:
            for member in wanted:
                process = self.processes[member]
                if not process.alive():
                    raise GaiaError(f"{self.name} member {member} exited: "
                                    f"{process.log_tail(5)}",
                                    f"see {process.log_path}")
            if all(self.member_ready(m) for m in wanted):
                leader = self.leader()
                if leader is not None:
                    return leader
            if time.monotonic() > deadline:
                raise GaiaError(f"{self.name} ({self.members} members) did not elect a "
                                f"leader within {timeout:.0f} s",
                                "the machine may be overloaded; retry or use fewer members")
            time.sleep(0.1)

    def kill(self, member: int) -> None:
        """Crash a member (SIGKILL)."""
        self.processes[member].kill()

    def restart(self, member: int, timeout: float = 60.0) -> None:
        """Start a killed member again on its old data directory."""
        self.start_member(member)
        self.wait_ready(timeout, [member])

    def pids(self) -> dict[int, int]:
        return {m: p.pid for m, p in self.processes.items() if p.alive()}

    def stop(self) -> None:
        for process in self.processes.values():
            process.stop(timeout=10)
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> PeerCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
