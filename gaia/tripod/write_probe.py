"""A Redis writer that follows a TRIPOD task's serving replica and measures what a fault
costs it: the downtime (the gap in acknowledged writes around the fault) and the
acknowledged writes the task no longer holds afterwards.

Why not YCSB: the question is per key ("was this acknowledged write kept?") and the
downtime is the gap around one instant; one sequential writer answers both exactly.
The writer reads the serving replica from the task's deployment.json (the leading
controller rewrites it on failover or re-placement) and retries a failed write until it
is acknowledged, so every key is written in order and each gap is real unavailability.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from gaia.deployment import Deployment
from gaia.errors import GaiaError

RETRY_S = 0.02


@dataclass
class ProbeResult:
    acknowledged: list[tuple[str, float]] = field(default_factory=list)  # (key, ack time)
    fault_at: float | None = None
    missing: list[str] = field(default_factory=list)
    failed_attempts: int = 0

    @property
    def downtime_s(self) -> float | None:
        """The longest gap between consecutive acknowledged writes from the fault on
        (the writer keeps writing while the fault is injected)."""
        if self.fault_at is None:
            return None
        times = [t for _, t in self.acknowledged]
        gaps = [b - a for a, b in pairwise(times) if b >= self.fault_at]
        return max(gaps, default=None)

    @property
    def lost(self) -> int:
        return len(self.missing)


class TaskWriter:
    """SET k<i> v<i> against the task's serving replica, in order, until acknowledged."""

    def __init__(self, task_dir: Path, prefix: str = "probe") -> None:
        self.task_dir = Path(task_dir)
        self.prefix = prefix
        self._where: tuple[str, int] | None = None
        self._conn: redis.Redis | None = None

    def _client(self) -> redis.Redis:
        where = Deployment.load(self.task_dir).leader_endpoint()
        if where != self._where or self._conn is None:
            self._where = where
            # no retries inside redis-py (it would retry the dead replica ~3 s with
            # backoff): this writer retries itself, re-reading where to go
            self._conn = redis.Redis(*where, socket_timeout=1, socket_connect_timeout=0.5,
                                     retry=Retry(NoBackoff(), 0))
        return self._conn

    def _drop(self) -> None:
        if self._conn is not None:
            self._conn.close()
        self._conn = None

    def write(self, i: int, result: ProbeResult, timeout: float) -> None:
        key = f"{self.prefix}:{i}"
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._client().set(key, f"v{i}")
                result.acknowledged.append((key, time.monotonic()))
                return
            except (redis.RedisError, OSError, GaiaError):
                result.failed_attempts += 1
                self._drop()
                if time.monotonic() > deadline:
                    raise GaiaError(f"write {key} not acknowledged within {timeout:g} s",
                                    f"see {self.task_dir}/deployment.json and the agents' logs"
                                    ) from None
                time.sleep(RETRY_S)

    def missing(self, keys: list[str], timeout: float) -> list[str]:
        """The acknowledged keys the serving replica does not hold (or holds wrongly)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                conn = self._client()
                values = conn.mget(keys) if keys else []
                return [k for k, v in zip(keys, values, strict=True)
                        if v != f"v{k.rsplit(':', 1)[1]}".encode()]
            except (redis.RedisError, OSError, GaiaError):
                self._drop()
                if time.monotonic() > deadline:
                    raise
                time.sleep(RETRY_S)

    def close(self) -> None:
        self._drop()


def probe_fault(task_dir: Path, fault: Callable[[], None], before: int = 200,
                after: int = 200, timeout: float = 120.0, prefix: str = "probe"
                ) -> ProbeResult:
    """`before` acknowledged writes; then the fault (in a thread) while the writer goes
    on, and `after` more once the fault is done (each retried until it lands); then
    which acknowledged writes the task lost."""
    writer = TaskWriter(task_dir, prefix)
    result = ProbeResult()
    failures: list[BaseException] = []

    def inject() -> None:
        try:
            fault()
        except BaseException as exc:  # re-raised in the caller's thread
            failures.append(exc)

    injector = threading.Thread(target=inject, name="probe-fault", daemon=True)
    try:
        for i in range(before):
            writer.write(i, result, timeout)
        result.fault_at = time.monotonic()
        injector.start()  # killing a host takes a while: the writer goes on meanwhile
        n = before
        while injector.is_alive():
            writer.write(n, result, timeout)
            n += 1
        for i in range(n, n + after):
            writer.write(i, result, timeout)
        if failures:
            raise failures[0]
        result.missing = writer.missing([k for k, _ in result.acknowledged], timeout)
    finally:
        writer.close()
    return result
