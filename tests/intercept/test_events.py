"""The batch encoding of events in a log entry: Python and numba agree, and round-trip."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from gaia.intercept import events as E

event_st = st.builds(
    E.Event,
    kind=st.sampled_from([1, 2, 3, 4]),
    conn_id=st.integers(0, 2**64 - 1),
    payload=st.binary(max_size=300),
    flags=st.integers(0, 3),
)


@njit
def _encode_numba(kinds, flags, conns, blob, starts, lengths, out):
    pos = E.nb_batch_begin(out)
    for i in range(kinds.shape[0]):
        pos = E.nb_put_event(out, pos, kinds[i], flags[i], conns[i], blob, starts[i],
                             lengths[i])
    E.nb_batch_finish(out, kinds.shape[0])
    return pos


@njit
def _walk_numba(buf):
    count = E.nb_batch_count(buf)
    kinds = np.zeros(max(count, 0), dtype=np.int64)
    conns = np.zeros(max(count, 0), dtype=np.uint64)
    total = 0
    pos = E.BATCH_HEADER
    for i in range(count):
        kind, _flags, length, conn_id, payload_pos = E.nb_event_at(buf, pos)
        kinds[i] = kind
        conns[i] = conn_id
        total += length
        pos = payload_pos + length
    return count, kinds, conns, total, pos


@settings(max_examples=60, deadline=None)
@given(st.lists(event_st, max_size=12))
def test_python_round_trip(events):
    assert E.decode_batch(E.encode_batch(events)) == events


@settings(max_examples=60, deadline=None)
@given(st.lists(event_st, max_size=12))
def test_numba_encoder_writes_the_python_encoding(events):
    blob = np.frombuffer(b"".join(e.payload for e in events) or b"\0", dtype=np.uint8)
    lengths = np.array([len(e.payload) for e in events], dtype=np.int64)
    starts = np.concatenate(([0], np.cumsum(lengths)[:-1])).astype(np.int64)
    out = np.zeros(E.BATCH_HEADER + sum(E.EVENT_HEADER + n for n in lengths), np.uint8)
    end = _encode_numba(np.array([e.kind for e in events], np.int64),
                        np.array([e.flags for e in events], np.int64),
                        np.array([e.conn_id for e in events], np.uint64),
                        blob, starts, lengths, out)
    assert end == out.shape[0]
    assert out.tobytes() == E.encode_batch(events)


@settings(max_examples=40, deadline=None)
@given(st.lists(event_st, max_size=12))
def test_numba_decoder_walks_the_python_encoding(events):
    buf = np.frombuffer(E.encode_batch(events), dtype=np.uint8)
    count, kinds, conns, total, end = _walk_numba(buf)
    assert count == len(events)
    assert list(kinds) == [e.kind for e in events]
    assert [int(c) for c in conns] == [e.conn_id for e in events]
    assert total == sum(len(e.payload) for e in events)
    assert end == buf.shape[0]


def test_a_payload_that_is_not_a_batch_holds_no_events():
    assert E.decode_batch(b"noop entry") == []
    assert _walk_numba(np.frombuffer(b"noop entry", np.uint8))[0] == -1


def test_a_truncated_batch_is_an_error_not_a_short_list():
    data = E.encode_batch([E.Event(2, 7, b"hello world")])
    with pytest.raises(ValueError, match="truncated"):
        E.decode_batch(data[:-3])
