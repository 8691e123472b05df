"""The ping-pong floor runs end to end (numbers are reported by `invoke latency`)."""

from __future__ import annotations

import numpy as np

from gaia.apus.transport import pingpong


def test_shm_pingpong_returns_one_sample_per_round():
    samples = pingpong.run_shm(rounds=2000, pinned=False)
    assert samples.shape == (2000,)
    assert (samples > 0).all()
    stats = pingpong.summarize(samples)
    assert stats["n"] == 2000 and stats["p50_ns"] <= stats["p99_ns"]


def test_tcp_pingpong_through_two_transports():
    samples = pingpong.run_tcp(rounds=300, pinned=False)
    assert samples.shape == (300,) and (samples > 0).all()


def test_summary_of_nothing_is_empty():
    assert pingpong.summarize(np.zeros(0, dtype=np.int64)) == {"n": 0}
