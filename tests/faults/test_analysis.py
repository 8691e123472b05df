"""The campaign's judgements on hand-made histories: lost acknowledged writes, failover
times, throughput — each rule shown to catch what it must and to pass what it must."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gaia.checker.history import Operation
from gaia.faults.analysis import (
    FaultSpan,
    election_ns,
    failovers,
    lost_writes,
    percentiles_ms,
    recovery_ns,
    throughput,
)


def op(kind, key, value, start, end, outcome="ok", output=None, process=0):
    return Operation(process, kind, key, value, output, start, end, outcome)


def test_the_last_acknowledged_write_survives():
    history = [op("write", "k", "a", 0, 10), op("write", "k", "b", 20, 30)]
    assert lost_writes(history, {"k": "b"}) == []


def test_a_value_older_than_an_acknowledged_write_loses_it():
    history = [op("write", "k", "a", 0, 10), op("write", "k", "b", 20, 30)]
    (lost,) = lost_writes(history, {"k": "a"}, "r1")
    assert lost.write.value == "b" and lost.replica == "r1" and "after" in lost.why


def test_concurrent_writes_may_end_either_way():
    history = [op("write", "k", "a", 0, 30), op("write", "k", "b", 10, 20)]
    assert lost_writes(history, {"k": "a"}) == []
    assert lost_writes(history, {"k": "b"}) == []


def test_an_empty_key_loses_every_acknowledged_write_but_not_unknown_ones():
    history = [op("write", "k", "a", 0, 10), op("write", "k", "b", 20, None, "unknown")]
    lost = lost_writes(history, {"k": None})
    assert [lw.write.value for lw in lost] == ["a"]


def test_a_value_nobody_wrote_is_reported():
    history = [op("write", "k", "a", 0, 10)]
    (lost,) = lost_writes(history, {"k": "zz"})
    assert "never written" in lost.why


def test_an_unknown_write_can_explain_the_final_value():
    """A timed-out write may have taken effect at any time: it can be the last one."""
    history = [op("write", "k", "a", 0, None, "unknown"), op("write", "k", "b", 20, 30)]
    assert lost_writes(history, {"k": "a"}) == []


def test_cas_counts_as_a_write_of_its_new_value_and_failed_ones_do_not():
    history = [op("write", "k", "a", 0, 10), op("cas", "k", ("a", "b"), 20, 30),
               op("cas", "k", ("x", "c"), 40, 50, "fail")]
    assert lost_writes(history, {"k": "b"}) == []
    (lost,) = lost_writes(history, {"k": "a"})
    assert lost.write.kind == "cas"


def test_keys_missing_from_the_final_read_are_not_judged():
    assert lost_writes([op("write", "k", "a", 0, 10)], {}) == []


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1000), st.integers(1, 50)), min_size=1, max_size=30))
def test_sequential_writes_lose_nothing_exactly_when_the_last_one_is_kept(spans):
    """Writes one after another (no overlap): only the last value keeps every write."""
    history, now = [], 0
    for i, (gap, length) in enumerate(spans):
        start = now + gap
        history.append(op("write", "k", f"v{i}", start, start + length))
        now = start + length + 1
    last = f"v{len(spans) - 1}"
    assert lost_writes(history, {"k": last}) == []
    for i in range(len(spans) - 1):
        lost = lost_writes(history, {"k": f"v{i}"})
        assert {lw.write.value for lw in lost} == {f"v{j}" for j in range(i + 1, len(spans))}


def test_recovery_ends_the_longest_stall_that_began_as_the_fault_landed():
    """The nemesis stamps the fault at 100; the kill lands a few ns later, so an op
    invoked at 101 still completes at 104; then nothing until the new leader at 400."""
    history = [op("write", "k", f"v{t}", t - 5, t) for t in range(10, 100, 10)]
    history += [op("write", "k", "late", 101, 104),
                op("read", "k", None, 102, None, "unknown"),
                op("write", "k", "b", 350, 400), op("read", "k", None, 401, 410),
                op("write", "k", "c", 150, 600, "fail")]
    assert recovery_ns(history, 100, landing_ns=50) == 300
    assert recovery_ns(history, 500, landing_ns=50) is None  # nothing completed since


def test_recovery_is_none_while_the_stall_lasts_and_small_without_one():
    stalled = [op("write", "k", "a", 0, 90), op("write", "k", "b", 95, 120)]
    assert recovery_ns(stalled, 100, landing_ns=50) is None
    steady = [op("write", "k", f"v{t}", t - 5, t) for t in range(10, 1000, 10)]
    assert recovery_ns(steady, 100, landing_ns=50) <= 10  # no stall: the normal pace


def test_failover_only_for_faults_that_took_the_leader():
    history = [op("write", "k", "a", 800, 850), op("write", "k", "a", 1_000, 1_500)]
    faults = [FaultSpan("kill", ("r1",), 900, 2_000, "r1"),
              FaultSpan("kill", ("r2",), 950, 2_000, "r1"),
              FaultSpan("loss", ("r1",), 960, 2_000, "r1"),
              FaultSpan("partition", ("r1",), 970, 2_000, "r1")]
    changes = [(800, "r1"), (1_100, None), (1_200, "r0")]
    found = failovers(history, faults, changes, landing_ns=50)
    assert [f.kind for f in found] == ["kill", "partition"]
    assert found[0].unavailable_ns == 600 and found[0].election_ns == 300


def test_election_ignores_the_old_leader_and_no_leader():
    fault = FaultSpan("pause", ("r1",), 100, 200, "r1")
    assert election_ns([(50, "r2"), (150, None), (160, "r1")], fault) is None
    assert election_ns([(150, None), (160, "r1"), (170, "r2")], fault) == 70


def test_throughput_counts_acknowledged_completions_per_bucket():
    history = [op("read", "k", None, 0, 5), op("read", "k", None, 0, 15),
               op("read", "k", None, 0, 16), op("read", "k", None, 0, 17, "fail"),
               op("read", "k", None, 0, None, "unknown"), op("read", "k", None, 0, 35)]
    assert throughput(history, 0, 30, 10) == [1, 2, 0]


def test_percentiles_skip_missing_samples():
    assert percentiles_ms([None]) == {"p50": None, "p99": None}
    got = percentiles_ms([1_000_000, 3_000_000, None])
    assert got["p50"] == 2.0 and 2.9 < got["p99"] <= 3.0
