"""`--infra vm`: the app in a replicated VM pair (gaia.vm) under leader-VM kills.

The pair is one node to the nemesis, `vm`: kill = `VmGroup.fail_leader()` (the leader
VM dies, the major backup takes over behind the same guest address); its undo and the
healing promote the standby checkpoint to a new major backup and sync it. The clients
talk to the guest address through the frame switch, so a failover is invisible to them
but for the wait. After a run the values are read on the leader, then the leader is
killed once more and the values are read again on the backup that took over: both must
hold every acknowledged write. That leaves one VM, so every run gets a fresh pair.

Only kill: a VM pair has no network of its own to partition here, and pausing the
leader VM is what every sync does already.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gaia.cluster.host import LocalHost
from gaia.cluster.nemesis import Node
from gaia.errors import GaiaError
from gaia.faults.clients import Connector
from gaia.faults.options import CampaignOptions
from gaia.faults.systems import System
from gaia.faults.workload import read_at

NODE = "vm"
SYNC_INTERVAL_S = 1.0


class LeaderVm:
    """The nemesis's handle on the pair's leader VM (HostProcess protocol)."""

    name = NODE
    pid = 0

    def __init__(self, system: VmSystem) -> None:
        self.system = system

    def alive(self) -> bool:
        return self.system.group is not None and self.system.group.leader is not None

    def signal(self, sig: int) -> None:
        raise GaiaError("a VM pair cannot be paused by the campaign",
                        "use --nemesis kill with --infra vm")

    def kill(self) -> None:
        self.system.fail_leader()

    def stop(self, timeout: float = 10.0) -> None:
        return None

    def log_tail(self, lines: int = 20) -> str:
        return ""


class VmSystem(System):
    kinds = ("kill",)
    transport = "vm"
    min_op_timeout = 10.0  # a sync holds inputs for up to ~1 s (more on a busy host)

    def __init__(self, options: CampaignOptions, run_dir: Path) -> None:
        self.options = options
        self.run_dir = run_dir
        self.ordering = str(options.extra.get("ordering", "apus"))
        self.group: Any = None
        self.syncer: Any = None
        self.changes: list[tuple[int, str | None]] = []
        self.reusable = True
        self.handle = LeaderVm(self)
        self._nodes = [Node(NODE, LocalHost(), launch=self._heal, process=self.handle)]

    def start(self) -> None:
        from gaia.vm.group import VmGroup
        from gaia.vm.ycsb_infra import PeriodicSync

        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.group = VmGroup(self.run_dir, app=self.options.app, ordering=self.ordering,
                             standby_every=2)
        self.group.start()
        self.syncer = PeriodicSync(self.group, SYNC_INTERVAL_S)
        self._setup_schema()

    def _setup_schema(self) -> None:
        from gaia.faults.clients import connector

        client = connector(self.options.app, 60.0)(*self.group.endpoint)
        try:
            client.setup()
        finally:
            client.close()

    def fail_leader(self) -> None:
        import time

        killed = time.monotonic_ns()
        took = self.group.fail_leader()
        self.changes.append((killed + int(took * 1e9), f"{NODE} (backup promoted)"))

    def _heal(self) -> LeaderVm:
        if self.group.backup is None:
            self.group.promote_standby()
            self.group.sync("heal")
        return self.handle

    # ------------------------------------------------------------------ views
    def nodes(self) -> list[Node]:
        return self._nodes

    def leader(self) -> str | None:
        return NODE

    def leader_endpoint(self) -> tuple[str, int] | None:
        return self.group.endpoint

    def endpoints(self) -> dict[str, tuple[str, int]]:
        return {NODE: self.group.endpoint}

    def leader_changes(self) -> list[tuple[int, str | None]]:
        return list(self.changes)

    def healthy(self) -> bool:
        return self.group.backup is not None and self.group.standby is not None

    def recover(self, timeout: float = 240.0) -> list[str]:
        if self.group.backup is None:
            self._heal()
            return [f"{NODE} backup"]
        return []

    def replica_reads(self, keys: list[str], connect: Connector) -> dict[str, dict[str, Any]]:
        """The leader's values, then (after killing it) the backup's."""
        finals = {"leader": self._read(keys, connect)}
        self.group.sync("check")
        self.fail_leader()
        self.reusable = False
        finals["backup"] = self._read(keys, connect)
        return finals

    def _read(self, keys: list[str], connect: Connector) -> dict[str, Any]:
        return read_at(connect, self.group.endpoint, keys)

    def digests(self) -> dict[str, str]:
        return {}  # the guests' state is compared through the values read back

    def remove(self) -> None:
        import shutil

        shutil.rmtree(self.run_dir, ignore_errors=True)

    def stop(self) -> None:
        if self.syncer is not None:
            self.syncer.stop()
            self.syncer = None
        if self.group is not None:
            self.group.close()
            self.group = None
