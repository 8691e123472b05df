"""Recording every write a YCSB client issued, and proving afterwards that none was lost.

With `gaia.recordwrites=<file>` each binding appends one JSON line per insert/update it
attempted: `{"k": key, "op": "insert"|"update", "f": {field: xxh64 of the value},
"s": start_ns, "e": end_ns, "ok": acknowledged?, "c": client, "r": replace?}`. Times are
CLOCK_MONOTONIC, comparable across processes on one host. Lines are appended with single
`write()` calls on an O_APPEND descriptor, so threads and processes can share one file.

`check_writes` reads a replica back and classifies each (key, field) written:
  * a write is *superseded* when an acknowledged write to the same field started after it
    ended: real-time order says the later one must win;
  * the replica's value must equal one write that is not superseded (acknowledged or not:
    an unacknowledged write may or may not have been applied);
  * no value where some acknowledged write exists -> `missing` (a lost write); a value
    matching none of the admissible writes -> `stale`.
Bindings whose update replaces the whole record (YCSB's memcached binding) are checked per
record instead of per field (`"r": true`).
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import xxhash

FLUSH_LINES = 256


def value_hash(value: bytes | str) -> str:
    if isinstance(value, str):
        value = value.encode()
    return xxhash.xxh64_hexdigest(value)


class WriteRecorder:
    """Appends write records to a JSON-lines file (thread- and process-safe appends)."""

    def __init__(self, path: str | Path, client: int = 0):
        self.path = Path(path)
        self.client = client
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def record(
        self,
        key: str,
        op: str,
        values: Mapping[str, bytes],
        start_ns: int,
        end_ns: int,
        ok: bool,
        replaces: bool,
    ) -> None:
        line = json.dumps(
            {
                "k": key,
                "op": op,
                "f": {f: value_hash(v) for f, v in values.items()},
                "s": start_ns,
                "e": end_ns,
                "ok": ok,
                "c": self.client,
                "r": replaces,
            },
            separators=(",", ":"),
        )
        with self._lock:
            self._lines.append(line)
            if len(self._lines) >= FLUSH_LINES:
                self._flush_locked()

    def _flush_locked(self) -> None:
        if self._lines:
            data = ("\n".join(self._lines) + "\n").encode()
            self._lines.clear()
            os.write(self._fd, data)

    def flush(self) -> None:
        with self._lock:
            self._flush_locked()

    def close(self) -> None:
        self.flush()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


@dataclass
class WriteRecord:
    key: str
    op: str
    fields: dict[str, str]
    start: int
    end: int
    ok: bool
    replaces: bool

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WriteRecord:
        return cls(
            data["k"], data["op"], data["f"], data["s"], data["e"], data["ok"], data.get("r", False)
        )


def read_recording(paths: Path | str | Iterable[Path | str]) -> list[WriteRecord]:
    if isinstance(paths, (str, Path)):
        paths = [paths]
    records = []
    for path in paths:
        with open(path) as handle:
            for line in handle:
                if line.strip():
                    records.append(WriteRecord.from_json(json.loads(line)))
    return records


@dataclass
class WriteCheck:
    """The verdict: keys checked, and the writes a replica lost or shows out of date."""

    checked_keys: int = 0
    acknowledged: int = 0
    missing: list[dict[str, Any]] = field(default_factory=list)
    stale: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.missing and not self.stale

    def summary(self) -> str:
        return (
            f"{self.checked_keys} keys, {self.acknowledged} acknowledged writes: "
            f"{len(self.missing)} missing, {len(self.stale)} stale"
        )


def admissible(writes: list[WriteRecord]) -> list[WriteRecord]:
    """The writes whose value may legitimately be the current one (not superseded)."""
    acked_starts = sorted(w.start for w in writes if w.ok)
    latest_start = acked_starts[-1] if acked_starts else None
    return [w for w in writes if latest_start is None or latest_start <= w.end]


def _check_fields(
    key: str, writes: list[WriteRecord], current: Mapping[str, str], report: WriteCheck
) -> None:
    by_field: dict[str, list[WriteRecord]] = {}
    for w in writes:
        for name in w.fields:
            by_field.setdefault(name, []).append(w)
    for name, field_writes in by_field.items():
        acked = [w for w in field_writes if w.ok]
        if not acked:
            continue
        ok_hashes = {w.fields[name] for w in admissible(field_writes)}
        value = current.get(name)
        if value is None:
            report.missing.append({"key": key, "field": name, "expected": sorted(ok_hashes)})
        elif value not in ok_hashes:
            report.stale.append(
                {"key": key, "field": name, "found": value, "expected": sorted(ok_hashes)}
            )


def _check_record(
    key: str, writes: list[WriteRecord], current: Mapping[str, str], report: WriteCheck
) -> None:
    if not any(w.ok for w in writes):
        return
    candidates = admissible(writes)
    if not current:
        report.missing.append(
            {"key": key, "field": None, "expected": [w.fields for w in candidates]}
        )
    elif all(dict(current) != w.fields for w in candidates):
        report.stale.append(
            {
                "key": key,
                "field": None,
                "found": dict(current),
                "expected": [w.fields for w in candidates],
            }
        )


def check_writes(
    recording: Path | str | Iterable[Path | str], target: Any, table: str = "usertable"
) -> WriteCheck:
    """Read every recorded key back from `target` and report missing/stale writes.

    `target` is a connected binding (workloads.bindings.DB) or an `apps.base.Server`
    (a binding for the server's app is opened on its port)."""
    from workloads.bindings import binding_for_target

    db, owned = binding_for_target(target)
    try:
        return check_against(read_recording(recording), db, table)
    finally:
        if owned:
            db.cleanup()


def check_against(records: list[WriteRecord], db: Any, table: str) -> WriteCheck:
    report = WriteCheck()
    by_key: dict[str, list[WriteRecord]] = {}
    for w in records:
        by_key.setdefault(w.key, []).append(w)
        report.acknowledged += int(w.ok)
    for key, writes in by_key.items():
        report.checked_keys += 1
        _, cells = db.read(table, key, None)
        current = {name: value_hash(v) for name, v in cells.items() if v is not None}
        if any(w.replaces for w in writes):
            # the last whole-record write decides; earlier field writes were replaced
            _check_record(key, writes, current, report)
        else:
            _check_fields(key, writes, current, report)
    return report
