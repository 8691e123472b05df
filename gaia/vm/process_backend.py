"""The sync pipeline over another process's memory (process_vm_readv / process_vm_writev).

Why: booting guests takes seconds under TCG; the same Merkle / Algorithm 1 pipeline over
two processes runs in milliseconds, so tests and comparisons use it. The two processes
must be clones (one forked from the other at a quiescent point, as Redis's BGSAVE forks):
separately started processes differ in 28-49% of their pages, which says nothing about
divergence under identical inputs.

`ProcessStore` presents chosen address ranges of a process as one paged image. Callers
pause both processes (`paused`) around a sync, exactly as VMs are stopped.
"""

from __future__ import annotations

import ctypes
import os
import signal
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gaia.errors import GaiaError
from gaia.vm.hashing import PAGE_SIZE, hash_pages

_libc = ctypes.CDLL(None, use_errno=True)
IOV_MAX = 1024


class _IoVec(ctypes.Structure):
    _fields_ = [("iov_base", ctypes.c_void_p), ("iov_len", ctypes.c_size_t)]


for _name in ("process_vm_readv", "process_vm_writev"):
    _fn = getattr(_libc, _name)
    _fn.argtypes = [
        ctypes.c_int,
        ctypes.POINTER(_IoVec),
        ctypes.c_ulong,
        ctypes.POINTER(_IoVec),
        ctypes.c_ulong,
        ctypes.c_ulong,
    ]
    _fn.restype = ctypes.c_ssize_t


@dataclass(frozen=True)
class Region:
    start: int
    length: int

    @property
    def end(self) -> int:
        return self.start + self.length


def _transfer(pid: int, local: np.ndarray, remote_addrs: np.ndarray, write: bool) -> None:
    """Move len(remote_addrs) pages between local[k] (k x PAGE_SIZE) and the remote pages."""
    fn = _libc.process_vm_writev if write else _libc.process_vm_readv
    base = local.ctypes.data
    n = remote_addrs.size
    for lo in range(0, n, IOV_MAX):
        hi = min(n, lo + IOV_MAX)
        count = hi - lo
        liov = (_IoVec * 1)(_IoVec(base + lo * PAGE_SIZE, count * PAGE_SIZE))
        riov = (_IoVec * count)(*[_IoVec(int(a), PAGE_SIZE) for a in remote_addrs[lo:hi]])
        done = fn(pid, liov, 1, riov, count, 0)
        if done != count * PAGE_SIZE:
            err = ctypes.get_errno()
            raise GaiaError(
                f"{'process_vm_writev' if write else 'process_vm_readv'} on pid {pid} moved "
                f"{done} of {count * PAGE_SIZE} bytes ({os.strerror(err) if err else 'short'})",
                "run as root (or with CAP_SYS_PTRACE) and check the process is still alive",
            )


class ProcessStore:
    """Pages of `regions` of process `pid`, laid end to end, as a PageStore."""

    def __init__(self, pid: int, regions: Iterable[Region]) -> None:
        self.pid = pid
        self.regions = list(regions)
        for r in self.regions:
            if r.start % PAGE_SIZE or r.length % PAGE_SIZE:
                raise ValueError(f"region {r} is not page aligned")
        self.addrs = np.concatenate(
            [np.arange(r.start, r.end, PAGE_SIZE, dtype=np.uint64) for r in self.regions]
            or [np.empty(0, np.uint64)]
        )
        self.n_pages = int(self.addrs.size)

    def read_pages(self, pages: np.ndarray) -> np.ndarray:
        idx = np.asarray(pages, dtype=np.int64)
        out = np.empty((idx.size, PAGE_SIZE), dtype=np.uint8)
        _transfer(self.pid, out, self.addrs[idx], write=False)
        return out

    def write_pages(self, pages: np.ndarray, data: np.ndarray) -> None:
        idx = np.asarray(pages, dtype=np.int64)
        buf = np.ascontiguousarray(data, dtype=np.uint8).reshape(idx.size, PAGE_SIZE)
        _transfer(self.pid, buf, self.addrs[idx], write=True)

    def snapshot(self) -> np.ndarray:
        return self.read_pages(np.arange(self.n_pages)).reshape(-1)

    def hash_all(self) -> np.ndarray:
        return hash_pages(self.snapshot())

    def hash_at(self, pages: np.ndarray) -> np.ndarray:
        return hash_pages(self.read_pages(pages).reshape(-1))


def writable_regions(pid: int) -> list[Region]:
    """Private writable mappings of `pid` (heap, stacks, anonymous memory, .data/.bss)."""
    regions = []
    for line in Path(f"/proc/{pid}/maps").read_text().splitlines():
        fields = line.split()
        span, perms = fields[0], fields[1]
        name = fields[5] if len(fields) > 5 else ""
        if not perms.startswith("rw") or perms[3] != "p" or name in ("[vvar]", "[vsyscall]"):
            continue
        lo, hi = (int(x, 16) for x in span.split("-"))
        regions.append(Region(lo, hi - lo))
    return regions


def common_regions(pid_a: int, pid_b: int) -> list[Region]:
    """Writable regions mapped at the same addresses with the same size in both clones."""
    b = set(writable_regions(pid_b))
    return [r for r in writable_regions(pid_a) if r in b]


@contextmanager
def paused(*pids: int) -> Iterator[None]:
    """SIGSTOP the processes for the duration (as a sync stops both VMs), then SIGCONT."""
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        for pid in pids:
            _wait_stopped(pid)
        yield
    finally:
        for pid in pids:
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass


def _wait_stopped(pid: int, timeout: float = 5.0) -> None:
    """Until the kernel shows the process stopped (a busy host may take milliseconds)."""
    deadline = time.monotonic() + timeout
    while True:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0]
        if state in "Tt":
            return
        if time.monotonic() > deadline:
            raise GaiaError(f"process {pid} did not stop on SIGSTOP", "check it is not traced")
        time.sleep(0.0002)
