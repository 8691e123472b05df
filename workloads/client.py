"""One YCSB client: the measured database wrapper and the closed/open-loop driver.

`MeasuredDB` is site.ycsb.DBWrapper: it times every call of the binding and records the
latency from the call's start and from its intended start (see measurements.py).

`drive` is site.ycsb.ClientThread.run: perform `opcount` operations (0: until stopped),
and with a target rate sleep until `start + opsdone * tick` after each operation, where
tick = 1 s / (target / clients). That deadline becomes the next operation's intended start
time, so when the server stalls, the operations queued behind the stall are charged the
time they waited (coordinated omission corrected). When the per-client rate is at most
1 op/ms the first operation is delayed by a random fraction of a tick, as Java does, so
clients do not fire in lockstep. Closed loop (no target): the next operation starts when
the previous one returns, and intended start = actual start.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from workloads.bindings.base import DB, Fields, Values
from workloads.core import CoreWorkload
from workloads.measurements import OK, Measurements, Status

# progress row slots (ackcounter.SharedState.progress)
P_OPS, P_LAT_SUM, P_LAT_COUNT, P_DONE = range(4)


class MeasuredDB:
    """DBWrapper: the binding's calls, each measured under its operation's name."""

    def __init__(self, db: DB, measurements: Measurements):
        self.db = db
        self.measurements = measurements
        self.intended_ns = 0  # 0: "now" (closed loop, or before the first tick)

    def intended_start_ns(self) -> int:
        return self.intended_ns or time.monotonic_ns()

    def _timed(self, op: str, call: Callable[[], object]) -> object:
        intended = self.intended_start_ns()
        start = time.monotonic_ns()
        result = call()
        end = time.monotonic_ns()
        status: Status = result[0] if isinstance(result, tuple) else result  # type: ignore[assignment]
        self.measurements.record(op, status, intended, start, end)
        return result

    def read(self, table: str, key: str, fields: Fields) -> tuple[Status, Values]:
        return self._timed("READ", lambda: self.db.read(table, key, fields))  # type: ignore[return-value]

    def scan(
        self, table: str, startkey: str, count: int, fields: Fields
    ) -> tuple[Status, list[Values]]:
        return self._timed("SCAN", lambda: self.db.scan(table, startkey, count, fields))  # type: ignore[return-value]

    def update(self, table: str, key: str, values: Values) -> Status:
        return self._timed("UPDATE", lambda: self.db.update(table, key, values))  # type: ignore[return-value]

    def insert(self, table: str, key: str, values: Values) -> Status:
        return self._timed("INSERT", lambda: self.db.insert(table, key, values))  # type: ignore[return-value]

    def delete(self, table: str, key: str) -> Status:
        return self._timed("DELETE", lambda: self.db.delete(table, key))  # type: ignore[return-value]

    def cleanup(self) -> None:
        """Measured as CLEANUP (latency only, no status count), as DBWrapper.cleanup."""
        start = time.monotonic_ns()
        self.db.cleanup()
        end = time.monotonic_ns()
        self.measurements.record("CLEANUP", OK, start, start, end, count_status=False)


@dataclass
class ClientPlan:
    """What one client does: its share of the operations and of the target rate."""

    client_id: int
    opcount: int
    target_per_ms: float  # <= 0: closed loop
    load: bool
    deadline: float = 0.0  # time.monotonic() after which to stop (maxexecutiontime); 0: none
    spin_sleep: bool = False


def split_operations(total: int, clients: int) -> list[int]:
    """Client.initDb: total/clients each, the remainder to the first clients."""
    return [total // clients + (1 if i < total % clients else 0) for i in range(clients)]


def _sleep_until(deadline_ns: int, spin: bool) -> None:
    while True:
        left = deadline_ns - time.monotonic_ns()
        if left <= 0:
            return
        if not spin:
            time.sleep(left / 1e9)


def drive(
    plan: ClientPlan,
    workload: CoreWorkload,
    db: MeasuredDB,
    progress: np.ndarray,
    stop: Callable[[], bool],
) -> int:
    """ClientThread.run; returns the number of operations done."""
    tick_ns = int(1_000_000 / plan.target_per_ms) if plan.target_per_ms > 0 else 0
    if 0 < plan.target_per_ms <= 1.0:
        _sleep_until(time.monotonic_ns() + random.randrange(max(1, tick_ns)), plan.spin_sleep)
    row = progress[plan.client_id]
    step = workload.do_insert if plan.load else workload.do_transaction
    start_ns = time.monotonic_ns()
    done = 0
    while (plan.opcount == 0 or done < plan.opcount) and not stop():
        if plan.deadline and time.monotonic() >= plan.deadline:
            break
        began = time.monotonic_ns()
        if not step(db):
            break
        row[P_LAT_SUM] += time.monotonic_ns() - began
        row[P_LAT_COUNT] += 1
        done += 1
        row[P_OPS] = done
        if tick_ns:
            deadline = start_ns + done * tick_ns
            _sleep_until(deadline, plan.spin_sleep)
            db.intended_ns = deadline
    db.intended_ns = 0
    row[P_DONE] = 1
    return done
