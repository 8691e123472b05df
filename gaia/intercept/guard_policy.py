"""The guard's decisions as pure functions: when to checkpoint, which checkpoints to keep,
how far the log may be truncated.

Truncation rule (decided here, used by guard.py, documented for APUS in
/work/helpers/notes/guard-to-apus.md): the log keeps every entry after the OLDEST
retained checkpoint, so each retained checkpoint plus the log suffix still reaches the
commit index — a corrupt or missing newest checkpoint falls back to the previous one —
and it never drops an entry that a live local reader (a backup's replayer) has not
applied yet. A replica that is down is not a reader: it recovers from a checkpoint, not
from the log. No majority is needed for a checkpoint: any live backup can take a fresh
one at any time, and with APUS a replica whose log lacks entries gets a checkpoint
transferred from a peer's guard.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from gaia.errors import ConfigError


@dataclass(frozen=True)
class GuardPolicy:
    """every_entries / every_seconds: take a checkpoint once this many entries were
    committed, or this long passed with at least one new entry, since the last one (0:
    that trigger is off). keep: checkpoints retained (>= 1)."""

    every_entries: int = 10_000
    every_seconds: float = 0.0
    keep: int = 2
    truncate: bool = True

    def __post_init__(self) -> None:
        if self.keep < 1:
            raise ConfigError(f"the guard must keep at least one checkpoint (keep={self.keep})",
                              "pass keep >= 1 (2 lets a corrupt newest one fall back)")
        if self.every_entries < 0 or self.every_seconds < 0:
            raise ConfigError("checkpoint intervals cannot be negative",
                              "pass every_entries >= 0 and every_seconds >= 0 (0: off)")


def checkpoint_due(policy: GuardPolicy, last_index: int, last_time: float,
                   commit_index: int, now: float) -> bool:
    """Is a checkpoint due? `last_index`/`last_time`: the newest checkpoint (0 / the
    guard's start time when there is none)."""
    new = commit_index - last_index
    if new <= 0:
        return False
    if policy.every_entries and new >= policy.every_entries:
        return True
    return bool(policy.every_seconds) and now - last_time >= policy.every_seconds


def retention(indices: Sequence[int], keep: int) -> tuple[list[int], list[int]]:
    """(kept, dropped): the `keep` highest checkpoint indices and the rest."""
    ordered = sorted(set(indices), reverse=True)
    return sorted(ordered[:keep]), sorted(ordered[keep:])


def truncation_point(retained: Sequence[int], readers: Sequence[int]) -> int:
    """The index to pass to truncate_before(): the first entry still needed. 0 means do
    not truncate (no checkpoint yet). `retained`: indices of the checkpoints kept;
    `readers`: the applied index of every live local reader of this log."""
    if not retained:
        return 0
    first_needed = min(retained) + 1
    if readers:
        first_needed = min(first_needed, min(readers) + 1)
    return first_needed
