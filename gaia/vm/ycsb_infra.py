"""`invoke ycsb --infra vm`: the YCSB run drives a replicated guest (leader + major
backup, synced periodically), reached at one fixed address through the frame switch.

The guest address never changes on failover (the promoted backup has the same IP and
MAC and the switch forwards its frames), so the bindings use a fixed endpoint.
Options (`-p gaia.infra.<name>=<value>`): `vm_sync_interval` seconds between syncs (1.0),
`vm_mem_mib` (default: what the app's guest needs). The syncs made during the run land in Target.details.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from gaia.paths import new_run_dir
from gaia.vm.group import VmGroup
from gaia.vm.guest import binding_props
from workloads.bindings.endpoint import Endpoint
from workloads.infra import InfraOptions, Target


class PeriodicSync:
    """Syncs the group every `interval` seconds on a background thread."""

    def __init__(self, group: VmGroup, interval: float) -> None:
        self.group = group
        self.interval = interval
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="gaia-vm-sync", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            if self.group.backup is None:
                continue  # after a failover, until a standby is promoted
            try:
                self.group.sync()
            except Exception as exc:  # recorded, and the run goes on unreplicated
                self.errors.append(str(exc))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(60)


@contextmanager
def provide(app: str, options: InfraOptions) -> Iterator[Target]:
    run_dir = Path(options.run_dir) if options.run_dir else new_run_dir("vm")
    extra = options.take("vm", {"vm_sync_interval": (float, 1.0), "vm_mem_mib": (int, None)})
    interval, mem = extra["vm_sync_interval"], extra["vm_mem_mib"]
    with VmGroup(run_dir, app=app, mem_mib=mem) as group:
        group.start()
        syncer = PeriodicSync(group, interval)
        host, port = group.endpoint
        details: dict[str, Any] = {"run_dir": str(run_dir), "accel": group.spec.accel,
                                   "sync_interval_s": interval}
        try:
            props = binding_props(app, host, port)
            yield Target(Endpoint(host, port), app, "vm", props=props, details=details)
        finally:
            syncer.stop()
            details["syncs"] = [r.metrics() for r in group.records]
            details["sync_errors"] = syncer.errors
