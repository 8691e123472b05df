"""Real replica processes on shared memory: kill -9 the leader during a stream of
proposals; every acknowledged proposal survives, in order, on every replica; the killed
replica restarts, catches up, and all logs are equal."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from gaia.apus.client import Client, OversizedEntryError
from gaia.apus.layout import LayoutConfig
from gaia.apus.reader import CommittedLogReader
from gaia.apus.runtime.group import spawn_replica, start_group, stop_group, wait_leader
from gaia.apus.runtime.spec import GroupSpec
from gaia.apus.runtime.status import live_deployment, read_statuses
from gaia.errors import GaiaError
from gaia.intercept.events import decode_batch

pytestmark = pytest.mark.slow


def _spec(durability: str) -> GroupSpec:
    return GroupSpec(replicas=[0, 1, 2], durability=durability,
                     layout=LayoutConfig(max_members=4, ring_slots=64),
                     election_ticks=60, ring_dead_ms=150)


@pytest.fixture
def group(run_dir: Path, request):
    path, procs = start_group(_spec(request.param), run_dir / "apus", wait=240)
    yield path
    stop_group(path)
    for p in procs:
        p.stop()


def _logs(path: Path, replicas: list[int]) -> dict[int, list[tuple]]:
    spec = GroupSpec.load(path)
    out = {}
    for r in replicas:
        with CommittedLogReader(spec.group_id, r, register=False) as reader:
            out[r] = [(e.index, e.view, e.kind, e.payload) for e in reader.entries()]
    return out


def _payloads(entry: tuple) -> list[bytes]:
    return [ev.payload for ev in decode_batch(entry[3])]


def _stream(client: Client, acked: list, stop: threading.Event) -> None:
    i = 0
    while not stop.is_set():
        payload = f"op-{i}".encode()
        try:
            acked.append((client.propose(payload, timeout=30), payload))
        except GaiaError:
            pass  # no leader for a while: the stream goes on, unacknowledged
        i += 1


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if predicate():
                return
        except GaiaError:
            pass  # a restarted replica's segments are being re-created
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.parametrize("group", ["memory", "fsync"], indirect=True)
def test_kill_the_leader_during_a_stream_of_proposals(group):
    _kill_the_leader(group)


@pytest.mark.netns
def test_kill_the_leader_over_tcp_between_network_namespaces(run_dir: Path):
    from gaia.cluster.netns import NetnsCluster, netns_unavailable_reason

    reason = netns_unavailable_reason()
    if reason:
        pytest.skip(f"network namespaces unavailable: {reason}")
    spec = _spec("memory")
    spec.transport = "tcp"
    with NetnsCluster(3) as net:
        spec.addresses = {r: f"{h.address}:7700" for r, h in zip(spec.replicas, net.hosts,
                                                                    strict=True)}
        spec.namespaces = {r: h.namespace for r, h in zip(spec.replicas, net.hosts,
                                                            strict=True)}
        path, procs = start_group(spec, run_dir / "apus", wait=240)
        try:
            _kill_the_leader(path)
        finally:
            stop_group(path)
            for p in procs:
                p.stop()


def _kill_the_leader(path: Path) -> None:
    spec = GroupSpec.load(path)
    client = Client(path)
    acked: list[tuple[int, bytes]] = []
    stop = threading.Event()
    streamer = threading.Thread(target=_stream, args=(client, acked, stop), daemon=True)
    streamer.start()
    _wait(lambda: len(acked) >= 30, 120, "30 acknowledged proposals")
    old = live_deployment(path)
    victim = old.leader
    os.kill(read_statuses(path, spec)[victim].pid, signal.SIGKILL)
    before = len(acked)
    new = wait_leader(path, 60, not_leader=victim)
    assert new.view > old.view
    _wait(lambda: len(acked) >= before + 30, 120, "proposals committed by the new leader")
    stop.set()
    streamer.join(60)
    client.close()

    survivors = [r for r in spec.replicas if r != victim]
    _wait(lambda: len({len(v) for v in _logs(path, survivors).values()}) == 1, 30,
          "the survivors to agree on the commit index")
    logs = _logs(path, survivors)
    for index, payload in acked:  # every acknowledged proposal, at its index, everywhere
        for r in survivors:
            assert payload in _payloads(logs[r][index - 1]), (r, index, payload)
    assert [i for i, _ in acked] == sorted(i for i, _ in acked)

    spawn_replica(path, victim)  # the killed replica comes back and catches up
    leader = wait_leader(path, 60).leader
    _wait(lambda: len(_logs(path, [victim])[victim]) >= len(_logs(path, [leader])[leader]),
          120, "the restarted replica to catch up")
    final = _logs(path, spec.replicas)
    n = min(len(v) for v in final.values())
    assert n >= len(acked)
    assert len({tuple(v[:n]) for v in final.values()}) == 1  # all logs equal


@pytest.mark.parametrize("group", ["memory"], indirect=True)
def test_an_oversized_entry_gets_a_clear_error(group):
    with Client(group) as client, pytest.raises(OversizedEntryError, match="exceeds the maximum"):
        client.propose(b"x" * (client.max_entry + 1))


def test_a_replica_refuses_another_groups_log(run_dir: Path):
    from gaia.apus.runtime.node import ReplicaRunner
    from gaia.apus.storage import FileStorage

    spec = _spec("fsync")
    path = run_dir / "g"
    path.mkdir()
    spec.save(path)
    other = FileStorage(spec.replica_dir(path, 0), "ab" * 16, 0)  # another group's data
    other.load(1024)
    other.save_hard_state(other.load(1024).hard_state)
    other.close()
    runner = ReplicaRunner(path, 0)
    with pytest.raises(GaiaError, match="belongs to APUS group"):
        runner.setup()


@pytest.mark.parametrize("group", ["memory"], indirect=True)
def test_the_intercept_feed_reads_committed_events_from_a_real_replica(group):
    """gaia.intercept's LogFeed (what the backup replayer consumes) over APUS's reader."""
    from gaia.apus.ringio import ring_name
    from gaia.intercept import ring_layout as RL
    from gaia.intercept.feed import EV_NONE, LogFeed
    from gaia.intercept.ring import Ring

    spec = GroupSpec.load(group)
    leader = wait_leader(group, 30).leader
    ring = Ring.open(ring_name(spec.group_id, leader))
    sent = [(RL.EV_OPEN, 7, b""), (RL.EV_DATA, 7, b"SET k v\r\n"), (RL.EV_CLOSE, 7, b"")]
    indices = [ring.propose(payload, kind=kind, conn_id=conn) for kind, conn, payload in sent]
    ring.close()
    backup = next(r for r in spec.replicas if r != leader)
    reader = CommittedLogReader(spec.group_id, backup)
    reader.wait_commit(indices[-1] - 1, 30)
    seen = []
    for ev in LogFeed(reader).events(0, stop=lambda: True):
        if ev.kind != EV_NONE:
            seen.append((ev.log_index, ev.kind, ev.conn_id, ev.payload))
        if ev.log_index >= indices[-1] and ev.last:
            break
    reader.applied(indices[-1])
    reader.close()
    assert [(k, c, p) for _, k, c, p in seen] == sent
    assert [i for i, *_ in seen] == indices
