"""Where a binding connects: a fixed host:port, or the current leader of a deployment.

A fixed endpoint is what YCSB's bindings know (redis.host/redis.port, ...). A deployment
endpoint reads `deployment.json` in a run directory (gaia.deployment): it connects to the
leader's app port, and after a connection error it waits until the file names a
different leader (`wait_for_leader(..., not_leader=old)`) so the binding can reconnect and
retry the operation once. The time from the failed call to the new leader is a failover
gap; the binding reports every gap.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from gaia.deployment import Deployment, wait_for_leader


@dataclass
class Endpoint:
    """A server address; `run_dir` set means 'follow the deployment's leader'."""

    host: str = "127.0.0.1"
    port: int = 0
    run_dir: Path | None = None
    failover_timeout: float = 30.0
    leader: int | None = None

    @property
    def leader_aware(self) -> bool:
        return self.run_dir is not None

    def current(self) -> tuple[str, int]:
        """(host, port) to connect to now (reads deployment.json when leader-aware)."""
        if self.run_dir is None:
            return self.host, self.port
        dep = Deployment.load(self.run_dir)
        self.host, self.port = dep.leader_endpoint()
        self.leader = dep.leader
        return self.host, self.port

    def next_leader(self) -> tuple[str, int]:
        """Block until a leader other than the one we used is serving; its (host, port)."""
        assert self.run_dir is not None
        dep = wait_for_leader(self.run_dir, self.failover_timeout, not_leader=self.leader)
        self.host, self.port = dep.leader_endpoint()
        self.leader = dep.leader
        return self.host, self.port

    def describe(self) -> str:
        if self.run_dir is not None:
            return f"the leader of {self.run_dir} ({self.host}:{self.port})"
        return f"{self.host}:{self.port}"

    @classmethod
    def from_run_dir(cls, run_dir: str | Path, failover_timeout: float = 30.0) -> Endpoint:
        endpoint = cls(run_dir=Path(run_dir), failover_timeout=failover_timeout)
        endpoint.current()
        return endpoint
