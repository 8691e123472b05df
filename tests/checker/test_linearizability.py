"""The linearizability checker on hand-made histories with known verdicts."""

from __future__ import annotations

from typing import Any

from gaia.checker.history import Operation
from gaia.checker.linearizability import KV, REGISTER, check, check_partition


def op(
    kind: str,
    value: Any,
    start: int,
    end: int | None,
    output: Any = None,
    outcome: str = "ok",
    key: str | None = "k",
    process: int = 0,
) -> Operation:
    return Operation(process, kind, key, value, output, start, end, outcome)  # type: ignore[arg-type]


def test_stale_read_after_acknowledged_write_is_illegal():
    history = [
        op("write", 1, 0, 1),
        op("write", 2, 2, 3),
        op("read", None, 4, 5, output=1),  # reads the overwritten value
    ]
    result = check(history, REGISTER)
    assert result.verdict == "illegal" and result.linearizable is False
    witness = result.witness
    assert witness is not None
    assert witness.blocked == history[2]
    assert [o.value for o in witness.prefix] == [1, 2] and witness.state == 2
    assert "cannot linearize" in result.summary()


def test_concurrent_history_is_linearizable_and_order_is_returned():
    history = [
        op("write", 1, 0, 10, process=0),
        op("read", None, 0, 3, output=None, process=1),  # before the write takes effect
        op("read", None, 1, 2, output=1, process=2),  # after it
        op("cas", (1, 7), 4, 12, process=3),
        op("cas", (1, 9), 5, 13, outcome="fail", process=4),  # compare failed: after the cas
        op("read", None, 14, 15, output=7, process=1),
    ]
    result = check(history, REGISTER)
    assert result.verdict == "ok", result.summary()
    order = result.partitions[0].order
    assert order.index(history[1]) < order.index(history[0]) < order.index(history[2])
    assert order.index(history[3]) < order.index(history[4])


def test_failed_cas_means_the_compare_failed():
    history = [op("write", 1, 0, 1), op("cas", (1, 2), 2, 3, outcome="fail")]
    assert check(history, REGISTER).verdict == "illegal"


def test_unknown_write_may_take_effect_late_but_only_once():
    late = [op("write", 5, 0, None, outcome="unknown"), op("read", None, 100, 101, output=5)]
    assert check(late, REGISTER).verdict == "ok"
    never = [op("write", 5, 0, None, outcome="unknown"), op("read", None, 100, 101, output=None)]
    assert check(never, REGISTER).verdict == "ok"
    undone = [*late, op("read", None, 102, 103, output=None)]
    assert check(undone, REGISTER).verdict == "illegal"


def test_unknown_read_and_failed_write_impose_nothing():
    history = [
        op("write", 1, 0, 1),
        op("read", None, 2, None, output=99, outcome="unknown"),
        op("write", 3, 4, 5, outcome="fail"),
        op("read", None, 6, 7, output=1),
    ]
    assert check(history, REGISTER).verdict == "ok"


def test_kv_model_partitions_per_key_and_stops_at_first_illegal_key():
    history = [
        op("put", "a", 0, 1, key="x"),
        op("append", "b", 2, 3, key="x"),
        op("get", None, 4, 5, output="ab", key="x"),
        op("append", "z", 0, 1, key="y"),
        op("get", None, 2, 3, output="", key="y"),  # lost append: illegal
        *[op("append", str(i), 2 * i, 2 * i + 1, key="big") for i in range(10)],
    ]
    result = check(history, KV)
    assert result.verdict == "illegal"
    assert [p.key for p in result.partitions] == ["y"]  # smallest first, then stop
    assert result.unchecked == 2
    assert result.witness is not None and result.witness.key == "y"


def test_budget_exhaustion_gives_unknown_not_a_verdict():
    # 14 concurrent writes and reads of values nobody wrote: illegal, but only after an
    # exhaustive search of 2^14 subsets; a zero budget must say "unknown".
    history = [op("write", i, 0, 100, process=i) for i in range(14)]
    history.append(op("read", None, 50, 60, output=-1, process=99))
    history += [op("read", None, 0, 100, output=i, process=200 + i) for i in range(14)]
    assert check_partition(history, None, deadline=0.0).verdict == "unknown"
    result = check(history, REGISTER, budget_s=0.0)
    assert result.verdict == "unknown" and result.linearizable is None
    assert "time budget" in result.summary()
    capped = check(history, REGISTER, budget_s=None, max_states=100)
    assert capped.verdict == "unknown" and capped.partitions[0].reason == "state cache full"


def test_empty_history_is_linearizable():
    assert check([], REGISTER).verdict == "ok"
