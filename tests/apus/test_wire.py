"""Record formats: a reader accepts a record only when it is whole (canary + checksum)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from gaia.apus import wire


def _entry(payload: bytes, index: int = 7, view: int = 3, kind: int = wire.K_APP,
           send_view: int = 5, commit: int = 4) -> np.ndarray:
    buf = np.zeros(wire.entry_words(len(payload)) * 8 + 64, dtype=np.uint8)
    w64 = buf.view(np.uint64)
    src = np.frombuffer(payload, dtype=np.uint8) if payload else np.zeros(1, np.uint8)
    wire.entry_build(buf, w64, 0, index, view, kind, src, 0, len(payload))
    wire.entry_stamp(w64, 0, send_view, commit)
    return buf


@settings(deadline=None)
@given(st.binary(max_size=300))
def test_a_built_and_stamped_entry_validates_and_round_trips(payload):
    buf = _entry(payload)
    w64 = buf.view(np.uint64)
    assert wire.entry_valid(w64, 0, 1024)
    assert wire.entry_length(w64, 0) == len(payload)
    assert wire.entry_kind(w64, 0) == wire.K_APP
    assert bytes(buf[48 : 48 + len(payload)]) == payload


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=200), st.data())
def test_any_flipped_byte_or_missing_canary_is_rejected(payload, data):
    buf = _entry(payload)
    size = wire.entry_words(len(payload)) * 8
    pos = data.draw(st.integers(0, size - 1))
    if 32 <= pos < 48:
        pos = 0  # send view / commit are covered by the canary, not the checksum: same
    buf[pos] ^= data.draw(st.integers(1, 255))
    assert not wire.entry_valid(buf.view(np.uint64), 0, 1024)


def test_restamping_keeps_the_entry_valid_and_a_torn_stamp_is_rejected():
    buf = _entry(b"hello world")
    w64 = buf.view(np.uint64)
    wire.entry_stamp(w64, 0, 9, 8)
    assert wire.entry_valid(w64, 0, 1024)
    assert int(w64[wire.E_SEND_VIEW]) == 9 and int(w64[wire.E_COMMIT]) == 8
    w64[wire.E_COMMIT] = 99  # a newer stamp's header landed, its canary not yet
    assert not wire.entry_valid(w64, 0, 1024)


def test_a_zeroed_slot_and_an_oversized_length_never_validate():
    zero = np.zeros(64, dtype=np.uint64)
    assert not wire.entry_valid(zero, 0, 1024)
    buf = _entry(b"x" * 100)
    assert not wire.entry_valid(buf.view(np.uint64), 0, 50)  # longer than the max


def test_blobs_and_small_records():
    buf = np.zeros(256, dtype=np.uint8)
    w64 = buf.view(np.uint64)
    n = wire.blob_build(buf, w64, 0, 42, 3, 7, np.frombuffer(b"mail!", np.uint8), 5)
    assert n == wire.blob_words(5) * 8
    assert wire.blob_valid(w64, 0, 100)
    buf[33] ^= 1
    assert not wire.blob_valid(w64, 0, 100)
    small = np.array([5, 6, 7, 0], dtype=np.uint64)
    wire.small_seal(small, 0, 3)
    out = np.zeros(3, dtype=np.uint64)
    assert wire.small_read(small, 0, 3, out) and list(out) == [5, 6, 7]
    small[1] = 60
    assert not wire.small_read(small, 0, 3, out)
