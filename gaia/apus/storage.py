"""Durable state of a replica: the log file, the hard state and the snapshot.

Modes (DESIGN.md, "Durability modes"):
  memory  nothing on disk; a committed entry survives as long as a majority keeps it in
          RAM. A replica restarted without state rejoins through the recovery protocol.
  fsync   every entry is appended to the log file and fdatasync'ed (group commit: one
          sync per batch) before it is acknowledged; view promises before they are sent.

The hot loop appends through `dur_append` / `dur_sync` (njit; pwrite/fdatasync are called
from numba, so no Python runs per entry). Everything else (hard state, snapshots,
truncation, recovery) is slow path. Recovery scans the log file record by record
(wire.py entry format, checksum + canary), keeps the valid prefix and cuts the rest with
a clear message; a bad record followed by valid ones means corruption, not a torn tail,
and the replica must then treat its state as lost.

`SimStorage` is the simulator's disk: the same numba functions, with a byte array
instead of a file, and a crash that keeps only the synced bytes (plus, optionally, a
torn piece of the unsynced tail).
"""

from __future__ import annotations

import json
import os
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numba import njit, types

from gaia.apus import wire
from gaia.apus.layout import group_bytes
from gaia.errors import GaiaError
from gaia.fsutil import write_atomically

LOG_FILE = "apus.log"
HARD_STATE_FILE = "hardstate.json"
SNAPSHOT_FILE = "snapshot.bin"
FILE_MAGIC = int.from_bytes(b"GAIADLOG", "little")
FILE_HEADER = 64  # magic, version, group (2 words), owner, base index, base view, 0

MODE_NONE = 0
MODE_FILE = 1
MODE_SIM = 2
# dmeta words
D_MODE = 0
D_FD = 1
D_WRITTEN = 2  # bytes written (file offset of the next record)
D_SYNCED = 3
D_ERRORS = 4
D_LEN = 8

_pwrite = types.ExternalFunction(
    "pwrite", types.int64(types.intc, types.voidptr, types.uint64, types.int64)
)
_fdatasync = types.ExternalFunction("fdatasync", types.intc(types.intc))


@njit(nogil=True, cache=True)
def dur_append(
    dbuf: np.ndarray, dmeta: np.ndarray, src: np.ndarray, start: int, length: int
) -> bool:
    """Append src[start:start+length] to the durable log (not yet synced)."""
    mode = dmeta[D_MODE]
    if mode == MODE_NONE:
        return True
    pos = dmeta[D_WRITTEN]
    if mode == MODE_SIM:
        if pos + length > dbuf.size:
            dmeta[D_ERRORS] += 1
            return False
        dbuf[pos : pos + length] = src[start : start + length]
    else:
        done = 0
        base = src.ctypes.data + start
        while done < length:
            n = _pwrite(np.intc(dmeta[D_FD]), base + done, np.uint64(length - done), pos + done)
            if n <= 0:
                dmeta[D_ERRORS] += 1
                return False
            done += n
    dmeta[D_WRITTEN] = pos + length
    return True


@njit(nogil=True, cache=True)
def dur_sync(dbuf: np.ndarray, dmeta: np.ndarray) -> bool:
    """Make everything appended so far durable (one fdatasync for the whole batch)."""
    mode = dmeta[D_MODE]
    if mode == MODE_FILE and dmeta[D_SYNCED] != dmeta[D_WRITTEN] and \
            _fdatasync(np.intc(dmeta[D_FD])) != 0:
        dmeta[D_ERRORS] += 1
        return False
    dmeta[D_SYNCED] = dmeta[D_WRITTEN]
    return True


@njit(nogil=True, cache=True)
def _scan(
    w64: np.ndarray, w: int, end_w: int, first_index: int, max_payload: int, out: np.ndarray
) -> int:
    """Walk records from word w; out[k] = word offset of the k-th valid record, in index
    order from first_index. Returns how many are valid (stops at the first bad one)."""
    count = 0
    while w < end_w and count < out.size:
        if not wire.entry_valid(w64, w, max_payload):
            break
        if np.int64(w64[w + wire.E_INDEX]) != first_index + count:
            break
        out[count] = w
        count += 1
        w += wire.entry_words(wire.entry_length(w64, w))
    return count


@njit(nogil=True, cache=True)
def _valid_record_after(
    w64: np.ndarray, w: int, end_w: int, min_index: int, max_payload: int
) -> int:
    """Word offset of any valid record with index >= min_index at or after w (-1: none)."""
    while w < end_w:
        if np.int64(w64[w + wire.E_INDEX]) >= min_index and wire.entry_valid(w64, w, max_payload):
            return w
        w += 1
    return -1


@dataclass
class HardState:
    """What must survive a crash besides the log: the promised view and the vote."""

    view: int = 0
    voted_for: int = -1  # -1 none; -2 unknown (state was lost: vote only in later views)


@dataclass
class Snapshot:
    index: int
    view: int
    config: dict[str, Any]
    data: bytes = b""


@dataclass
class Recovered:
    """What a replica finds at start: state, snapshot, valid records, and what was cut."""

    hard_state: HardState = field(default_factory=HardState)
    snapshot: Snapshot | None = None
    records: list[np.ndarray] = field(default_factory=list)  # uint64 record arrays
    problem: str = ""  # a cut tail, described for the log
    lost_state: bool = False  # corruption: the replica must rejoin as recovering
    fresh: bool = True  # nothing found at all


@dataclass
class ScanResult:
    records: list[np.ndarray]
    valid_bytes: int
    problem: str
    corrupt: bool


def scan_log(data: np.ndarray, first_index: int, max_payload: int, name: str) -> ScanResult:
    """Validate the records in `data` (bytes after the file header)."""
    usable = data.size // 8 * 8
    w64 = data[:usable].view(np.uint64)
    offsets = np.zeros(max(1, usable // (wire.E_PAYLOAD * 8 + 8)), dtype=np.int64)
    count = _scan(w64, 0, w64.size, first_index, max_payload, offsets)
    records = [
        w64[o : o + wire.entry_words(wire.entry_length(w64, o))].copy() for o in offsets[:count]
    ]
    end_w = 0 if count == 0 else int(offsets[count - 1]) + len(records[-1])
    valid = end_w * 8
    if valid == data.size:
        return ScanResult(records, valid, "", False)
    dropped = data.size - valid
    nxt = first_index + count
    corrupt = _valid_record_after(w64, end_w, w64.size, nxt + 1, max_payload) >= 0
    what = "is corrupt (valid records follow it)" if corrupt else "is torn or incomplete"
    problem = (
        f"{name}: the record at byte {FILE_HEADER + valid} (entry {nxt}) {what}; "
        f"kept the {count} valid entries before it and cut {dropped} bytes"
    )
    return ScanResult(records, valid, problem, corrupt)


def _sealed_json(obj: dict[str, Any]) -> bytes:
    body = json.dumps(obj, sort_keys=True)
    return json.dumps({"body": body, "crc": zlib.crc32(body.encode())}).encode()


def _open_sealed_json(raw: bytes) -> dict[str, Any] | None:
    try:
        outer = json.loads(raw)
        if zlib.crc32(outer["body"].encode()) != outer["crc"]:
            return None
        return json.loads(outer["body"])
    except (ValueError, KeyError, TypeError):
        return None


def encode_snapshot(snap: Snapshot, group_id: str) -> bytes:
    head = _sealed_json(
        {
            "group": group_id,
            "index": snap.index,
            "view": snap.view,
            "config": snap.config,
            "size": len(snap.data),
            "crc": zlib.crc32(snap.data),
        }
    )
    return len(head).to_bytes(8, "little") + head + snap.data


def decode_snapshot(raw: bytes, group_id: str, name: str) -> Snapshot | None:
    """None when damaged; GaiaError when it belongs to another group."""
    if len(raw) < 8:
        return None
    n = int.from_bytes(raw[:8], "little")
    meta = _open_sealed_json(raw[8 : 8 + n])
    if meta is None:
        return None
    if meta["group"] != group_id:
        raise _foreign(name, meta["group"], group_id)
    data = raw[8 + n :]
    if len(data) != meta["size"] or zlib.crc32(data) != meta["crc"]:
        return None
    return Snapshot(meta["index"], meta["view"], meta["config"], bytes(data))


def _foreign(where: str, theirs: str, ours: str) -> GaiaError:
    return GaiaError(
        f"{where} belongs to APUS group {theirs}, but this replica is in group {ours}",
        "start the replica with its own data directory (or remove the old one)",
    )


class Storage:
    """Interface of the durable side; the core calls it only on the slow path.

    The hard state (promised view, vote) is kept in every mode: it is written only at
    view changes, and without it a restarted replica could promise one view twice."""

    mode = "memory"

    def __init__(self, group_id: str, replica_id: int, directory: Path | None = None) -> None:
        self.group_id = group_id
        self.replica_id = replica_id
        self.dir = Path(directory) if directory is not None else None
        if self.dir is not None:
            self.dir.mkdir(parents=True, exist_ok=True)
        self.dbuf = np.zeros(8, dtype=np.uint8)
        self.dmeta = np.zeros(D_LEN, dtype=np.int64)
        self.base_index = 0  # the log file holds entries base_index+1 ...
        self.hard_state: HardState | None = None  # the copy kept without a directory

    @property
    def durable(self) -> bool:
        return self.mode != "memory"

    def load(self, max_payload: int) -> Recovered:
        rec = Recovered()
        self._load_hard_state(rec)
        return rec

    def _load_hard_state(self, rec: Recovered) -> None:
        if self.dir is None:
            if self.hard_state is not None:
                rec.fresh = False
                rec.hard_state = HardState(self.hard_state.view, self.hard_state.voted_for)
            return
        path = self.dir / HARD_STATE_FILE
        if not path.exists():
            return
        rec.fresh = False
        state = _open_sealed_json(path.read_bytes())
        if state is None:
            rec.lost_state = True
            rec.hard_state = HardState(0, -2)
            rec.problem = f"{path} is damaged; rejoining as a recovering replica"
        elif state.get("group") != self.group_id:
            raise _foreign(str(self.dir), state.get("group"), self.group_id)
        else:
            rec.hard_state = HardState(state["view"], state["voted_for"])

    def save_hard_state(self, hs: HardState) -> None:
        self.hard_state = HardState(hs.view, hs.voted_for)
        if self.dir is not None:  # memory mode: survive a process crash, skip the fsync
            write_atomically(self.dir / HARD_STATE_FILE, _sealed_json(
                {"group": self.group_id, "view": hs.view, "voted_for": hs.voted_for}),
                sync=self.durable)

    def save_snapshot(self, snap: Snapshot) -> None:
        pass

    def append(self, records: list[np.ndarray]) -> None:
        """Slow-path appends (adopted or fetched entries), synced before returning."""
        for rec in records:
            raw = rec.view(np.uint8)
            dur_append(self.dbuf, self.dmeta, raw, 0, raw.size)
        dur_sync(self.dbuf, self.dmeta)

    def truncate(self, keep_bytes: int) -> None:
        """Cut the log file after the first `keep_bytes` bytes of records."""

    def rewrite(self, base_index: int, base_view: int, records: list[np.ndarray]) -> None:
        """Replace the log file by these records (after a snapshot compacted the log)."""
        self.base_index = base_index

    def close(self) -> None:
        pass


class MemoryStorage(Storage):
    """memory mode: only the hard state survives (in `directory`, or in this object)."""

    mode = "memory"


class FileStorage(Storage):
    """fsync mode: files in `directory` (one directory per replica)."""

    mode = "fsync"

    def __init__(self, directory: Path, group_id: str, replica_id: int) -> None:
        super().__init__(group_id, replica_id, directory)
        self.dir = Path(directory)
        self.log_path = self.dir / LOG_FILE
        self.fd = -1

    def _header(self, base_index: int, base_view: int) -> bytes:
        words = np.zeros(FILE_HEADER // 8, dtype=np.uint64)
        words[0] = FILE_MAGIC
        words[1] = 1
        words[2:4] = np.frombuffer(group_bytes(self.group_id), dtype=np.uint64)
        words[4] = self.replica_id
        words[5] = base_index
        words[6] = base_view
        return words.tobytes()

    def _open_log(self, valid_bytes: int) -> None:
        self.fd = os.open(self.log_path, os.O_RDWR | os.O_CREAT, 0o600)
        os.ftruncate(self.fd, FILE_HEADER + valid_bytes)
        self.dmeta[D_MODE] = MODE_FILE
        self.dmeta[D_FD] = self.fd
        self.dmeta[D_WRITTEN] = FILE_HEADER + valid_bytes
        self.dmeta[D_SYNCED] = FILE_HEADER + valid_bytes

    def load(self, max_payload: int) -> Recovered:
        rec = Recovered()
        self._load_hard_state(rec)
        snap_path = self.dir / SNAPSHOT_FILE
        if snap_path.exists():
            rec.fresh = False
            rec.snapshot = decode_snapshot(snap_path.read_bytes(), self.group_id, str(snap_path))
            if rec.snapshot is None:
                rec.lost_state = True
                rec.problem = f"{snap_path} is damaged; rejoining as a recovering replica"
        valid = 0
        if self.log_path.exists() and self.log_path.stat().st_size > 0:
            rec.fresh = False
            raw = np.fromfile(self.log_path, dtype=np.uint8)
            head = raw[:FILE_HEADER]
            if head.size < FILE_HEADER or int(head.view(np.uint64)[0]) != FILE_MAGIC:
                raise GaiaError(
                    f"{self.log_path} is not an APUS log file",
                    "point the replica at its own data directory",
                )
            words = head.view(np.uint64)
            if words[2:4].tobytes() != group_bytes(self.group_id):
                raise _foreign(str(self.log_path), words[2:4].tobytes().hex(), self.group_id)
            self.base_index = int(words[5])
            scan = scan_log(raw[FILE_HEADER:], self.base_index + 1, max_payload, str(self.log_path))
            rec.records = scan.records
            valid = scan.valid_bytes
            if scan.problem:
                rec.problem = "; ".join(p for p in (rec.problem, scan.problem) if p)
                rec.lost_state = rec.lost_state or scan.corrupt
        else:
            write_atomically(self.log_path, self._header(0, 0))
        self._open_log(valid)
        return rec

    def save_snapshot(self, snap: Snapshot) -> None:
        write_atomically(self.dir / SNAPSHOT_FILE, encode_snapshot(snap, self.group_id))

    def truncate(self, keep_bytes: int) -> None:
        end = FILE_HEADER + keep_bytes
        os.ftruncate(self.fd, end)
        os.fdatasync(self.fd)
        self.dmeta[D_WRITTEN] = self.dmeta[D_SYNCED] = end

    def rewrite(self, base_index: int, base_view: int, records: list[np.ndarray]) -> None:
        body = b"".join(r.tobytes() for r in records)
        write_atomically(self.log_path, self._header(base_index, base_view) + body)
        os.close(self.fd)
        self.base_index = base_index
        self._open_log(len(body))

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
            self.dmeta[D_MODE] = MODE_NONE


class SimStorage(Storage):
    """The simulator's disk for one replica; survives `crash()` like a real disk."""

    mode = "fsync"

    def __init__(self, group_id: str, replica_id: int, capacity: int = 1 << 20) -> None:
        super().__init__(group_id, replica_id)
        self.dbuf = np.zeros(capacity, dtype=np.uint8)
        self.dmeta[D_MODE] = MODE_SIM
        self.snapshot: Snapshot | None = None

    def load(self, max_payload: int) -> Recovered:
        rec = Recovered(fresh=self.snapshot is None and self.dmeta[D_WRITTEN] == 0)
        self._load_hard_state(rec)
        rec.snapshot = self.snapshot
        written = int(self.dmeta[D_WRITTEN])
        scan = scan_log(self.dbuf[:written], self.base_index + 1, max_payload, "sim log")
        rec.records = scan.records
        rec.problem = scan.problem
        rec.lost_state = scan.corrupt
        self.dmeta[D_WRITTEN] = self.dmeta[D_SYNCED] = scan.valid_bytes
        return rec

    def crash(self, torn_bytes: int = 0) -> None:
        """Lose what was not synced; keep `torn_bytes` of it (a torn tail)."""
        synced = int(self.dmeta[D_SYNCED])
        keep = min(int(self.dmeta[D_WRITTEN]), synced + max(0, torn_bytes))
        self.dbuf[keep : int(self.dmeta[D_WRITTEN])] = 0
        self.dmeta[D_WRITTEN] = keep
        self.dmeta[D_SYNCED] = synced

    def save_snapshot(self, snap: Snapshot) -> None:
        self.snapshot = snap

    def truncate(self, keep_bytes: int) -> None:
        self.dbuf[keep_bytes : int(self.dmeta[D_WRITTEN])] = 0
        self.dmeta[D_WRITTEN] = self.dmeta[D_SYNCED] = keep_bytes

    def rewrite(self, base_index: int, base_view: int, records: list[np.ndarray]) -> None:
        self.dbuf[:] = 0
        self.dmeta[D_WRITTEN] = self.dmeta[D_SYNCED] = 0
        self.base_index = base_index
        self.append(records)


def make_storage(mode: str, group_id: str, replica_id: int,
                 directory: Path | None = None) -> Storage:
    if mode == "memory":
        return MemoryStorage(group_id, replica_id, directory)
    if mode == "fsync":
        if directory is None:
            raise GaiaError("fsync durability needs a data directory",
                            "pass --data-dir (or a run directory)")
        return FileStorage(directory, group_id, replica_id)
    raise GaiaError(f"unknown durability mode {mode!r}", "choose memory or fsync")
