"""How long the app layer's own operations take: start, digest, snapshot and restore of
`keys` keys loaded through each server's key-value view (`invoke apps.measure`).

Numbers are medians of `repeat` runs, in seconds, on whatever else the machine is doing.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import apps

VALUE = b"v" * 100


@dataclass(frozen=True)
class Timings:
    app: str
    server_kind: str
    keys: int
    start: float  # until the server answers (install/copy of a datadir included)
    load: float
    digest: float
    snapshot: float
    restore: float


def _timed(action: Callable[[], object]) -> float:
    began = time.monotonic()
    action()
    return time.monotonic() - began


def measure_once(name: str, keys: int) -> Timings:
    server = apps.get(name)()
    try:
        start = _timed(server.start)
        load = _timed(lambda: server.put_many((f"user{i}", VALUE) for i in range(keys)))
        digest = _timed(server.digest)
        expected = server.digest()
        with tempfile.TemporaryDirectory(prefix="gaia-measure-") as scratch:
            snapshot_path: list[Path] = []
            snapshot = _timed(lambda: snapshot_path.append(server.snapshot(Path(scratch))))
            server.put("one-more", VALUE)
            restore = _timed(lambda: server.restore(snapshot_path[0]))
        if server.digest() != expected:
            raise AssertionError(f"{name}: state after restore differs from the snapshot")
        return Timings(name, server.server_kind, keys, start, load, digest, snapshot, restore)
    finally:
        server.stop()
        server.cleanup()


def measure(name: str, keys: int, repeat: int) -> Timings:
    runs = [measure_once(name, keys) for _ in range(repeat)]

    def median(field: str) -> float:
        return statistics.median(getattr(run, field) for run in runs)

    return Timings(
        name,
        runs[0].server_kind,
        keys,
        *(median(f) for f in ("start", "load", "digest", "snapshot", "restore")),
    )
