"""Page hashing and Merkle tracking benchmarks (asv style: time_* and track_* functions).

Run alone for GiB/s per core: `.venv/bin/python benchmarks/bench_vm.py [threads]`.
The goal (issue #10): >= 10 GiB/s per core for page hashing. A 256 MiB buffer does not
fit any cache, so it measures what hashing a guest RAM file costs; the 256 KiB buffer
measures the hash itself.
"""

from __future__ import annotations

import sys
import time

import numba
import numpy as np

from gaia.vm.channel import BackupEndpoint, direct_channel
from gaia.vm.hashing import hash_pages
from gaia.vm.merkle import MerkleTree
from gaia.vm.track import track

BIG = 256 << 20
SMALL = 256 << 10
_data: dict[str, np.ndarray] = {}


def setup() -> None:
    if not _data:
        rng = np.random.default_rng(0)
        _data["big"] = rng.integers(0, 256, BIG, dtype=np.uint8)
        _data["small"] = rng.integers(0, 256, SMALL, dtype=np.uint8)
        _data["out_big"] = np.empty(BIG // 4096, np.uint64)
        _data["out_small"] = np.empty(SMALL // 4096, np.uint64)
        leader = rng.integers(0, 2**63, 1 << 17, dtype=np.uint64)
        backup = leader.copy()
        backup[rng.choice(leader.size, 300, replace=False)] += np.uint64(1)
        _data["leader"], _data["backup"] = leader, backup
        hash_pages(_data["small"], algo="xxh3")  # compile outside the timings
        hash_pages(_data["small"], algo="xxh64")


def time_xxh3_256mib() -> None:
    hash_pages(_data["big"], algo="xxh3", out=_data["out_big"])


def time_xxh64_256mib() -> None:
    hash_pages(_data["big"], algo="xxh64", out=_data["out_big"])


def time_xxh3_256kib_cached() -> None:
    hash_pages(_data["small"], algo="xxh3", out=_data["out_small"])


def time_merkle_track_300_of_131072() -> None:
    """Tree over 2^17 dirty pages (512 MiB all dirty) + Algorithm 1 for 300 divergent."""
    leader, backup = _data["leader"], _data["backup"]
    everything = np.ones(leader.size, dtype=bool)
    endpoint = BackupEndpoint(backup, everything)
    channel = direct_channel(endpoint)
    channel.exchange_dirty(everything)
    track(MerkleTree.build(leader, np.arange(leader.size)), channel)


def _gib_per_s(algo: str, key: str, repeat: int) -> float:
    setup()
    buf, out = _data[key], _data[f"out_{key}"]
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeat):
            hash_pages(buf, algo=algo, out=out)
        best = min(best, (time.perf_counter() - start) / repeat)
    return buf.size / best / 2**30


def track_xxh3_gib_per_s_256mib() -> float:
    return _gib_per_s("xxh3", "big", 3)


track_xxh3_gib_per_s_256mib.unit = "GiB/s"  # type: ignore[attr-defined]


def main(argv: list[str]) -> None:
    threads = int(argv[0]) if argv else 1
    numba.set_num_threads(threads)
    print(f"page hashing, {threads} thread(s), 4 KiB pages:")
    for algo in ("xxh3", "xxh64"):
        for key, repeat in (("small", 2000), ("big", 3)):
            size = "256 KiB (in cache)" if key == "small" else "256 MiB (from memory)"
            print(f"  {algo:6s} {size:22s} {_gib_per_s(algo, key, repeat):6.1f} GiB/s")
    start = time.perf_counter()
    time_merkle_track_300_of_131072()
    print(f"  Merkle build + Algorithm 1, 300 divergent of 131,072 pages: "
          f"{(time.perf_counter() - start) * 1e3:.1f} ms")


if __name__ == "__main__":
    main(sys.argv[1:])
