"""Parsers for third-party histories with known verdicts (Jepsen etcd logs, EDN kv logs).

They let the checker be judged against histories someone else recorded and labelled.
Neither format has timestamps: the line number is the time, which keeps the real-time
order (an op invoked after another's completion line starts after it).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

from gaia.checker.history import READS, Operation, Outcome

_JEPSEN_LINE = re.compile(r"jepsen\.util\s+-\s+(\d+)\s+:(\w+)\s+:(\w+)\s+(.*?)\s*$")
_EDN_FIELD = re.compile(r':(\w+)\s+("(?:[^"\\]|\\.)*"|nil|:[\w-]+|-?\d+)')
_JEPSEN_OUTCOME: dict[str, Outcome] = {"ok": "ok", "fail": "fail", "info": "unknown"}


def _jepsen_value(text: str) -> Any:
    """`nil` -> None, `3` -> 3, `[3 0]` -> (3, 0), `:timed-out` -> the keyword string."""
    text = text.strip()
    if text == "nil":
        return None
    if text.startswith("[") and text.endswith("]"):
        return tuple(_jepsen_value(part) for part in text[1:-1].split())
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    return text


class _Pairing:
    """Pairs each process's invocation with its completion into Operations."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.ops: list[Operation] = []
        self.pending: dict[Any, tuple[str, str | None, Any, int]] = {}

    def event(self, lineno: int, process: Any, kind: str, f: str, key: Any, value: Any) -> None:
        """One log line; `value` is the input on invoke lines and the result on others."""
        if kind == "invoke":
            self.pending[process] = (f, key, None if f in READS else value, lineno)
        elif kind in _JEPSEN_OUTCOME:
            if process not in self.pending:
                raise ValueError(f"{self.path}:{lineno + 1}: completion without an invocation")
            output = value if f in READS and kind == "ok" else None
            self._close(process, _JEPSEN_OUTCOME[kind], output, lineno)
        else:
            raise ValueError(f"{self.path}:{lineno + 1}: unknown op type :{kind}")

    def _close(self, process: Any, outcome: Outcome, output: Any, time: int) -> None:
        f, key, value, invoked = self.pending.pop(process)
        complete = None if outcome == "unknown" else time
        self.ops.append(Operation(process, f, key, value, output, invoked, complete, outcome))

    def finish(self) -> list[Operation]:
        """The ops, with invocations never completed as unknown (open to the end)."""
        for process in list(self.pending):
            self._close(process, "unknown", None, 0)
        return self.ops


def parse_jepsen_log(path: Path) -> list[Operation]:
    """A Jepsen etcd register log (`INFO jepsen.util - P :type :f value` lines)."""
    pairing = _Pairing(path)
    for lineno, line in enumerate(Path(path).read_text().splitlines()):
        match = _JEPSEN_LINE.search(line)
        if match:
            value = _jepsen_value(match[4])
            pairing.event(lineno, int(match[1]), match[2], match[3], None, value)
    return pairing.finish()


def _edn_value(text: str) -> Any:
    if text == "nil":
        return None
    if text.startswith('"'):
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    if text.startswith(":"):
        return text[1:]
    return int(text)


def parse_edn_kv(path: Path) -> list[Operation]:
    """A key-value history of EDN maps `{:process P, :type :invoke|:ok|:fail|:info, ...}`."""
    pairing = _Pairing(path)
    for lineno, line in enumerate(Path(path).read_text().splitlines()):
        if not line.strip():
            continue
        fields = {name: _edn_value(raw) for name, raw in _EDN_FIELD.findall(line)}
        process, kind, f = fields.get("process"), fields.get("type"), fields.get("f")
        if process is None or kind is None or f is None:
            raise ValueError(f"{path}:{lineno + 1}: not an op map: {line.strip()!r}")
        pairing.event(lineno, process, kind, f, fields.get("key"), fields.get("value"))
    return pairing.finish()


def load_expected(csv_path: Path) -> dict[str, bool]:
    """`expected.csv` of the Jepsen set: log file name -> linearizable?"""
    with open(csv_path, newline="") as handle:
        return {row["log"]: row["linearizable"].strip() == "true" for row in csv.DictReader(handle)}
