"""CPU pinning options for replicas and pollers.

Why: a spinning poller and the peer it waits for must not share a core, or each round
trip costs a scheduler time slice. `pin` is one option value the runtime passes through:
None (let the kernel place threads), "spread" (replica i on CPU i mod ncpu), an int (every
replica on that CPU) or a list (replica i on list[i mod len]).
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Sequence

from gaia.errors import ConfigError

PinOption = None | str | int | Sequence[int]
PR_SET_TIMERSLACK = 29
_START_MASK = os.sched_getaffinity(0)


def cpu_for(replica_id: int, pin: PinOption, cpus: int | None = None) -> int | None:
    """The CPU replica `replica_id` runs on under option `pin`, or None for no pinning."""
    cpus = cpus or os.cpu_count() or 1
    if pin is None or pin == "none":
        return None
    if pin == "spread":
        return replica_id % cpus
    if isinstance(pin, int):
        return pin % cpus
    if isinstance(pin, str):
        if pin.isdigit():
            return int(pin) % cpus
        choices = [int(c) for c in pin.split(",") if c.strip()]
    else:
        choices = [int(c) for c in pin]
    if not choices:
        raise ConfigError(
            f"pinning option {pin!r} names no CPU",
            "use none, spread, a CPU number or a list like 0,1",
        )
    return choices[replica_id % len(choices)] % cpus


def pin_thread(cpu: int | None) -> None:
    """Pin the calling thread (threads it starts later inherit the mask)."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})


def unpin_thread() -> None:
    """Give the calling thread back the CPUs the process started with."""
    os.sched_setaffinity(0, _START_MASK)


def fine_timer_slack(slack_ns: int = 1_000) -> None:
    """Shrink the calling thread's timer slack (default 50 µs) so short backoff sleeps
    are short."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_TIMERSLACK, ctypes.c_ulong(slack_ns), 0, 0, 0)
