"""Linearizability checking of register and key-value histories.

The search is Wing & Gong's, with Lowe's memoisation, as Porcupine implements it (read for
understanding; this is our own code): walk the history's call/return events as a linked
list; at a call, try to linearize that op now (the model accepts it in the current state),
remove it from the list and restart from the head; at a return whose op is not yet
linearized, undo the last choice. A set of (linearized ops, state) pairs already explored
prunes the search: reaching the same set with the same state again cannot succeed where
it failed before. The linearized set is a Python int used as a bitmask.

Keys are independent (P-compositionality), so a history is split per key and each part
checked alone, smallest first, stopping at the first illegal one: a non-linearizable key
is usually found long before a large legal key would be exhausted.

Outcomes (see `history`): `fail` cas = the compare failed at its linearization point;
other failed ops had no effect and are dropped; `unknown` ops stay open until the end of
the history (an op that never took effect is equivalent to one taking effect after every
observation); an unknown read constrains nothing and is dropped.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from gaia.checker.history import READS, Operation

Verdict = Literal["ok", "illegal", "unknown"]


class _Illegal:
    """Sentinel: the model refuses this op in this state (None is a legal state)."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "ILLEGAL"


ILLEGAL: Any = _Illegal()
Step = Callable[[Any], Any]
_NEVER = float("inf")
_CLOCK_EVERY = 4096  # iterations between deadline checks
# Explored (linearized set, state) pairs kept per key before giving up with `unknown`:
# each costs ~150-250 bytes, so the default stays around 1 GiB at most.
MAX_STATES = 5_000_000


@dataclass(frozen=True)
class Model:
    """A sequential specification: a per-key initial state; ops compiled by `step_for`.

    `register`: read/write/cas on a value that starts as `None` (read nil is legal before
    any write). `kv`: get/put/append on strings that start as "". Both use the same step
    rules; only the initial state differs (append onto None appends onto "").
    """

    name: str
    initial: Any


REGISTER = Model("register", None)
KV = Model("kv", "")


def step_for(op: Operation) -> Step | None:
    """The op as a function state -> new state (or ILLEGAL); None = imposes nothing."""
    kind, outcome = op.kind, op.outcome
    if kind in READS:
        if outcome != "ok":
            return None
        expected = op.output
        return lambda s: s if s == expected else ILLEGAL
    if kind == "cas":
        old, new = op.value
        if outcome == "ok":
            return lambda s: new if s == old else ILLEGAL
        if outcome == "fail":
            return lambda s: s if s != old else ILLEGAL
        return lambda s: new if s == old else s
    if outcome == "fail":
        return None
    value = op.value
    if kind == "append":
        return lambda s: (s or "") + value
    return lambda s: value  # write / put


@dataclass
class Witness:
    """Why a partition is not linearizable: the longest linearizable prefix found, the
    state it leads to, and the op whose completion came before it could be linearized."""

    key: Any
    prefix: list[Operation]
    state: Any
    blocked: Operation
    pending: list[Operation]

    def describe(self, last: int = 5) -> str:
        head = f"key {self.key!r}: " if self.key is not None else ""
        shown = self.prefix[-last:]
        lines = [
            f"{head}longest linearizable prefix has {len(self.prefix)} ops, "
            f"ending in state {self.state!r}; last ones:"
        ]
        lines += [f"  {op.describe()}" for op in shown]
        lines.append(f"cannot linearize before it completes: {self.blocked.describe()}")
        if self.pending:
            lines.append("ops that could go next, none legal:")
            lines += [f"  {op.describe()}" for op in self.pending[:last]]
        return "\n".join(lines)


@dataclass
class PartitionResult:
    key: Any
    ops: int
    verdict: Verdict
    elapsed_s: float
    explored: int
    witness: Witness | None = None
    reason: str = ""  # why a verdict is unknown: "time budget" or "state cache full"
    order: list[Operation] = field(default_factory=list)  # a linearization when ok


@dataclass
class CheckResult:
    verdict: Verdict
    partitions: list[PartitionResult]
    elapsed_s: float
    unchecked: int = 0  # partitions skipped after the first illegal one

    @property
    def linearizable(self) -> bool | None:
        return {"ok": True, "illegal": False}.get(self.verdict)

    @property
    def witness(self) -> Witness | None:
        for part in self.partitions:
            if part.witness is not None:
                return part.witness
        return None

    def summary(self) -> str:
        counts = defaultdict(int)
        for part in self.partitions:
            counts[part.verdict] += 1
        parts = ", ".join(f"{n} {v}" for v, n in sorted(counts.items()))
        text = f"{self.verdict} in {self.elapsed_s:.3f} s ({parts}; {self.unchecked} unchecked)"
        for part in self.partitions:
            if part.verdict == "unknown":
                text += f"\nkey {part.key!r}: unknown ({part.reason}, {part.explored} states)"
        if self.witness is not None:
            text += "\n" + self.witness.describe()
        return text


def _event_list(ops: list[Operation]) -> tuple[list[int], list[int], list[int], list[int]]:
    """Sorted call/return events as a doubly linked list over node ids 1..2n (0 = head).

    Calls sort before returns at equal times (overlap is the permissive reading). Returns
    (next, prev, op_of_node, match) where match[call node] = its return node, -1 for returns.
    """
    events = []
    for i, op in enumerate(ops):
        events.append((op.invoke_ns, 0, i))
        end = _NEVER if op.complete_ns is None or op.outcome == "unknown" else op.complete_ns
        events.append((end, 1, i))
    events.sort()
    count = len(events)
    nxt = [*range(1, count + 1), -1]
    prv = [-1, *range(count)]
    op_of = [-1] * (count + 1)
    match = [-1] * (count + 1)
    return_node = {}
    for node, (_, is_return, i) in enumerate(events, start=1):
        op_of[node] = i
        if is_return:
            return_node[i] = node
    for node, (_, is_return, i) in enumerate(events, start=1):
        if not is_return:
            match[node] = return_node[i]
    return nxt, prv, op_of, match


def check_partition(
    ops: list[Operation],
    initial: Any,
    deadline: float,
    key: Any = None,
    max_states: int = MAX_STATES,
) -> PartitionResult:
    """Search one key's history for a linearization (or give up at `deadline`, or when
    `max_states` explored pairs are cached)."""
    started = time.monotonic()
    kept = [(op, step) for op in ops if (step := step_for(op)) is not None]
    ops = [op for op, _ in kept]
    steps = [step for _, step in kept]
    nxt, prv, op_of, match = _event_list(ops)

    state = initial
    bits = 0
    seen: set[tuple[int, Any]] = set()
    # (call node linearized, state before it, prefix before it as a cons list (op, rest))
    stack: list[tuple[int, Any, Any]] = []
    prefix: Any = None
    deepest: tuple[int, Any, Any, int] = (-1, None, None, 0)  # depth, prefix, state, node
    explored = 0
    node = nxt[0]
    clock = _CLOCK_EVERY
    while nxt[0] != -1:
        clock -= 1
        if not clock:
            clock = _CLOCK_EVERY
            reason = "time budget" if time.monotonic() > deadline else ""
            if explored > max_states:
                reason = "state cache full"
            if reason:
                elapsed = time.monotonic() - started
                return PartitionResult(key, len(ops), "unknown", elapsed, explored, reason=reason)
        ret = match[node]
        if ret != -1:  # a call: try to linearize its op here
            op = op_of[node]
            new_state = steps[op](state)
            if new_state is not ILLEGAL:
                new_bits = bits | (1 << op)
                memo = (new_bits, new_state)
                if memo not in seen:
                    seen.add(memo)
                    explored += 1
                    stack.append((node, state, prefix))
                    state, bits, prefix = new_state, new_bits, (op, prefix)
                    # lift the call and its return out of the list
                    before, after = prv[node], nxt[node]
                    nxt[before], prv[after] = after, before
                    before, after = prv[ret], nxt[ret]
                    nxt[before] = after
                    if after != -1:
                        prv[after] = before
                    node = nxt[0]
                    continue
            node = nxt[node]
            continue
        # a return whose op is not linearized: the last choice was wrong
        if len(stack) > deepest[0]:
            deepest = (len(stack), prefix, state, node)  # O(1): the prefix is shared
        if not stack:
            break
        node, state, prefix = stack.pop()
        bits ^= 1 << op_of[node]
        ret = match[node]
        before, after = prv[ret], nxt[ret]
        nxt[before] = ret
        if after != -1:
            prv[after] = ret
        nxt[prv[node]] = node
        prv[nxt[node]] = node
        node = nxt[node]
    elapsed = time.monotonic() - started
    if nxt[0] == -1:
        order = [ops[i] for i in _unwind(prefix)]
        return PartitionResult(key, len(ops), "ok", elapsed, explored, order=order)
    witness = _witness(ops, op_of, match, deepest, key)
    return PartitionResult(key, len(ops), "illegal", elapsed, explored, witness=witness)


def _unwind(prefix: Any) -> list[int]:
    """Op indices of a cons-list prefix, oldest first."""
    found = []
    while prefix is not None:
        op, prefix = prefix
        found.append(op)
    return found[::-1]


def _witness(
    ops: list[Operation],
    op_of: list[int],
    match: list[int],
    deepest: tuple[int, Any, Any, int],
    key: Any,
) -> Witness:
    """The deepest dead end: its prefix, state, the op whose return came too early, and
    the ops invoked before that return that were not in the prefix (none could go next)."""
    _, prefix, state, blocked_node = deepest
    linearized = _unwind(prefix)
    done = set(linearized)
    pending = [
        ops[op_of[n]] for n in range(1, blocked_node) if match[n] != -1 and op_of[n] not in done
    ]
    return Witness(
        key=key,
        prefix=[ops[i] for i in linearized],
        state=state,
        blocked=ops[op_of[blocked_node]],
        pending=pending,
    )


def partition_by_key(history: Iterable[Operation]) -> dict[Any, list[Operation]]:
    parts: dict[Any, list[Operation]] = defaultdict(list)
    for op in history:
        parts[op.key].append(op)
    return dict(parts)


def check(
    history: Iterable[Operation],
    model: Model = REGISTER,
    budget_s: float | None = 60.0,
    max_states: int = MAX_STATES,
) -> CheckResult:
    """Check a history: per key, smallest key first, stop at the first illegal key.

    Each key gets an even share of the time left (so one hard key cannot starve the
    others); a key that runs out of time makes the verdict `unknown` unless another key
    is illegal.
    """
    started = time.monotonic()
    end = _NEVER if budget_s is None else started + budget_s
    parts = sorted(partition_by_key(history).items(), key=lambda kv: (len(kv[1]), str(kv[0])))
    results: list[PartitionResult] = []
    for index, (key, ops) in enumerate(parts):
        now = time.monotonic()
        deadline = now + (end - now) / (len(parts) - index)
        result = check_partition(ops, model.initial, deadline, key, max_states)
        results.append(result)
        if result.verdict == "illegal":
            return CheckResult(
                "illegal", results, time.monotonic() - started, len(parts) - index - 1
            )
    verdict: Verdict = "unknown" if any(r.verdict == "unknown" for r in results) else "ok"
    return CheckResult(verdict, results, time.monotonic() - started)
