"""Backoff phases and CPU pinning options."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest
from numba import njit

from gaia.apus.transport import BackoffPolicy, backoff_idle, backoff_reset, backoff_state
from gaia.apus.transport.backoff import SHARED_CORES, SPIN_ONLY, policy_for
from gaia.apus.transport.pinning import cpu_for, pin_thread, unpin_thread
from gaia.errors import ConfigError
from gaia.lowlevel.syscalls import futex_wake


@njit(nogil=True)
def idle_rounds(policy, state, rounds, word_address):
    for _ in range(rounds):
        backoff_idle(policy, state, word_address, 0)
    return state[0]


def test_the_idle_counter_walks_through_the_phases_and_resets():
    policy = BackoffPolicy(spins=10, yields=5, sleep_ns=1_000, futex=0)
    state = backoff_state()
    assert idle_rounds(policy, state, 20, 0) == 20  # 10 spins, 5 yields, 5 short sleeps
    backoff_reset(state)
    assert state[0] == 0


def test_a_futex_backoff_is_woken_by_a_writer():
    """In the futex phase a poller sleeps on a word; futex_wake (what remote_wake does)
    ends the sleep long before its 30 s timeout."""
    policy = BackoffPolicy(spins=0, yields=0, sleep_ns=30_000_000_000, futex=1)
    word = np.zeros(1, dtype=np.uint32)
    state = backoff_state()
    sleeper = threading.Thread(target=idle_rounds, args=(policy, state, 1, word.ctypes.data))
    sleeper.start()
    while sleeper.is_alive():
        futex_wake(word.ctypes.data, 1)
        sleeper.join(0.01)
    assert state[0] == 1


def test_policy_spins_only_with_a_core_per_process():
    assert policy_for(2, cpus=2) == SPIN_ONLY
    assert policy_for(3, cpus=2) == SHARED_CORES


@pytest.mark.parametrize("pin,expected", [
    (None, [None, None, None]), ("none", [None, None, None]), ("spread", [0, 1, 0]),
    (1, [1, 1, 1]), ("1", [1, 1, 1]), ("1,0", [1, 0, 1]), ([0, 1, 1], [0, 1, 1]),
])
def test_cpu_for_options(pin, expected):
    assert [cpu_for(r, pin, cpus=2) for r in range(3)] == expected


def test_an_empty_cpu_list_is_a_clear_error():
    with pytest.raises(ConfigError, match="names no CPU"):
        cpu_for(0, ",", cpus=2)


def test_pinning_a_thread_sets_and_restores_its_affinity():
    before = os.sched_getaffinity(0)
    pin_thread(0)
    try:
        assert os.sched_getaffinity(0) == {0}
    finally:
        unpin_thread()
    assert os.sched_getaffinity(0) == before
