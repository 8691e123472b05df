"""The shared-memory segments of a running group besides the regions, and their cleanup.

Per replica: the log (`logstore.log_name`, read by local committed-log readers), the input
ring (`ringio.ring_name`, written by the shim and clients) and a small stats segment
holding the hot loop's latency histograms (read by the latency benchmark) followed by a
few control words through which the benchmark asks the leader for a closed loop of its
own proposals (runtime/selfdrive.py).
"""

from __future__ import annotations

import numpy as np

from gaia.apus import fastpath as fp
from gaia.apus.logstore import log_name
from gaia.apus.ringio import ring_name
from gaia.apus.transport import unlink_group
from gaia.intercept.shm import ShmSegment, shm_path

HIST_BYTES = fp.PH_LEN * fp.HIST_BUCKETS * 8
CONTROL_WORDS = 8
STATS_BYTES = HIST_BYTES + CONTROL_WORDS * 8


def stats_name(group_id: str, replica_id: int) -> str:
    return f"/gaia-{group_id}-r{replica_id}-stats"


class StatsSegment(ShmSegment):
    what = "APUS stats segment"

    @property
    def hist(self) -> np.ndarray:
        """int64 [PH_LEN, HIST_BUCKETS]: counts per latency bucket and phase."""
        return self.seg[:HIST_BYTES].view(np.int64).reshape(fp.PH_LEN, fp.HIST_BUCKETS)

    @property
    def control(self) -> np.ndarray:
        """int64 [CONTROL_WORDS]: the benchmark's requests (selfdrive.C_*)."""
        return self.seg[HIST_BYTES:].view(np.int64)


def stats_segment(group_id: str, replica_id: int, create: bool = False) -> StatsSegment:
    name = stats_name(group_id, replica_id)
    if create:
        shm_path(name).unlink(missing_ok=True)
        return StatsSegment._create(name, STATS_BYTES)
    return StatsSegment._open(name)


def unlink_segments(group_id: str, replicas: list[int]) -> None:
    """Remove every segment of a group (regions included): teardown only."""
    unlink_group(group_id)
    for r in replicas:
        for name in (log_name(group_id, r), ring_name(group_id, r), stats_name(group_id, r)):
            shm_path(name).unlink(missing_ok=True)
