"""A guard's checkpoints on disk: one directory per checkpoint and an atomic manifest.

Why a manifest: a checkpoint is only usable if its snapshot is complete and unchanged,
and a crash can strike while one is written. So a snapshot is written into a staging
directory, checksummed, renamed into place, and only then listed in manifest.json
(written to a temp file, fsynced, renamed): whatever the manifest lists was complete when
listed, and the checksum and size it records detect later corruption or loss.

Layout of the store's root:
  manifest.json          {"version": 1, "checkpoints": [record, ...]} (oldest first)
  ckpt-<index>/          the app's snapshot (a file, or a directory for MariaDB)
  .staging-<index>-<id>/ a checkpoint being written or received (removed at open)
A record says: log index, app, state digest at that index, the snapshot's path inside
the checkpoint directory, size, checksum (xxh3-128 over relative paths, sizes and bytes
of every file), the times taken, the replica it came from and the sessions open then.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from dataclasses import fields as dataclass_fields
from pathlib import Path

import xxhash

from gaia.errors import GaiaError
from gaia.fsutil import write_atomically
from gaia.intercept.guard_session import Session

MANIFEST = "manifest.json"
VERSION = 1
_CHUNK = 1 << 20


@dataclass(frozen=True)
class Checkpoint:
    index: int  # every log entry up to this one is in the snapshot, none after
    app: str
    snapshot: str  # path of what the app's snapshot() returned, inside the directory
    digest: str = ""  # the server's state digest at `index` ("" if not taken)
    size: int = 0
    checksum: str = ""
    pause_s: float = 0.0  # the replica stood still this long (quiesce + digest + snapshot)
    digest_s: float = 0.0  # the state digest alone
    snapshot_s: float = 0.0  # the app's snapshot() alone
    total_s: float = 0.0  # pause + checksum + manifest
    taken_at: float = 0.0  # unix time
    source: str = ""  # the replica it was taken on
    sessions: tuple[Session, ...] = field(default_factory=tuple)

    @property
    def dirname(self) -> str:
        return f"ckpt-{self.index:012d}"

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["sessions"] = [s.to_json() for s in self.sessions]
        return data

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Checkpoint:
        known = {f.name for f in dataclass_fields(cls)}  # a newer guard may add fields
        values = {k: v for k, v in data.items() if k in known}
        values["sessions"] = tuple(Session.from_json(s) for s in values.get("sessions", ()))
        return cls(**values)


class CheckpointError(GaiaError):
    """No usable checkpoint, or one that is not what its record says."""


def tree_files(path: Path) -> Iterator[tuple[str, Path]]:
    """(relative name, path) of every regular file under `path` (or `path` itself),
    sorted, so two copies of one snapshot list the same names."""
    if path.is_file():
        yield path.name, path
        return
    for root, dirs, files in os.walk(path):
        dirs.sort()
        for name in sorted(files):
            full = Path(root) / name
            if full.is_file() and not full.is_symlink():
                yield str(full.relative_to(path)), full


def tree_checksum(path: Path) -> tuple[str, int]:
    """(xxh3-128 hex over names, sizes and bytes, total bytes) of a file or directory."""
    hasher = xxhash.xxh3_128()
    total = 0
    for name, full in tree_files(path):
        size = full.stat().st_size
        hasher.update(f"{name}\0{size}\0".encode())
        with open(full, "rb") as src:
            while chunk := src.read(_CHUNK):
                hasher.update(chunk)
        total += size
    return hasher.hexdigest(), total


class CheckpointStore:
    """The checkpoints of one replica's guard under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        for stale in self.root.glob(".staging-*"):
            shutil.rmtree(stale, ignore_errors=True)

    # -- reading -------------------------------------------------------------------------
    def records(self) -> list[Checkpoint]:
        """Every listed checkpoint, oldest first (usable or not)."""
        path = self.root / MANIFEST
        if not path.exists():
            return []
        try:
            data = json.loads(path.read_text())
            return sorted((Checkpoint.from_json(r) for r in data["checkpoints"]),
                          key=lambda c: c.index)
        except (ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"checkpoint manifest {path} is unreadable ({exc})",
                                  "remove the store directory and take a new checkpoint"
                                  ) from None

    def newest(self) -> Checkpoint | None:
        records = self.records()
        return records[-1] if records else None

    def directory(self, ck: Checkpoint) -> Path:
        return self.root / ck.dirname

    def snapshot_path(self, ck: Checkpoint) -> Path:
        return self.directory(ck) / ck.snapshot

    def problem(self, ck: Checkpoint) -> str | None:
        """Why `ck` cannot be used (missing, wrong size, wrong checksum), or None."""
        where = self.snapshot_path(ck)
        if not where.exists():
            return f"checkpoint {ck.index}: snapshot {where} is missing"
        checksum, size = tree_checksum(where)
        if size != ck.size:
            return f"checkpoint {ck.index}: {size} bytes on disk, {ck.size} recorded"
        if checksum != ck.checksum:
            return f"checkpoint {ck.index}: checksum {checksum} != recorded {ck.checksum}"
        return None

    def usable(self, min_index: int = 0) -> tuple[list[Checkpoint], list[str]]:
        """(checkpoints at >= min_index that pass their checks, newest first; the
        problems of those that do not)."""
        good, problems = [], []
        for ck in reversed(self.records()):
            if ck.index < min_index:
                problems.append(f"checkpoint {ck.index}: older than the log's start "
                                f"(needs entries from {ck.index + 1}, log starts at "
                                f"{min_index + 1})")
                continue
            trouble = self.problem(ck)
            if trouble is None:
                good.append(ck)
            else:
                problems.append(trouble)
        return good, problems

    # -- writing -------------------------------------------------------------------------
    def staging(self, index: int) -> Path:
        """A fresh directory to write checkpoint `index` into (then commit() it)."""
        path = self.root / f".staging-{index:012d}-{uuid.uuid4().hex[:8]}"
        path.mkdir()
        return path

    def commit(self, staging: Path, record: Checkpoint) -> Checkpoint:
        """Checksum what `staging` holds, move it into place and list it. A record that
        arrives with a checksum (a transfer) must match it."""
        started = time.monotonic()
        checksum, size = tree_checksum(staging / record.snapshot)
        if record.checksum and (checksum, size) != (record.checksum, record.size):
            shutil.rmtree(staging, ignore_errors=True)
            raise CheckpointError(
                f"checkpoint {record.index} arrived damaged ({size} bytes, checksum "
                f"{checksum}; expected {record.size} bytes, {record.checksum})",
                "fetch it again; check the sending guard's store")
        if not record.checksum:
            record = replace(record, checksum=checksum, size=size,
                             total_s=record.total_s + time.monotonic() - started)
        final = self.directory(record)
        if final.exists():
            shutil.rmtree(final)
        os.rename(staging, final)
        others = [r for r in self.records() if r.index != record.index]
        self._write([*others, record])
        return record

    def prune(self, keep: int) -> list[Checkpoint]:
        """Keep the `keep` newest checkpoints; remove the rest (listing first, then
        files, so a crash in between leaves only unlisted files)."""
        records = self.records()
        dropped = records[:-keep] if len(records) > keep else []
        if dropped:
            self._write(records[len(dropped):])
            for ck in dropped:
                shutil.rmtree(self.directory(ck), ignore_errors=True)
        return dropped

    def _write(self, records: list[Checkpoint]) -> None:
        body = {"version": VERSION, "checkpoints": [r.to_json() for r in records]}
        write_atomically(self.root / MANIFEST, json.dumps(body, indent=1))
