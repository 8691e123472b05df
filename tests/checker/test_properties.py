"""Properties: real sequential executions are linearizable; a forged read is not.

A history is built from a sequential run of the model: op i takes effect at time 10*i,
and gets a random interval around that point (so ops overlap at random) and sometimes an
unknown outcome. By construction a linearization exists; the checker must find it.
Replacing one read's result by a value nobody wrote must make it illegal.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from gaia.checker.history import Operation
from gaia.checker.linearizability import KV, REGISTER, Model, check

FORGED = {"register": -1, "kv": "#"}  # never written: values are 0..3 / letters


@st.composite
def sequential_history(draw: st.DrawFn, model: Model) -> list[Operation]:
    keys = ["a", "b"] if model is KV else ["r"]
    kinds = ["get", "put", "append"] if model is KV else ["read", "write", "cas"]
    states = dict.fromkeys(keys, model.initial)
    ops = []
    for i in range(draw(st.integers(1, 25))):
        key = draw(st.sampled_from(keys))
        kind = draw(st.sampled_from(kinds))
        state = states[key]
        point = 10 * i
        start = point - draw(st.integers(0, 45))
        end: int | None = point + draw(st.integers(0, 45))
        outcome = "ok"
        value: Any = None
        output: Any = None
        if kind in ("read", "get"):
            output = state
        elif kind == "cas":
            old, new = draw(st.integers(0, 3)), draw(st.integers(0, 3))
            value = (old, new)
            if state == old:
                states[key] = new
            else:
                outcome = "fail"
        else:
            value = draw(st.sampled_from("xyz")) if model is KV else draw(st.integers(0, 3))
            states[key] = value if kind in ("write", "put") else state + value
        if draw(st.integers(0, 9)) == 0 and outcome == "ok" and kind not in ("read", "get"):
            outcome, end = "unknown", None  # the reply was lost, the effect happened
        ops.append(
            Operation(draw(st.integers(0, 4)), kind, key, value, output, start, end, outcome)
        )
    return ops


def _forge_one_read(ops: list[Operation], index: int, model: Model) -> list[Operation] | None:
    reads = [i for i, o in enumerate(ops) if o.kind in ("read", "get") and o.outcome == "ok"]
    if not reads:
        return None
    target = reads[index % len(reads)]
    forged = list(ops)
    forged[target] = replace(ops[target], output=FORGED[model.name])
    return forged


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from([REGISTER, KV]).flatmap(lambda m: st.tuples(st.just(m), sequential_history(m)))
)
def test_sequential_execution_is_linearizable(case: tuple[Model, list[Operation]]):
    model, ops = case
    result = check(ops, model, budget_s=None)
    assert result.verdict == "ok", result.summary()


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from([REGISTER, KV]).flatmap(lambda m: st.tuples(st.just(m), sequential_history(m))),
    st.integers(0, 100),
)
def test_read_of_a_value_never_written_is_illegal(case: tuple[Model, list[Operation]], index: int):
    model, ops = case
    forged = _forge_one_read(ops, index, model)
    assume(forged is not None)
    result = check(forged, model, budget_s=None)
    assert result.verdict == "illegal", result.summary()
    assert result.witness is not None
    # the forged read can never be linearized, so no linearizable prefix holds it
    assert all(o.output != FORGED[model.name] for o in result.witness.prefix)
