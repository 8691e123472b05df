"""YCSB key generation speed (asv): run-phase key choice + key name, one core.

What is timed is `workloads.core.generate_keys`: for each key, CoreWorkload.nextKeynum
(the scrambled zipfian of workload A, with the acknowledged-limit check) and
buildKeyName (FNV-64 hash, "user" + decimal digits) written as ASCII into a byte matrix.
The issue's bar is >= 2 M keys/s on one core. Run directly for a one-line figure:

    .venv/bin/python benchmarks/bench_ycsb.py
"""

from __future__ import annotations

import time
from typing import ClassVar

import numpy as np

from workloads import properties
from workloads.ackcounter import SharedState
from workloads.core import CoreWorkload, generate_keys

KEYS = 1_000_000


def _workload(distribution: str = "zipfian") -> CoreWorkload:
    config = properties.load(
        "a",
        overrides=[f"requestdistribution={distribution}"],
        base={"recordcount": "10000000", "operationcount": "10000000"},
    )
    shared = SharedState.create(1, config.insertstart, config.recordcount)
    return CoreWorkload(config, shared.counters, shared.window, 0)


class KeyGeneration:
    params: ClassVar[list[str]] = ["zipfian", "uniform", "latest"]  # asv wants lists
    param_names: ClassVar[list[str]] = ["requestdistribution"]
    unit = "keys/s"

    def setup(self, distribution: str) -> None:
        self.w = _workload(distribution)
        self.out = np.zeros((KEYS, 32), dtype=np.uint8)
        self.lengths = np.zeros(KEYS, dtype=np.int64)
        self._run(1000)  # compile / load the cached kernels outside the timing

    def _run(self, n: int) -> None:
        w = self.w
        generate_keys(w.cfg, w.keyg, w.rng, w.shared, n, self.out, self.lengths)

    def time_generate_keys(self, distribution: str) -> None:
        self._run(KEYS)

    def track_keys_per_second(self, distribution: str) -> float:
        start = time.perf_counter()
        self._run(KEYS)
        return KEYS / (time.perf_counter() - start)


class PlanOperation:
    """One full operation decision as the runner makes it (per-op call + Python objects)."""

    def setup(self) -> None:
        self.w = _workload()
        self.w.plan(load=False)

    def time_plan_10k_operations(self) -> None:
        for _ in range(10_000):
            self.w.plan(load=False)


if __name__ == "__main__":
    for dist in KeyGeneration.params:
        bench = KeyGeneration()
        bench.setup(dist)
        rates = [bench.track_keys_per_second(dist) for _ in range(5)]
        print(f"{dist:8s} key generation: {max(rates) / 1e6:.2f} M keys/s (best of 5, 1 core)")
    plan = PlanOperation()
    plan.setup()
    start = time.perf_counter()
    plan.time_plan_10k_operations()
    print(f"plan one operation: {(time.perf_counter() - start) / 10_000 * 1e6:.2f} us")
