"""Recording client operations: what was asked, what came back, when, and how it ended.

A linearizability verdict is only as good as the history behind it. Every operation gets
its invocation and completion times from one monotonic clock and an honest outcome:

- `ok`: completed, its output is known;
- `fail`: completed and certainly without effect (for `cas`: the compare failed);
- `unknown`: the reply never came (timeout, connection lost). The operation may or may not
  have taken effect, at any moment after its invocation: the checker keeps it open until
  the end of the history (`complete_ns` stays None).

Histories persist as JSON lines, one operation per line, so a crashed campaign still
leaves everything recorded up to the crash readable.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

Outcome = Literal["ok", "fail", "unknown"]
OUTCOMES: frozenset[str] = frozenset({"ok", "fail", "unknown"})
# Op kinds. read/get and write/put are synonyms (register vs key-value vocabulary).
KINDS: frozenset[str] = frozenset({"read", "get", "write", "put", "cas", "append"})
READS: frozenset[str] = frozenset({"read", "get"})


@dataclass(frozen=True, slots=True)
class Operation:
    """One client operation. `value` is the input (cas: `(old, new)`), `output` the reply."""

    process: int | str
    kind: str
    key: str | None
    value: Any
    output: Any
    invoke_ns: int
    complete_ns: int | None
    outcome: Outcome

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown op kind {self.kind!r} (expected one of {sorted(KINDS)})")
        if self.outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {self.outcome!r}")
        if self.kind == "cas" and not (isinstance(self.value, tuple) and len(self.value) == 2):
            raise ValueError(f"cas input must be an (old, new) tuple, got {self.value!r}")
        if self.complete_ns is not None and self.complete_ns < self.invoke_ns:
            raise ValueError(f"op completes ({self.complete_ns}) before it is invoked")

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, line: str) -> Operation:
        fields = json.loads(line)
        if fields["kind"] == "cas":
            fields["value"] = tuple(fields["value"])
        return cls(**fields)

    def describe(self) -> str:
        """Short human form, e.g. `p3 cas k [1 2] -> ok @[10, 14]`."""
        end = "…" if self.complete_ns is None else self.complete_ns
        key = "" if self.key is None else f" {self.key}"
        arg = "" if self.kind in READS else f" {self.value!r}"
        out = f" = {self.output!r}" if self.kind in READS and self.outcome == "ok" else ""
        return f"p{self.process} {self.kind}{key}{arg}{out} -> {self.outcome} @[{self.invoke_ns}, {end}]"


class PendingOp:
    """An invoked operation waiting for its outcome (see `Recorder.op`)."""

    __slots__ = ("done", "op_id", "recorder")

    def __init__(self, recorder: Recorder, op_id: int) -> None:
        self.recorder = recorder
        self.op_id = op_id
        self.done = False

    def ok(self, output: Any = None) -> None:
        self.recorder.complete(self.op_id, "ok", output)
        self.done = True

    def fail(self) -> None:
        self.recorder.complete(self.op_id, "fail")
        self.done = True

    def unknown(self) -> None:
        self.recorder.complete(self.op_id, "unknown")
        self.done = True


class Recorder:
    """Thread-safe recorder shared by all client threads of a run."""

    def __init__(self, clock: Callable[[], int] = time.monotonic_ns) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._invoked: list[tuple[int | str, str, str | None, Any, int]] = []
        self._completed: dict[int, tuple[Outcome, Any, int | None]] = {}

    def invoke(
        self, process: int | str, kind: str, key: str | None = None, value: Any = None
    ) -> int:
        """Record an invocation now; returns the id to pass to `complete`."""
        if kind not in KINDS:
            raise ValueError(f"unknown op kind {kind!r}")
        with self._lock:
            self._invoked.append((process, kind, key, value, self._clock()))
            return len(self._invoked) - 1

    def complete(self, op_id: int, outcome: Outcome, output: Any = None) -> None:
        """Record the outcome of an invoked op (unknown ops get no completion time)."""
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown outcome {outcome!r}")
        now = None if outcome == "unknown" else self._clock()
        with self._lock:
            if op_id in self._completed:
                raise ValueError(f"operation {op_id} already completed")
            self._completed[op_id] = (outcome, output, now)

    @contextmanager
    def op(
        self, process: int | str, kind: str, key: str | None = None, value: Any = None
    ) -> Iterator[PendingOp]:
        """Record one operation around the client call.

        The body calls `.ok(output)` or `.fail()`. If it raises before that (timeout,
        lost connection, anything), the op is `unknown`: the request may have reached the
        server. The exception propagates. Leaving the body without a verdict is a bug.
        """
        pending = PendingOp(self, self.invoke(process, kind, key, value))
        try:
            yield pending
        except BaseException:
            if not pending.done:
                pending.unknown()
            raise
        if not pending.done:
            pending.unknown()
            raise RuntimeError("Recorder.op body ended without calling ok(), fail() or unknown()")

    def __len__(self) -> int:
        with self._lock:
            return len(self._invoked)

    def history(self) -> list[Operation]:
        """Every op so far, in invocation order; ops still in flight count as unknown."""
        with self._lock:
            invoked = list(self._invoked)
            completed = dict(self._completed)
        ops = []
        for op_id, (process, kind, key, value, invoke_ns) in enumerate(invoked):
            outcome, output, complete_ns = completed.get(op_id, ("unknown", None, None))
            if kind == "cas":
                value = tuple(value)
            ops.append(
                Operation(process, kind, key, value, output, invoke_ns, complete_ns, outcome)
            )
        return ops

    def save(self, path: Path) -> Path:
        return save_history(self.history(), path)


def save_history(ops: Iterable[Operation], path: Path) -> Path:
    """Write ops as JSON lines (atomically: a reader never sees half a file)."""
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text("".join(op.to_json() + "\n" for op in ops))
    tmp.replace(path)
    return path


def load_history(path: Path) -> list[Operation]:
    lines = Path(path).read_text().splitlines()
    return [Operation.from_json(line) for line in lines if line.strip()]
