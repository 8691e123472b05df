"""What a run's history says, beyond linearizability: lost acknowledged writes, how long
clients waited after a fault hit the leader, and throughput over time.

Pure functions over `gaia.checker.history.Operation` lists (no I/O), so each rule is
tested on hand-made histories.

Write values are unique within a run (every client numbers its own), so a value read
back after healing names the one operation that wrote it. That makes the lost-write rule
exact: an acknowledged write W is lost on a replica when the value the replica holds was
written by an operation that completed before W was even invoked (W must come after it
in every order the clients could have seen), or when the replica holds nothing at all.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gaia.checker.history import Operation

WRITES = frozenset({"write", "put", "cas"})
# Faults that can take the leader away (loss, rate and delay only slow it down).
LEADER_FAULTS = frozenset({"kill", "pause", "restart", "partition", "one-way"})


def written_value(op: Operation) -> Any:
    """The value an effective write or cas leaves behind."""
    return op.value[1] if op.kind == "cas" else op.value


@dataclass(frozen=True)
class LostWrite:
    """An acknowledged write a replica does not reflect after healing."""

    replica: str
    key: str
    write: Operation
    holds: Any  # the value the replica holds (None: no value)
    why: str

    def describe(self) -> str:
        return f"{self.replica}: key {self.key!r} holds {self.holds!r}; {self.why}: " \
               f"{self.write.describe()}"


def lost_writes(history: Iterable[Operation], finals: Mapping[str, Any],
                replica: str = "") -> list[LostWrite]:
    """Acknowledged writes (and successful cas) that the final values `finals` (key ->
    value read from one replica after healing) cannot reflect. A key missing from
    `finals` is not checked."""
    by_key: dict[str, list[Operation]] = {}
    for op in history:
        if op.kind in WRITES and op.outcome in ("ok", "unknown") and op.key in finals:
            by_key.setdefault(op.key, []).append(op)
    lost = []
    for key, ops in by_key.items():
        holds = finals[key]
        acked = [op for op in ops if op.outcome == "ok"]
        source = next((op for op in ops if written_value(op) == holds), None)
        if holds is None:
            lost += [LostWrite(replica, key, w, holds, "the key has no value") for w in acked]
        elif source is None:
            lost += [LostWrite(replica, key, w, holds, "the value was never written")
                     for w in acked]
        elif source.complete_ns is not None and source.outcome == "ok":
            lost += [LostWrite(replica, key, w, holds, "it was invoked after the write of "
                               "the value held completed") for w in acked
                     if w is not source and w.invoke_ns > source.complete_ns]
    return sorted(lost, key=lambda lw: (lw.key, lw.write.invoke_ns))


@dataclass(frozen=True)
class FaultSpan:
    """One applied fault as a run saw it (monotonic ns)."""

    kind: str
    targets: tuple[str, ...]
    start_ns: int
    end_ns: int | None
    leader: str | None  # the leader when it was applied
    detail: str = ""

    @property
    def hit_leader(self) -> bool:
        """The fault took the leader away: a crash or pause of it, or a partition that
        leaves it in the minority (partition targets are the minority side)."""
        return (self.kind in LEADER_FAULTS and self.leader is not None
                and self.leader in self.targets)


LANDING_NS = 100_000_000  # a fault takes effect within this long after it is stamped


def recovery_ns(history: Sequence[Operation], start_ns: int,
                landing_ns: int = LANDING_NS) -> int | None:
    """From the fault to the end of the longest stall it caused: the longest gap between
    consecutive acknowledged completions that began no later than `landing_ns` after the
    fault's stamp, measured to the completion that ended it. The nemesis stamps a fault
    before its signal or firewall rule lands, so operations invoked just after the stamp
    may still complete; the stall is what clients saw. None: that stall never ended."""
    ends = sorted(op.complete_ns for op in history
                  if op.outcome == "ok" and op.complete_ns is not None)
    before = [e for e in ends if e < start_ns]
    marks = [before[-1] if before else start_ns, *(e for e in ends if e >= start_ns)]
    best: tuple[int, int] | None = None  # (gap, end of the gap)
    for a, b in itertools.pairwise(marks):
        if a > start_ns + landing_ns:
            break
        if best is None or b - a > best[0]:
            best = (b - a, b)
    last_landed = max(m for m in marks if m <= start_ns + landing_ns)
    if last_landed == marks[-1] or best is None:
        return None  # clients have not got through since the stall began
    return best[1] - start_ns


def election_ns(changes: Sequence[tuple[int, str | None]], fault: FaultSpan) -> int | None:
    """From the fault to the first moment the deployment named another serving leader."""
    for at_ns, leader in changes:
        if at_ns >= fault.start_ns and leader is not None and leader != fault.leader:
            return at_ns - fault.start_ns
    return None


@dataclass(frozen=True)
class Failover:
    kind: str
    start_ns: int
    unavailable_ns: int | None  # first acknowledged op after the fault (clients' view)
    election_ns: int | None  # a new leader named in deployment.json

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "unavailable_ms": _ms(self.unavailable_ns),
                "election_ms": _ms(self.election_ns)}


def _ms(ns: int | None) -> float | None:
    return None if ns is None else round(ns / 1e6, 3)


def failovers(history: Sequence[Operation], faults: Iterable[FaultSpan],
              changes: Sequence[tuple[int, str | None]],
              landing_ns: int = LANDING_NS) -> list[Failover]:
    """One sample per fault that hit the leader."""
    return [Failover(f.kind, f.start_ns, recovery_ns(history, f.start_ns, landing_ns),
                     election_ns(changes, f)) for f in faults if f.hit_leader]


def throughput(history: Iterable[Operation], start_ns: int, end_ns: int,
               bucket_ns: int = 100_000_000) -> list[int]:
    """Acknowledged operations completed per bucket from `start_ns` to `end_ns`."""
    buckets = max(1, -(-(end_ns - start_ns) // bucket_ns))
    counts = [0] * buckets
    for op in history:
        if op.outcome == "ok" and op.complete_ns is not None \
                and start_ns <= op.complete_ns < end_ns:
            counts[(op.complete_ns - start_ns) // bucket_ns] += 1
    return counts


def percentiles_ms(samples_ns: Iterable[int | None], pcts: Sequence[float] = (50, 99)
                   ) -> dict[str, float | None]:
    """{"p50": ms, "p99": ms} of the samples that are not None (None when there are none)."""
    values = np.array([s for s in samples_ns if s is not None], dtype=np.float64)
    return {f"p{p:g}": (round(float(np.percentile(values, p)) / 1e6, 3) if len(values)
                        else None) for p in pcts}


def outcome_counts(history: Iterable[Operation]) -> dict[str, int]:
    counts = {"ok": 0, "fail": 0, "unknown": 0}
    for op in history:
        counts[op.outcome] += 1
    return counts
