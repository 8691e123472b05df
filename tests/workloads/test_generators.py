"""YCSB's generators: distributions checked against their formulas, seeded.

Tolerances are binomial: a count of an event of probability p over N draws must lie
within 5 standard deviations of N*p. Seeds are fixed, so the tests are deterministic;
each distribution also has a negative control showing the check would catch a wrong one.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from workloads import generators as G
from workloads import rng as R
from workloads.ackcounter import WINDOW_SIZE, acknowledge, last_value
from workloads.javamath import fnvhash64, java_rem

SIGMAS = 5.0


def within(count: int, n: int, p: float) -> bool:
    sd = math.sqrt(n * p * (1 - p))
    return abs(count - n * p) <= SIGMAS * sd + 1


def gray_probabilities(n: int, theta: float, ranks: int) -> np.ndarray:
    """P(rank k) of YCSB's zipfian over n items, derived from Gray et al.'s construction:
    u < 1/zeta(n) -> 0; u < (1 + 0.5^theta)/zeta(n) -> 1; otherwise
    floor(n * (eta*u - eta + 1)^alpha), i.e. rank k for u in [g(k), g(k+1)) with
    g(x) = ((x/n)^(1-theta) - 1)/eta + 1, restricted to the third branch."""
    zetan = math.fsum((i + 1) ** -theta for i in range(n))
    zeta2 = 1 + 0.5**theta
    eta = (1 - (2 / n) ** (1 - theta)) / (1 - zeta2 / zetan)
    u0 = zeta2 / zetan

    def g(x: float) -> float:
        return min(1.0, max(u0, ((x / n) ** (1 - theta) - 1) / eta + 1))

    p = np.array([g(k + 1) - g(k) for k in range(ranks)])
    p[0] += 1 / zetan
    p[1] += 0.5**theta / zetan
    return p


def test_xoshiro_matches_a_reference_transcription():
    mask = 2**64 - 1

    def rotl(x, k):
        return ((x << k) | (x >> (64 - k))) & mask

    x, state = 42, []
    for _ in range(4):  # splitmix64 seeding
        x = (x + 0x9E3779B97F4A7C15) & mask
        z = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & mask
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & mask
        state.append(z ^ (z >> 31))
    expected = []
    for _ in range(20):
        s0, s1, s2, s3 = state
        expected.append((rotl((s1 * 5) & mask, 7) * 9) & mask)
        t = (s1 << 17) & mask
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        state = [s0, s1, s2, rotl(s3, 45)]
    s = R.new_state(42)
    assert [int(R.next_u64(s)) for _ in range(20)] == expected


def test_zipfian_rank_frequencies_follow_grays_formula_not_exact_zipf():
    n, draws = 1000, 2_000_000
    sample = G.Generator(G.zipfian_state(0, n - 1), seed=7).sample(draws)
    assert sample.min() >= 0 and sample.max() <= n - 1
    counts = np.bincount(sample, minlength=n)
    gray = gray_probabilities(n, 0.99, 50)
    assert all(within(int(counts[k]), draws, gray[k]) for k in range(50))
    # negative control: exact Zipf differs from Gray's approximation from rank 2 on
    zetan = math.fsum((i + 1) ** -0.99 for i in range(n))
    exact = np.array([(k + 1) ** -0.99 / zetan for k in range(50)])
    assert not all(within(int(counts[k]), draws, exact[k]) for k in range(50))


def test_zipfian_with_an_offset_and_another_theta():
    sample = G.Generator(G.zipfian_state(10, 209, theta=0.5), seed=3).sample(500_000)
    assert sample.min() >= 10 and sample.max() <= 209
    counts = np.bincount(sample - 10, minlength=200)
    gray = gray_probabilities(200, 0.5, 20)
    assert all(within(int(counts[k]), 500_000, gray[k]) for k in range(20))


def test_incremental_zeta_equals_a_full_recomputation():
    g = G.zipfian_state(0, 999)
    rng = R.new_state(1)
    G.zipf_next(g, G.ZIPF_OFFSET[G.ZIPFIAN], 5000, rng)  # asks for more items: zeta grows
    off = G.ZIPF_OFFSET[G.ZIPFIAN]
    assert g[off + G.Z_COUNT] == 5000
    assert g[off + G.Z_ZETAN] == pytest.approx(G.zeta_sum(0, 5000, 0.99, 0.0), rel=1e-12)
    # eta keeps the constructor's item count (Java's formula uses `items`)
    expected_eta = (1 - (2 / 1000) ** 0.01) / (1 - g[off + G.Z_ZETA2] / g[off + G.Z_ZETAN])
    assert g[off + G.Z_ETA] == pytest.approx(expected_eta, rel=1e-12)
    before = g.copy()
    G.zipf_next(g, off, 3000, rng)  # fewer items: no recomputation (no decrease allowed)
    assert np.array_equal(before, g)


def test_scrambled_zipfian_constant_is_zeta_of_ten_billion():
    # Euler-Maclaurin: exact sum to 10^6, integral + end corrections for the tail.
    s, m, n = 0.99, 10**6, 10**10
    head = math.fsum(i**-s for i in range(1, m + 1))
    tail = (
        (n ** (1 - s) - m ** (1 - s)) / (1 - s)
        + (m**-s + n**-s) / 2
        + (-s * n ** (-s - 1) + s * m ** (-s - 1)) / 12
        - m**-s
    )
    assert head + tail == pytest.approx(G.SCRAMBLED_ZETAN, rel=1e-9)
    g = G.scrambled_state(0, 99)
    assert g[G.ZIPF_OFFSET[G.SCRAMBLED] + G.Z_ITEMS] == G.SCRAMBLED_ITEM_COUNT + 1


def test_scrambled_zipfian_hashes_the_popular_ranks_across_the_keyspace():
    lo, hi, draws = 100, 1099, 400_000
    sample = G.Generator(G.scrambled_state(lo, hi), seed=11).sample(draws)
    assert sample.min() >= lo and sample.max() <= hi
    counts = np.bincount(sample - lo, minlength=1000)
    hottest = lo + java_rem(fnvhash64(0), 1000)  # rank 0 lands on fnvhash64(0) % itemcount
    assert int(np.argmax(counts)) + lo == hottest
    assert counts[hottest - lo] >= draws / G.SCRAMBLED_ZETAN - SIGMAS * math.sqrt(draws * 0.04)
    # the second rank is hot too, and it is not next to the first (scrambled)
    second = lo + java_rem(fnvhash64(1), 1000)
    assert counts[second - lo] > 5 * draws / 1000


def test_latest_favours_recent_inserts_and_follows_the_counter():
    shared = G.new_shared()
    shared[G.S_ACK_LIMIT] = 999
    gen = G.Generator(G.latest_state(1000), seed=5, shared=shared)
    sample = gen.sample(200_000)
    assert sample.max() <= 999 and sample.min() >= 0
    recent = np.mean(sample >= 900)
    assert recent > 0.5  # the newest 10% of keys get most reads (uniform would give 0.1)
    assert np.bincount(sample).argmax() == 999
    shared[G.S_ACK_LIMIT] = 1999  # inserts acknowledged: the newest key is now 1999
    later = gen.sample(200_000)
    assert later.max() <= 1999 and np.bincount(later).argmax() == 1999
    assert np.mean(later >= 1900) > 0.5


def test_hotspot_sends_the_hot_fraction_of_operations_to_the_hot_set():
    draws = 300_000
    sample = G.Generator(G.hotspot_state(0, 999, 0.2, 0.8), seed=2).sample(draws)
    assert sample.min() >= 0 and sample.max() <= 999
    hot = int(np.sum(sample < 200))
    assert within(hot, draws, 0.8)
    assert not within(hot, draws, 0.7)
    # uniform inside each set
    assert within(int(np.sum(sample < 100)), draws, 0.4)


def test_exponential_puts_the_percentile_below_the_range():
    g = G.exponential_state(95.0, 1000 * 0.8571428571)
    sample = G.Generator(g, seed=9).sample(200_000)
    assert within(int(np.sum(sample < 857.1428571)), 200_000, 0.95)
    assert sample.min() >= 0


def test_uniform_covers_its_bounds_evenly():
    sample = G.Generator(G.uniform_state(5, 14), seed=4).sample(100_000)
    counts = np.bincount(sample - 5, minlength=10)
    assert sample.min() == 5 and sample.max() == 14
    assert all(within(int(c), 100_000, 0.1) for c in counts)


def test_sequential_and_constant():
    seq = G.Generator(G.sequential_state(3, 6), seed=0)
    assert seq.sample(9).tolist() == [3, 4, 5, 6, 3, 4, 5, 6, 3]
    assert G.Generator(G.constant_state(100)).sample(3).tolist() == [100, 100, 100]


def test_acknowledged_counter_advances_only_over_contiguous_acknowledgements():
    shared = G.new_shared()
    window = np.zeros(WINDOW_SIZE, dtype=np.uint8)
    shared[G.S_TXN_NEXT] = 100
    shared[G.S_ACK_LIMIT] = 99
    assert acknowledge(shared, window, 101)  # 100 still in flight
    assert last_value(shared) == 99
    assert acknowledge(shared, window, 102)
    assert last_value(shared) == 99
    assert acknowledge(shared, window, 100)  # the gap fills: 100..102 become visible
    assert last_value(shared) == 102
    assert window.sum() == 0
    # a slot taken by an unacknowledged key one window earlier: YCSB's overflow error
    assert acknowledge(shared, window, 104)
    assert not acknowledge(shared, window, 104 + WINDOW_SIZE)
