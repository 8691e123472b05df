"""The leader-side closed loop both numba baselines drive: at most `window` proposals
outstanding, each timed from proposal to commit.

`starts` has one slot per outstanding proposal (index % window); `samples[i]` receives
the latency of the run's i-th entry (the run's first index is `first`).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from gaia.apus.transport.libc import now_ns


@njit(nogil=True, cache=True)
def may_propose(last: int, commit: int, first: int, window: int, rounds: int) -> bool:
    """Room in the window, and proposals left in this run."""
    return last - commit < window and last - first + 1 < rounds


@njit(nogil=True, cache=True)
def proposed(starts: np.ndarray, index: int) -> None:
    starts[index % starts.size] = now_ns()


@njit(nogil=True, cache=True)
def committed(starts: np.ndarray, samples: np.ndarray, first: int, commit: int,
              new_commit: int) -> int:
    """Record the latency of every entry in commit+1..new_commit; returns how many."""
    now = now_ns()
    for index in range(commit + 1, new_commit + 1):
        samples[index - first] = now - starts[index % starts.size]
    return max(0, new_commit - commit)
