"""The live status line: operations done, current throughput and current latency.

YCSB's StatusThread prints "<n> sec: <ops> operations; <x> current ops/sec; ..." every
status.interval seconds. GAIA shows the same figures as one rich line on stderr, refreshed
a few times per second, computed from the clients' progress rows (shared memory when the
clients are processes): ops/s and mean latency over the last refresh interval.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from rich.console import Console
from rich.live import Live
from rich.text import Text

from workloads.client import P_LAT_COUNT, P_LAT_SUM, P_OPS


class StatusLine:
    def __init__(self, phase: str, total_ops: int, enabled: bool = True):
        self.phase = phase
        self.total = total_ops
        self.enabled = enabled
        self.started = time.monotonic()
        self._last = (self.started, 0, 0, 0)
        self.text = Text()
        self._live: Live | None = None

    def __enter__(self) -> StatusLine:
        if self.enabled:
            console = Console(file=sys.stderr)
            self._live = Live(
                self.text, console=console, refresh_per_second=4, transient=not console.is_terminal
            )
            self._live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._live is not None:
            self._live.__exit__(*exc)

    def update(self, progress: np.ndarray) -> str:
        """Recompute from the progress rows; returns the line (also shown when enabled)."""
        now = time.monotonic()
        ops = int(progress[:, P_OPS].sum())
        lat_sum = int(progress[:, P_LAT_SUM].sum())
        lat_count = int(progress[:, P_LAT_COUNT].sum())
        t0, ops0, sum0, count0 = self._last
        dt = max(now - t0, 1e-9)
        rate = (ops - ops0) / dt
        latency_us = (lat_sum - sum0) / max(lat_count - count0, 1) / 1000.0
        self._last = (now, ops, lat_sum, lat_count)
        total = f"/{self.total}" if self.total else ""
        line = (
            f"{self.phase}: {now - self.started:6.1f} s  {ops}{total} operations  "
            f"{rate:,.0f} current ops/sec  current latency {latency_us:,.1f} us"
        )
        if self._live is not None:
            self.text.plain = line
            self._live.refresh()
        return line
