"""The durable log: group commit from numba, recovery that keeps the valid prefix, refusal
of another group's files, and the simulator's disk that loses unsynced bytes."""

from __future__ import annotations

import numpy as np
import pytest

from gaia.apus import wire
from gaia.apus.logstore import LocalLog, LogConfig
from gaia.apus.storage import (
    FILE_HEADER,
    LOG_FILE,
    FileStorage,
    HardState,
    MemoryStorage,
    SimStorage,
    Snapshot,
    dur_append,
    dur_sync,
)
from gaia.errors import GaiaError

GROUP = "12" * 16
OTHER = "34" * 16


def _records(n: int, start: int = 1) -> list[np.ndarray]:
    log = LocalLog.create(LogConfig(index_cap=64, arena_bytes=16384), GROUP, 0)
    log.reset(start - 1, 1)
    for i in range(n):
        log.append(1, wire.K_APP, f"entry-{start + i}".encode())
    return [log.record(i).copy() for i in range(start, start + n)]


def _write(storage, records) -> None:
    for r in records:
        raw = r.view(np.uint8)
        assert dur_append(storage.dbuf, storage.dmeta, raw, 0, raw.size)
    assert dur_sync(storage.dbuf, storage.dmeta)


def test_records_written_from_numba_come_back_after_a_restart(tmp_path):
    s = FileStorage(tmp_path, GROUP, 1)
    assert s.load(1024).fresh
    _write(s, _records(5))
    s.save_hard_state(HardState(4, 2))
    s.close()
    rec = FileStorage(tmp_path, GROUP, 1).load(1024)
    assert not rec.fresh and not rec.problem and not rec.lost_state
    assert [int(r[wire.E_INDEX]) for r in rec.records] == [1, 2, 3, 4, 5]
    assert rec.hard_state == HardState(4, 2)


def test_a_torn_tail_is_cut_with_a_clear_message_and_the_prefix_kept(tmp_path):
    s = FileStorage(tmp_path, GROUP, 1)
    s.load(1024)
    _write(s, _records(4))
    s.close()
    path = tmp_path / LOG_FILE
    raw = path.read_bytes()
    path.write_bytes(raw[:-13])  # the last record lost its end (a crash mid-write)
    s2 = FileStorage(tmp_path, GROUP, 1)
    rec = s2.load(1024)
    assert len(rec.records) == 3
    assert "entry 4" in rec.problem and "torn" in rec.problem and "kept the 3" in rec.problem
    assert not rec.lost_state  # a torn tail was never acknowledged: nothing was lost
    assert path.stat().st_size < len(raw) - 13  # the garbage was cut from the file
    _write(s2, _records(1, start=4))  # appending continues right after the valid prefix
    s2.close()
    assert len(FileStorage(tmp_path, GROUP, 1).load(1024).records) == 4


def test_a_corrupt_record_in_the_middle_keeps_the_prefix_and_marks_state_lost(tmp_path):
    s = FileStorage(tmp_path, GROUP, 1)
    s.load(1024)
    recs = _records(6)
    _write(s, recs)
    s.close()
    path = tmp_path / LOG_FILE
    raw = bytearray(path.read_bytes())
    offset = FILE_HEADER + sum(r.nbytes for r in recs[:2]) + 50  # inside entry 3's payload
    raw[offset] ^= 0xFF
    path.write_bytes(bytes(raw))
    rec = FileStorage(tmp_path, GROUP, 1).load(1024)
    assert [int(r[wire.E_INDEX]) for r in rec.records] == [1, 2]
    assert "entry 3" in rec.problem and "corrupt" in rec.problem
    assert rec.lost_state  # acknowledged entries 3..6 are gone: rejoin as recovering


def test_another_groups_files_are_refused(tmp_path):
    s = FileStorage(tmp_path, GROUP, 1)
    s.load(1024)
    _write(s, _records(2))
    s.save_hard_state(HardState(1, 1))
    s.close()
    with pytest.raises(GaiaError, match="belongs to APUS group"):
        FileStorage(tmp_path, OTHER, 1).load(1024)
    (tmp_path / "hardstate.json").unlink()
    with pytest.raises(GaiaError, match="belongs to APUS group"):
        FileStorage(tmp_path, OTHER, 1).load(1024)


def test_snapshots_and_rewrite_after_compaction(tmp_path):
    s = FileStorage(tmp_path, GROUP, 1)
    s.load(1024)
    _write(s, _records(3))
    s.save_snapshot(Snapshot(3, 1, {"0": [True, True, 1]}, b"state@3"))
    s.rewrite(3, 1, _records(2, start=4))
    s.close()
    rec = FileStorage(tmp_path, GROUP, 1).load(1024)
    assert rec.snapshot == Snapshot(3, 1, {"0": [True, True, 1]}, b"state@3")
    assert [int(r[wire.E_INDEX]) for r in rec.records] == [4, 5]


def test_memory_mode_keeps_only_the_hard_state(tmp_path):
    s = MemoryStorage(GROUP, 0, tmp_path)
    assert s.load(1024).fresh
    s.save_hard_state(HardState(3, -1))
    rec = MemoryStorage(GROUP, 0, tmp_path).load(1024)
    assert not rec.fresh and rec.hard_state == HardState(3, -1) and not rec.records


def test_the_simulated_disk_loses_unsynced_bytes_on_a_crash():
    s = SimStorage(GROUP, 0, capacity=4096)
    recs = _records(3)
    _write(s, recs[:2])
    raw = recs[2].view(np.uint8)
    dur_append(s.dbuf, s.dmeta, raw, 0, raw.size)  # written, never synced
    s.crash(torn_bytes=20)
    rec = s.load(1024)
    assert len(rec.records) == 2 and "torn" in rec.problem
