"""Multi-Paxos and DARE-style baselines: real replica processes commit and agree."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from gaia.apus.storage import FileStorage
from gaia.baselines import logbook as lg
from gaia.baselines.cluster import BaselineCluster
from gaia.errors import ConfigError

PROTOCOLS = ["multipaxos", "dare"]


def expected_state(count: int, payload: int) -> dict:
    """The log every replica must hold after `count` proposals of `payload` bytes,
    computed independently of any protocol."""
    book = lg.new_logbook(16, 1024, lg.open_storage("memory", "g", 0, None, 1024))
    for index in range(1, count + 1):
        lg.propose_entry(book, index, 1, index - 1, payload)
    return lg.state(book)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_all_replicas_hold_the_same_log_after_proposals(protocol, run_dir):
    cluster = BaselineCluster(protocol, 3, run_dir).start()
    try:
        first = cluster.run(1500, window=1, payload=100)
        second = cluster.run(1500, window=4, payload=100)
        states = cluster.stop()
    finally:
        cluster.close()
    assert first.committed == second.committed == 1500
    assert (first.samples_ns > 0).all() and first.samples_ns.size == 1500
    want = expected_state(3000, 100)
    assert {r: {"last": s["last"], "digest": s["digest"]} for r, s in states.items()} == \
        dict.fromkeys(range(3), want)
    assert states[1]["reason"] == states[2]["reason"] == 1  # both backups saw STOP


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_a_follower_crash_mid_stream_is_tolerated(protocol, run_dir):
    rounds = 200_000 if protocol == "dare" else 20_000
    cluster = BaselineCluster(protocol, 3, run_dir).start()
    outcome = {}
    try:
        driver = threading.Thread(target=lambda: outcome.update(r=cluster.run(rounds)))
        driver.start()
        deadline = time.monotonic() + 120
        while cluster.progress() < 1000 and time.monotonic() < deadline:
            time.sleep(0.001)
        cluster.kill(2)
        at_kill = cluster.progress()
        driver.join(300)
        states = cluster.stop()
    finally:
        cluster.close()
    assert 1000 <= at_kill < rounds, "the crash must happen while proposals stream"
    assert outcome["r"].committed == rounds
    assert set(states) == {0, 1}
    assert states[0]["last"] == states[1]["last"] == rounds
    assert states[0]["digest"] == states[1]["digest"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_nothing_commits_without_a_majority(protocol, run_dir):
    cluster = BaselineCluster(protocol, 3, run_dir).start()
    try:
        cluster.kill(1)
        cluster.kill(2)
        time.sleep(2.5)  # DARE judges a backup dead after 2 s without a heartbeat
        result = cluster.run(100)
    finally:
        cluster.close()
    assert result.committed <= 0


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_fsync_mode_leaves_apus_recoverable_logs_on_every_replica(protocol, run_dir):
    data = run_dir / "data"
    cluster = BaselineCluster(protocol, 3, run_dir, durability="fsync", data_dir=data).start()
    try:
        assert cluster.run(300, window=2, payload=40).committed == 300
        states = cluster.stop()
    finally:
        cluster.close()
    assert len({s["digest"] for s in states.values()}) == 1
    for replica in range(3):
        recovered = FileStorage(data / f"r{replica}", cluster.group, replica).load(1024)
        assert not recovered.problem
        assert [int(r[0]) for r in recovered.records] == list(range(1, 301))


def test_bad_input_is_a_clear_error(run_dir):
    with pytest.raises(ConfigError, match="unknown baseline"):
        BaselineCluster("raft-by-hand", 3, run_dir)
    with pytest.raises(ConfigError, match="cannot form a group"):
        BaselineCluster("dare", 0, run_dir)
    cluster = BaselineCluster("dare", 1, run_dir).start()
    try:
        with pytest.raises(ConfigError, match="payload 2000 B is outside"):
            cluster.run(10, payload=2000)
        assert cluster.run(10).committed == 10  # one replica is its own majority
    finally:
        cluster.close()


def test_quorum_index_is_the_majority_th_highest():
    persisted = np.array([7, 3, 9, 5, 1], dtype=np.int64)
    assert lg.quorum_index(persisted, 3) == 5
    assert lg.quorum_index(persisted, 1) == 9
    assert lg.quorum_index(persisted, 5) == 1
