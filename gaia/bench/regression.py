"""Deciding which benchmarks regressed between two runs: a factor AND a significance test.

Why both (as `asv continuous` does): on a shared 2-core machine a benchmark's median moves
by 10–30 % between runs of the same commit (and by 2-3x when other work lands on the
cores), so a ratio alone flags noise, and with many observations a test alone flags a real
but irrelevant 2 % shift. A change counts only when the median moved by more than `factor`
in the bad direction AND the two sets of observations differ by a two-sided Mann–Whitney U
test at level `alpha`.

Observations are whatever `Measurement.samples` holds: asv's raw samples for one result
file, or one value per round when `invoke bench.compare` pools interleaved rounds
(asvresults.pool_runs; raw samples of one run share that minute's machine load, so they
are not independent and overstate significance). When the observations are too few for any
outcome of the test to reach `alpha` (3 against 3 cannot go below p = 2/20), the most
extreme outcome is required instead, with the factor as margin: every observation of B
worse than every observation of A by more than `factor` (with one each: the plain factor).
`Verdict.tested` says which rule decided.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

from gaia.bench.asvresults import Measurement

DEFAULT_FACTOR = 1.5
DEFAULT_ALPHA = 0.01
EXACT_LIMIT = 400  # m*n up to which the U distribution is counted exactly (no ties)
PERMUTATION_LIMIT = 50_000  # splits enumerated for an exact p when values tie


class Status(StrEnum):
    REGRESSED = "regressed"
    IMPROVED = "improved"
    WITHIN_FACTOR = "within factor"
    NOT_SIGNIFICANT = "not significant"
    BROKEN = "broken"  # had a value before, failed or skipped after
    FIXED = "fixed"  # failed or skipped before, has a value now
    SKIPPED = "skipped"  # no value on either side (e.g. NotImplementedError in setup)
    ONLY_BEFORE = "missing after"
    ONLY_AFTER = "missing before"


FAILING = frozenset({Status.REGRESSED, Status.BROKEN})


@dataclass(frozen=True)
class Verdict:
    name: str
    unit: str
    before: float | None
    after: float | None
    ratio: float | None  # after / before (>1 = larger value)
    p_value: float | None  # two-sided Mann–Whitney U; None where there is nothing to test
    status: Status
    tested: bool = False  # the test could reach alpha (else: ranges apart by the factor)

    @property
    def failing(self) -> bool:
        return self.status in FAILING


def _ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties sharing their average rank."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


@cache
def _u_counts(m: int, n: int) -> tuple[int, ...]:
    """How many of the C(m+n, m) orderings give each U = 0..m*n (no ties)."""
    if m == 0 or n == 0:
        return (1,)
    # The largest element is from the first sample (adds n to U) or from the second.
    with_first = _u_counts(m - 1, n)
    without = _u_counts(m, n - 1)
    counts = [0] * (m * n + 1)
    for u, c in enumerate(with_first):
        counts[u + n] += c
    for u, c in enumerate(without):
        counts[u] += c
    return tuple(counts)


def _permutation_p(ranks: Sequence[float], m: int, u: float) -> float:
    """Exact two-sided p with ties: the share of all ways to pick the first sample's m
    ranks whose U is at least as far from its mean as the observed one."""
    n = len(ranks) - m
    centre, offset = m * n / 2, m * (m + 1) / 2
    observed = abs(u - centre) - 1e-9
    splits = list(itertools.combinations(ranks, m))
    hits = sum(1 for chosen in splits if abs(sum(chosen) - offset - centre) >= observed)
    return hits / len(splits)


def mann_whitney_p(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value that samples a and b come from one distribution."""
    m, n = len(a), len(b)
    if m == 0 or n == 0:
        return 1.0
    pooled = list(a) + list(b)
    ranks = _ranks(pooled)
    u = sum(ranks[:m]) - m * (m + 1) / 2
    tied = len(set(pooled)) < len(pooled)
    if tied and math.comb(m + n, m) <= PERMUTATION_LIMIT:
        return _permutation_p(ranks, m, u)
    if not tied and m * n <= EXACT_LIMIT:
        counts = _u_counts(m, n)
        total = sum(counts)
        k = round(u)
        low = sum(counts[: k + 1]) / total
        high = sum(counts[k:]) / total
        return min(1.0, 2 * min(low, high))
    ties = {}
    for v in pooled:
        ties[v] = ties.get(v, 0) + 1
    size = m + n
    tie_term = sum(t**3 - t for t in ties.values()) / (size * (size - 1))
    variance = m * n / 12 * ((size + 1) - tie_term)
    if variance <= 0:
        return 1.0  # every value equal
    z = max(0.0, abs(u - m * n / 2) - 0.5) / math.sqrt(variance)
    return math.erfc(z / math.sqrt(2))


def testable(m: int, n: int, alpha: float) -> bool:
    """Whether m against n samples can reach p < alpha at all (the most extreme ordering
    has two-sided p = 2 / C(m+n, m))."""
    return m > 0 and n > 0 and 2 / math.comb(m + n, m) < alpha


def _worse_ratio(m: Measurement, before: float, after: float) -> float:
    """How many times worse `after` is than `before` (<1: better), by the unit's sense."""
    if before == 0 or after == 0:
        return 1.0 if before == after else math.inf
    return before / after if m.higher_is_better else after / before


def _observations(m: Measurement) -> tuple[float, ...]:
    return m.samples or ((m.value,) if m.value is not None else ())


def _ranges_apart(a: Sequence[float], b: Sequence[float], factor: float) -> bool:
    """Whether the closest pair of observations across the two sides differs by > factor."""
    if max(b) < min(a):
        a, b = b, a  # after got smaller: the same gap, measured the other way round
    low, high = max(a), min(b)
    return (low > 0 and high / low > factor) or low == 0 < high


def judge(
    before: Measurement | None,
    after: Measurement | None,
    factor: float = DEFAULT_FACTOR,
    alpha: float = DEFAULT_ALPHA,
) -> Verdict:
    """The verdict for one benchmark; either side may be absent from its run."""
    some = after or before
    assert some is not None, "judge needs at least one side"
    if before is None or after is None:
        status = Status.ONLY_AFTER if before is None else Status.ONLY_BEFORE
        return Verdict(
            some.name, some.unit, before and before.value, after and after.value, None, None, status
        )
    if before.value is None or after.value is None:
        if before.value is None and after.value is None:
            status = Status.SKIPPED
        else:
            status = Status.BROKEN if after.value is None else Status.FIXED
        return Verdict(some.name, some.unit, before.value, after.value, None, None, status)
    ratio = after.value / before.value if before.value else math.inf
    worse = _worse_ratio(after, before.value, after.value)
    a, b = _observations(before), _observations(after)
    p_value = mann_whitney_p(a, b)
    tested = testable(len(a), len(b), alpha)
    significant = p_value < alpha if tested else _ranges_apart(a, b, factor)
    if worse <= factor and worse >= 1 / factor:
        status = Status.WITHIN_FACTOR
    elif not significant:
        status = Status.NOT_SIGNIFICANT
    else:
        status = Status.REGRESSED if worse > factor else Status.IMPROVED
    return Verdict(some.name, some.unit, before.value, after.value, ratio, p_value, status, tested)


def compare(
    before: Mapping[str, Measurement],
    after: Mapping[str, Measurement],
    factor: float = DEFAULT_FACTOR,
    alpha: float = DEFAULT_ALPHA,
) -> list[Verdict]:
    """Verdicts for every benchmark in either run, sorted by name."""
    if factor <= 1:
        raise ValueError(f"factor must be > 1 (got {factor})")
    names = sorted(set(before) | set(after))
    return [judge(before.get(n), after.get(n), factor, alpha) for n in names]
