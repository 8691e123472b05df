"""The local log: a circular arena of records that behaves like a list with a moving start."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gaia.apus import wire
from gaia.apus.logstore import LocalLog, LogConfig, LogFullError, log_reserve

GROUP = "ab" * 16


def test_append_read_truncate_compact_reset():
    log = LocalLog.create(LogConfig(index_cap=8, arena_bytes=2048), GROUP, 0)
    assert (log.first, log.last) == (1, 0)
    for i in range(1, 6):
        assert log.append(1 if i < 4 else 2, wire.K_APP, f"e{i}".encode()) == i
    assert [e.payload for e in log.entries(1, 5)] == [b"e1", b"e2", b"e3", b"e4", b"e5"]
    assert log.view_of(3) == 1 and log.view_of(4) == 2 and log.view_of(0) == 0
    log.truncate(4)
    assert log.last == 4 and log.view_of(5) == -1
    log.compact(2)
    assert (log.first, log.last) == (3, 4) and log.view_of(2) == 1  # the base view
    with pytest.raises(IndexError):
        log.entry(2)
    log.reset(10, 7)
    assert (log.first, log.last, log.view_of(10)) == (11, 10, 7)
    assert log.append(8, wire.K_NOOP, b"") == 11


def test_a_full_log_refuses_instead_of_overwriting():
    log = LocalLog.create(LogConfig(index_cap=4, arena_bytes=1024), GROUP, 0)
    for _ in range(3):
        log.append(1, wire.K_APP, b"x")
    with pytest.raises(LogFullError):
        log.append(1, wire.K_APP, b"x")
    log.compact(2)
    log.append(1, wire.K_APP, b"y")  # room again after compaction
    assert log.entry(4).payload == b"y"


def test_reader_cursors():
    log = LocalLog.create(LogConfig(index_cap=8, arena_bytes=1024), GROUP, 0)
    assert log.min_reader() == -1
    a = log.claim_reader(0)
    b = log.claim_reader(3)
    assert log.min_reader() == 0
    log.set_reader(a, 5)
    assert log.min_reader() == 3
    log.release_reader(b)
    assert log.min_reader() == 5


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(
    st.tuples(st.just("append"), st.binary(max_size=120)),
    st.tuples(st.just("truncate"), st.integers(0, 40)),
    st.tuples(st.just("compact"), st.integers(0, 40)),
), max_size=60))
def test_the_log_matches_a_list_model_through_wrap_around(ops):
    """Append, cut and compact at random in a small arena (forcing wrap-around); every
    entry the log still holds equals the model's, and it refuses only when truly full."""
    log = LocalLog.create(LogConfig(index_cap=16, arena_bytes=1024), GROUP, 0)
    model: dict[int, bytes] = {}
    first, last = 1, 0
    for op, arg in ops:
        if op == "append":
            need = wire.entry_words(len(arg))
            if log_reserve(log.w64, need) < 0:
                with pytest.raises(LogFullError):
                    log.append(1, wire.K_APP, arg)
                continue
            last = log.append(1, wire.K_APP, arg)
            model[last] = arg
        elif op == "truncate":
            keep = max(first - 1, min(arg, last))
            log.truncate(keep)
            last = keep
        else:
            upto = min(arg, last)
            if upto >= first:
                log.compact(upto)
                first = upto + 1
        assert (log.first, log.last) == (first, last)
        for i in range(first, last + 1):
            assert log.entry(i).payload == model[i]
            assert wire.entry_valid(log.w64, log.word(i), 1 << 16)
