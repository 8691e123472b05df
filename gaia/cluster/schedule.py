"""Seeded fault schedules for campaigns, and the loop that plays one against a nemesis.

`generate(seed, ...)` is a pure function: the same seed gives the same schedule, so a run
that found a bug is replayed exactly. Faults do not overlap: each is applied, held for its
duration, healed, then the system gets a quiet gap to recover before the next one.
The target `@leader` is symbolic: the runner resolves it when the fault starts (the
leader at that moment), which is what failover measurements need.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from gaia.cluster.nemesis import FAULT_KINDS, Fault, Nemesis
from gaia.errors import ConfigError

LEADER = "@leader"
_LOSS_PERCENT = (10, 30, 50)
_RATE_KBIT = (256, 1024, 8192)
_DELAY_S = (0.005, 0.02, 0.1)


@dataclass(frozen=True)
class ScheduledFault:
    """Apply `kind` to `targets` at `at_s` (seconds from the start), heal after `duration_s`."""

    at_s: float
    kind: str
    targets: tuple[str, ...]
    duration_s: float
    params: tuple[tuple[str, Any], ...] = ()

    def param_dict(self) -> dict[str, Any]:
        return dict(self.params)


def _split(rng: random.Random, nodes: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """A random minority and the majority of the rest (a majority keeps quorum)."""
    shuffled = list(nodes)
    rng.shuffle(shuffled)
    size = rng.randint(1, max(1, (len(nodes) - 1) // 2))
    return tuple(sorted(shuffled[:size])), tuple(sorted(shuffled[size:]))


def _fault(
    rng: random.Random, kind: str, nodes: Sequence[str], relays: Sequence[str], leader_share: float
) -> tuple[tuple[str, ...], tuple[tuple[str, Any], ...]]:
    """(targets, params) for one fault of `kind`."""
    if kind in ("kill", "pause", "restart"):
        target = LEADER if rng.random() < leader_share else rng.choice(list(nodes))
        return (target,), ()
    if kind in ("partition", "one-way"):
        minority, majority = _split(rng, nodes)
        return minority, (("other", majority),)
    if kind == "loss":
        return (rng.choice(list(nodes)),), (("percent", rng.choice(_LOSS_PERCENT)),)
    if kind == "rate":
        return (rng.choice(list(nodes)),), (("kbit", rng.choice(_RATE_KBIT)),)
    return (rng.choice(list(relays)),), (("delay_s", rng.choice(_DELAY_S)),)


def generate(
    seed: int,
    duration_s: float,
    kinds: Sequence[str],
    nodes: Sequence[str],
    relays: Sequence[str] = (),
    fault_s: tuple[float, float] = (1.0, 3.0),
    gap_s: tuple[float, float] = (1.0, 3.0),
    leader_share: float = 0.5,
) -> list[ScheduledFault]:
    """Faults of the given kinds spread over `duration_s`; deterministic per seed."""
    unknown = [k for k in kinds if k not in FAULT_KINDS]
    if unknown or not kinds:
        raise ConfigError(
            f"unknown nemesis kinds {unknown or kinds}", f"choose among {', '.join(FAULT_KINDS)}"
        )
    if len(nodes) < 2 and any(k in ("partition", "one-way") for k in kinds):
        raise ConfigError("a partition needs at least two nodes", "deploy more replicas")
    if "delay" in kinds and not relays:
        raise ConfigError("the delay fault needs relays", "deploy with relays between replicas")
    rng = random.Random(seed)
    schedule = []
    now = rng.uniform(*gap_s)
    while True:
        hold = rng.uniform(*fault_s)
        if now + hold > duration_s:
            break
        kind = rng.choice(list(kinds))
        targets, params = _fault(rng, kind, nodes, relays, leader_share)
        schedule.append(ScheduledFault(round(now, 3), kind, targets, round(hold, 3), params))
        now += hold + rng.uniform(*gap_s)
    return schedule


@dataclass
class Timeline:
    """What a played schedule did: every fault with its real start/heal times (ns)."""

    started_ns: int
    faults: list[Fault] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def play(
    nemesis: Nemesis,
    schedule: Sequence[ScheduledFault],
    resolve: Callable[[str], str] | None = None,
    stop: threading.Event | None = None,
) -> Timeline:
    """Apply each fault at its time, heal it after its duration; heal all at the end.

    `resolve` maps symbolic targets (`@leader`) to node names at the moment of the fault.
    `stop` ends the run early (still healing). A fault that cannot be applied is recorded
    in `errors` and the schedule goes on.
    """
    stop = stop or threading.Event()
    timeline = Timeline(time.monotonic_ns())
    start = time.monotonic()
    try:
        for item in schedule:
            if stop.wait(max(0.0, start + item.at_s - time.monotonic())):
                break
            targets = [resolve(t) if resolve and t.startswith("@") else t for t in item.targets]
            try:
                fault = nemesis.apply(item.kind, targets, **item.param_dict())
            except Exception as exc:
                timeline.errors.append(f"{item.at_s:.3f} s {item.kind} {targets}: {exc}")
                continue
            timeline.faults.append(fault)
            stop.wait(item.duration_s)
            fault.undo()
    finally:
        nemesis.heal()
    return timeline
