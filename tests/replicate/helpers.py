"""Shared steps of the replicated-deployment tests: run YCSB against a group's leader
(leader-aware, writes recorded), check that replicas agree, and read writes back."""

from __future__ import annotations

import io
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from gaia.replicate.group import ReplicatedGroup
from gaia.replicate.ycsb_infra import binding_props
from workloads.bindings import open_binding
from workloads.bindings.endpoint import Endpoint
from workloads.writelog import WriteCheck, check_writes
from workloads.ycsb import YcsbOptions, YcsbOutcome, run_ycsb


@dataclass
class YcsbRun:
    """YCSB against the group's leader on a thread (`start`, then `join`)."""

    group: ReplicatedGroup
    records: int = 300
    ops: int = 1500
    threads: int = 4
    workload: str = "a"
    phases: tuple[bool, bool] = (True, True)
    recording: Path | None = None
    outcome: YcsbOutcome | None = None
    error: BaseException | None = None
    text: io.StringIO = field(default_factory=io.StringIO)
    _thread: threading.Thread | None = None

    def options(self) -> YcsbOptions:
        return YcsbOptions(app=self.group.spec.app or "", workload=self.workload,
                           infra="none", run_dir=self.group.run_dir, records=self.records,
                           ops=self.ops, threads=self.threads, load=self.phases[0],
                           run=self.phases[1], record_writes=self.recording, save=False,
                           status=False, overrides=self._overrides())

    def _overrides(self) -> list[str]:
        host, port = self.group.current.leader_endpoint()
        props = binding_props(self.group.spec.app or "", host, port)
        return [f"{k}={v}" for k, v in props.items()] + ["gaia.failover.timeout=60",
                                                       "redis.timeout=30000"]

    def _run(self) -> None:
        try:
            self.outcome = run_ycsb(self.options(), out=self.text)
        except BaseException as exc:  # re-raised by join()
            self.error = exc

    def start(self) -> YcsbRun:
        self._thread = threading.Thread(target=self._run, name="ycsb", daemon=True)
        self._thread.start()
        return self

    def join(self, timeout: float = 300) -> YcsbOutcome:
        assert self._thread is not None
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the YCSB run did not finish"
        if self.error is not None:
            raise self.error
        assert self.outcome is not None
        return self.outcome

    def run(self) -> YcsbOutcome:
        return self.start().join()


def assert_replicas_agree(group: ReplicatedGroup, expect: int | None = None) -> dict[int, str]:
    """Every live replica executed everything committed and holds the same state."""
    group.wait_caught_up(180)
    digests = group.digests()
    if expect is not None:
        assert len(digests) == expect, f"live replicas: {sorted(digests)}"
    assert len(set(digests.values())) == 1, digests
    return digests


def writes_on(group: ReplicatedGroup, replica: int, recording: Path) -> WriteCheck:
    """The recorded writes read back from one replica's server (on a backup through a
    trusted connection: reads change nothing)."""
    app = group.spec.app or ""
    with group.trusted(replica) as (host, port):
        db = open_binding(app, Endpoint(host, port), binding_props(app, host, port))
        try:
            return check_writes(recording, db)
        finally:
            db.cleanup()


def wait_for_progress(group: ReplicatedGroup, entries: int, run: YcsbRun,
                      timeout: float = 180) -> None:
    """Until `entries` more log entries committed (the YCSB run is under way)."""
    start = group.commit_index()
    deadline = time.monotonic() + timeout
    while group.commit_index() < start + entries:
        assert run.error is None and (run._thread is None or run._thread.is_alive()), \
            "the YCSB run ended before the fault"
        assert time.monotonic() < deadline, "YCSB made no progress"
        time.sleep(0.02)
