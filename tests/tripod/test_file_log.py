"""SharedFileLog: the decision log the controllers use until the APUS-backed one lands.
Durable, ordered, one leader (flock) that fails over when it dies, snapshots and
compaction; a controller replaying it reaches the state of the others."""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import time

import pytest

from gaia import proc
from gaia.tripod.decision_log import DecisionLog, LogTruncatedError, NotLeaderError
from gaia.tripod.file_log import SharedFileLog
from gaia.tripod.state import ControllerStateMachine

from .sim import SimCluster, task


def leading(logs: list[SharedFileLog], timeout: float = 5.0) -> SharedFileLog:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for log in logs:
            if log.is_leader():
                return log
        time.sleep(0.01)
    raise AssertionError("no log became leader")


@pytest.fixture
def logs(tmp_path):
    opened = [SharedFileLog(tmp_path / "log", i) for i in range(3)]
    yield opened
    for log in opened:
        log.close()


def test_one_leader_appends_everyone_reads_in_order(logs):
    leader = leading(logs)
    assert isinstance(leader, DecisionLog)
    assert [leader.propose(f"e{i}".encode()) for i in range(1, 6)] == [1, 2, 3, 4, 5]
    for log in logs:
        assert log.read_committed(0) == [(i, f"e{i}".encode()) for i in range(1, 6)]
        assert log.read_committed(3) == [(4, b"e4"), (5, b"e5")]
        assert log.leader() == leader.controller_id
    followers = [log for log in logs if log is not leader]
    assert not any(log.is_leader() for log in followers)
    with pytest.raises(NotLeaderError):
        followers[0].propose(b"nope")
    assert not followers[0].wait_committed(5, 0.05)


def test_leader_death_hands_the_log_to_another_controller(logs):
    old = leading(logs)
    old.propose(b"before")
    old.close()  # its flock is released, as when its process dies
    new = leading([log for log in logs if log is not old])
    assert new.leader() == new.controller_id
    assert new.propose(b"after") == 2
    assert [e for _, e in new.read_committed(0)] == [b"before", b"after"]


def test_killed_leader_process_is_replaced_and_its_entries_kept(tmp_path):
    directory = tmp_path / "log"
    script = textwrap.dedent(
        f"""
        import time
        from gaia.tripod.file_log import SharedFileLog
        log = SharedFileLog({str(directory)!r}, 0)
        assert log.wait_leader(10)
        for i in range(3):
            log.propose(b"from-process-%d" % i)
        print("ready", flush=True)
        time.sleep(60)
        """
    )
    child = proc.spawn("log-leader", [sys.executable, "-c", script], tmp_path / "child.log")
    try:
        observer = SharedFileLog(directory, 1, campaign=False)
        assert observer.wait_committed(2, 20), child.log_tail()
        assert observer.leader() == 0
        follower = SharedFileLog(directory, 1)  # campaigns from now on
        assert not follower.is_leader()
        os.kill(child.pid, signal.SIGKILL)
        assert follower.wait_leader(10)
        assert follower.propose(b"from-follower") == 4
        assert [e for _, e in follower.read_committed(0)][-2:] == [
            b"from-process-2",
            b"from-follower",
        ]
        follower.close()
    finally:
        child.stop()


def test_torn_tail_is_cut_by_the_next_leader(tmp_path):
    directory = tmp_path / "log"
    first = SharedFileLog(directory, 0)
    assert first.wait_leader(5)
    first.propose(b"whole")
    first.close()
    with open(directory / "log", "ab") as f:  # a crash in the middle of an append
        f.write(b"\x02\x00\x00\x00\x00\x00\x00\x00\xff\x00\x00\x00garb")
    second = SharedFileLog(directory, 1)
    assert second.wait_leader(5)
    assert second.propose(b"next") == 2
    assert second.read_committed(0) == [(1, b"whole"), (2, b"next")]
    second.close()


def build_history() -> SimCluster:
    """A realistic decision history: agents, frameworks, R=1 and R=3 tasks, a death."""
    sim = SimCluster()
    for i in range(5):
        sim.add_agent(f"a{i}", f"h{i}", cpus=2, mem=2048)
    sim.register_framework("f", max_r=3)
    offer = sim.offer("f")
    sim.launch(offer, [task("t1", r=3), task("t2", r=1), task("t3", r=3)])
    sim.kill_agent("a0")
    sim.advance(sim.alloc.agent_timeout + 1)
    sim.advance(0.1)
    return sim


def test_controller_replaying_the_durable_log_reaches_the_same_state(tmp_path):
    sim = build_history()
    log = SharedFileLog(tmp_path / "log", 0)
    assert log.wait_leader(5)
    for raw in sim.log:
        log.propose(raw)
    for controller in range(3):
        replica = ControllerStateMachine(controller, 3)
        for index, raw in SharedFileLog(
            tmp_path / "log", controller, campaign=False
        ).read_committed(0):
            replica.apply(index, raw)
        assert replica.state.digest() == sim.machines[controller].state.digest()
        assert replica.desired_launches() == sim.machines[controller].desired_launches()
    log.close()


def test_snapshot_then_compaction_then_restore_reaches_the_same_state(tmp_path):
    sim = build_history()
    log = SharedFileLog(tmp_path / "log", 0)
    assert log.wait_leader(5)
    half = len(sim.log) // 2
    machine = ControllerStateMachine(1, 3)
    for raw in sim.log[:half]:
        machine.apply(log.propose(raw), raw)
    log.save_snapshot(machine.applied_index, machine.snapshot())
    log.compact(half)
    for raw in sim.log[half:]:
        log.propose(raw)
    late = SharedFileLog(tmp_path / "log", 2, campaign=False)
    with pytest.raises(LogTruncatedError) as truncated:
        late.read_committed(0)  # a controller that was down must restore the snapshot
    index, data = late.latest_snapshot()
    assert index == truncated.value.snapshot_index == half
    restored = ControllerStateMachine.restore(2, data)
    for i, raw in late.read_committed(index):
        restored.apply(i, raw)
    assert restored.state.digest() == sim.state.digest()
    log.close()
