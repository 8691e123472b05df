"""The regression decision: factor AND significance, rates read upwards, missing reported."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gaia.bench.asvresults import Measurement, parse_result_doc, pool_runs
from gaia.bench.regression import Status, compare, judge, mann_whitney_p
from tests.bench.asvdata import BENCHMARKS, result_doc, time_row, track_row

LOOP = "bench_pollloop.PingPongThreads.time_round_trips"
P50 = "bench_apus.ApusConsensus.track_p50"
OPS = "bench_apus.ApusConsensus.track_throughput"

# Twenty timings of a ~4 ms loop with the spread a busy 2-core machine gives.
BASE = [0.0040 + 0.0001 * ((i * 7) % 11) for i in range(20)]


def measured(rows: dict) -> dict[str, Measurement]:
    return parse_result_doc(result_doc("c" * 40, rows), BENCHMARKS)


def scaled(samples: list[float], factor: float) -> list[float]:
    return [s * factor for s in samples]


def test_slowed_loop_is_flagged_with_a_significant_p_value():
    before = measured({LOOP: time_row(BASE)})
    after = measured({LOOP: time_row(scaled(BASE, 2.0))})
    [v] = compare(before, after, factor=1.4)
    assert v.status is Status.REGRESSED and v.failing
    assert v.ratio == pytest.approx(2.0)
    assert v.p_value is not None and v.p_value < 1e-6


def test_shift_within_the_factor_is_not_flagged_even_when_significant():
    before = measured({LOOP: time_row(BASE)})
    after = measured({LOOP: time_row(scaled(BASE, 1.25))})
    [v] = compare(before, after, factor=1.4)
    assert v.p_value is not None and v.p_value < 0.01  # real, but small
    assert v.status is Status.WITHIN_FACTOR and not v.failing


def test_large_ratio_without_significance_is_not_flagged():
    # Bimodal noise (some samples hit by preemption): medians 1.6x apart, samples overlap.
    noisy = [1.0, 1.1, 0.9, 1.05, 3.0, 0.95, 2.8, 1.02]
    before = measured({LOOP: time_row(noisy)})
    after = measured({LOOP: time_row(scaled(noisy, 1.6))})
    [v] = compare(before, after, factor=1.4, alpha=0.01)
    assert v.ratio > 1.4 and v.p_value >= 0.01
    assert v.status is Status.NOT_SIGNIFICANT and not v.failing


def test_same_commit_measured_twice_passes():
    jitter = [s * (1 + 0.05 * ((i * 3) % 5 - 2)) for i, s in enumerate(BASE)]
    verdicts = compare(measured({LOOP: time_row(BASE)}), measured({LOOP: time_row(jitter)}))
    assert [v.failing for v in verdicts] == [False]


def test_faster_code_is_an_improvement_not_a_failure():
    [v] = compare(measured({LOOP: time_row(BASE)}), measured({LOOP: time_row(scaled(BASE, 0.4))}))
    assert v.status is Status.IMPROVED and not v.failing


def test_track_without_samples_is_judged_by_the_factor_alone():
    [v] = compare(measured({P50: track_row(3.0)}), measured({P50: track_row(6.5)}))
    assert not v.tested and v.status is Status.REGRESSED
    [v] = compare(measured({P50: track_row(3.0)}), measured({P50: track_row(3.9)}))
    assert v.status is Status.WITHIN_FACTOR


def test_throughput_is_better_upwards():
    [drop] = compare(measured({OPS: track_row(100_000)}), measured({OPS: track_row(40_000)}))
    [rise] = compare(measured({OPS: track_row(100_000)}), measured({OPS: track_row(250_000)}))
    assert drop.status is Status.REGRESSED
    assert rise.status is Status.IMPROVED


def test_missing_benchmarks_are_reported_on_the_right_side_without_failing():
    before = measured({LOOP: time_row(BASE), P50: track_row(3.0)})
    after = measured({LOOP: time_row(BASE), OPS: track_row(1000.0)})
    by_name = {v.name: v for v in compare(before, after)}
    assert by_name[P50].status is Status.ONLY_BEFORE
    assert by_name[OPS].status is Status.ONLY_AFTER
    assert not any(v.failing for v in by_name.values())


def test_a_benchmark_that_stops_working_fails_and_skipped_on_both_sides_does_not():
    [broken] = compare(measured({P50: track_row(3.0)}), measured({P50: track_row(None)}))
    [skipped] = compare(measured({P50: track_row(None)}), measured({P50: track_row(None)}))
    [fixed] = compare(measured({P50: track_row(None)}), measured({P50: track_row(3.0)}))
    assert broken.status is Status.BROKEN and broken.failing
    assert skipped.status is Status.SKIPPED and not skipped.failing
    assert fixed.status is Status.FIXED and not fixed.failing


def pooled_p50(values: tuple[float, ...]) -> Measurement:
    return pool_runs([measured({P50: track_row(v)}) for v in values])[P50]


def test_pooled_rounds_give_track_benchmarks_a_significance_test():
    a = pooled_p50((3.0, 3.1, 2.9, 3.05, 3.2))
    assert a.samples == (3.0, 3.1, 2.9, 3.05, 3.2) and a.value == 3.05
    v = judge(a, pooled_p50((6.0, 6.2, 5.9, 6.1, 6.3)), alpha=0.01)
    assert v.p_value == pytest.approx(2 / 252)  # 5 vs 5, fully separated, exact
    assert v.tested and v.status is Status.REGRESSED
    overlapping = judge(a, pooled_p50((6.0, 2.0, 6.1, 1.9, 6.3)), alpha=0.01)
    assert overlapping.ratio > 1.4 and overlapping.status is Status.NOT_SIGNIFICANT


def test_too_few_samples_for_the_test_fall_back_to_the_factor():
    # 4 against 4 can never reach p < 0.01: complete separation by the factor decides.
    v = judge(pooled_p50((3.0, 3.1, 2.9, 3.05)), pooled_p50((6.0, 6.2, 5.9, 6.1)), alpha=0.01)
    assert not v.tested and v.p_value == pytest.approx(2 / 70)
    assert v.status is Status.REGRESSED


def test_pooled_time_benchmarks_observe_one_median_per_round():
    rounds = [measured({LOOP: time_row(scaled(BASE, f))}) for f in (1.0, 3.0, 1.1)]
    pooled = pool_runs(rounds)[LOOP]
    medians = [r[LOOP].value for r in rounds]
    assert pooled.samples == tuple(medians) and pooled.value == sorted(medians)[1]


def test_load_shift_between_two_rounds_is_not_a_regression():
    # Raw samples of each round are tight, so a test on them would call a 1.8x load
    # shift between rounds "significant"; per-round observations do not.
    a = pool_runs([measured({LOOP: time_row(BASE)}), measured({LOOP: time_row(scaled(BASE, 1.8))})])
    b = pool_runs([measured({LOOP: time_row(scaled(BASE, 1.8))}), measured({LOOP: time_row(BASE)})])
    [v] = compare(a, b)
    assert not v.failing


def test_a_failed_round_marks_the_pooled_benchmark_failed():
    pooled = pool_runs([measured({P50: track_row(3.0)}), measured({P50: track_row(None)})])
    assert pooled[P50].value is None


def test_factor_must_exceed_one():
    with pytest.raises(ValueError, match="factor"):
        compare({}, {}, factor=1.0)


def test_exact_mann_whitney_values():
    assert mann_whitney_p([1, 2, 3, 4], [5, 6, 7, 8]) == pytest.approx(2 / 70)
    assert mann_whitney_p([1, 2, 3], [4, 5, 6]) == pytest.approx(0.1)
    assert mann_whitney_p([1, 3, 5], [2, 4, 6]) == pytest.approx(0.7)
    assert mann_whitney_p([2.0] * 5, [2.0] * 5) == 1.0


def test_ties_within_each_side_keep_the_exact_p_of_complete_separation():
    # A clock with 10 ns steps repeats values; 5 vs 5 fully apart is still 2/252.
    assert mann_whitney_p([140.0, 140.0, 150.0, 160.0, 160.0], [2203.0] * 5) == pytest.approx(
        2 / 252
    )
    # Ties across the sides weaken the evidence.
    assert mann_whitney_p([1.0, 1.0, 2.0], [2.0, 3.0, 3.0]) > mann_whitney_p([1, 1, 2], [3, 3, 4])


# Integers: an affine map of floats can merge neighbours into ties and change the test.
samples = st.lists(st.integers(1, 1000).map(float), min_size=1, max_size=25)


@given(samples, samples)
def test_mann_whitney_is_a_symmetric_probability(a, b):
    p = mann_whitney_p(a, b)
    assert 0.0 <= p <= 1.0
    assert p == pytest.approx(mann_whitney_p(b, a))


@given(samples, samples)
def test_mann_whitney_depends_only_on_order(a, b):
    transform = [x * 3 + 7 for x in a], [x * 3 + 7 for x in b]
    assert mann_whitney_p(a, b) == pytest.approx(mann_whitney_p(*transform))


def test_untestable_samples_must_be_apart_by_the_factor():
    # Two rounds each: medians 1.9x apart, but one B round as fast as an A round.
    v = judge(pooled_p50((3.0, 3.2)), pooled_p50((3.3, 8.0)), factor=1.4)
    assert not v.tested and v.ratio > 1.4
    assert v.status is Status.NOT_SIGNIFICANT and not v.failing
    v = judge(pooled_p50((3.0, 3.2)), pooled_p50((5.0, 5.5)), factor=1.4)
    assert v.status is Status.REGRESSED
    v = judge(pooled_p50((5.0, 5.5)), pooled_p50((3.0, 3.2)), factor=1.4)
    assert v.status is Status.IMPROVED
