"""Redis replicated by APUS + the shim, end to end with real processes: three APUS
replicas, three redis-servers under the shim, three agents, leader-aware YCSB clients.

Steady state (YCSB A and redis-benchmark), kill -9 of the leader during a YCSB run with
recorded writes, a crashed backup server, garbage bytes from a client, and a server that
will not start.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from gaia.apus.reader import CommittedLogReader
from gaia.errors import GaiaError
from gaia.intercept import ring_layout as L
from gaia.intercept.events import decode_batch
from gaia.replicate.group import ReplicatedGroup
from gaia.replicate.status import DEPOSED, FAILED
from tests.replicate.helpers import (
    YcsbRun,
    assert_replicas_agree,
    wait_for_progress,
    writes_on,
)

pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def group(run_dir: Path, request):
    """A group of its own, for a test that breaks it."""
    with ReplicatedGroup.of("redis", 3, run_dir=run_dir / "redis") as g:
        yield g
        if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
            print(g.describe())


@pytest.fixture(scope="module")
def steady(tmp_path_factory):
    """One group shared by the tests that only add load to it (each checks that the
    replicas still agree afterwards): two fewer group start-ups."""
    with ReplicatedGroup.of("redis", 3, run_dir=tmp_path_factory.mktemp("steady")) as g:
        yield g


def _no_unexpected_divergence(group: ReplicatedGroup, least: int) -> None:
    report = group.check_outputs()
    assert report.compared >= least, report.summary()
    assert report.unexpected == [], report.summary()


def test_ycsb_a_and_redis_benchmark_leave_every_replica_equal(steady, run_dir):
    group = steady
    recording = run_dir / "writes.jsonl"
    outcome = YcsbRun(group, records=300, ops=1200, threads=4, recording=recording).run()
    assert outcome.run is not None and outcome.run.operations == 1200
    assert not outcome.run.errors
    host, port = group.current.leader_endpoint()
    bench = subprocess.run(
        ["redis-benchmark", "-h", host, "-p", str(port), "-n", "600", "-c", "4", "-r", "500",
         "-t", "set,incr,lpush,rpop,hset,mset", "-q"],
        capture_output=True, text=True, timeout=300)
    assert bench.returncode == 0, bench.stderr
    _no_unexpected_divergence(group, 3000)
    digests = assert_replicas_agree(group, expect=3)
    assert set(digests.values()) != {"0" * 40}, "nothing was written"
    for r in group.live_replicas():
        check = writes_on(group, r, recording)
        assert check.acknowledged > 0 and check.ok, f"r{r}: {check.summary()}"


def test_kill_the_leader_during_ycsb(group, run_dir):
    """The run goes on against the new leader; no acknowledged write is missing on any
    surviving replica; the killed replica comes back through the guard (a survivor's
    checkpoint restored into a fresh server, the log suffix replayed) and ends equal."""
    recording = run_dir / "writes.jsonl"
    YcsbRun(group, records=200, threads=4, phases=(True, False), recording=recording).run()
    run = YcsbRun(group, records=200, ops=3000, threads=4, phases=(False, True),
                  recording=recording).start()
    wait_for_progress(group, 400, run)
    victim = group.current.leader
    group.kill_replica(victim)
    outcome = run.join()
    assert outcome.run is not None and outcome.run.operations == 3000
    assert outcome.run.failover_gaps_s, "the clients saw the failover and followed it"
    new = group.wait_leader(60, not_leader=victim)
    assert new.leader != victim and new.view > 1
    digests = assert_replicas_agree(group, expect=2)
    for r in digests:
        check = writes_on(group, r, recording)
        assert check.ok, f"r{r}: {check.summary()}; missing {check.missing[:3]}"
    donor = next(r for r in digests if r != new.leader)
    checkpoint = group.checkpoint(donor)  # the donor's guard: a snapshot of its server
    assert checkpoint["digest"] == digests[donor]
    group.restart_replica(victim, from_checkpoint=True)
    back = group.wait_backup(victim)
    assert back.recovered_from.startswith(f"checkpoint {checkpoint['index']} of r{donor}")
    assert_replicas_agree(group, expect=3)
    assert writes_on(group, victim, recording).ok


def test_recovery_from_a_checkpoint_executes_the_suffix_once(group):
    """Counters make a twice-executed input visible (a SET of the same value would not):
    four clients INCR while a backup checkpoints and the other backup is rebuilt from that
    checkpoint plus the log suffix; every replica then holds the leader's counters."""
    host, port = group.wait_leader().leader_endpoint()
    stop = threading.Event()

    def incr(worker: int) -> None:
        conn = redis.Redis(host=host, port=port, socket_timeout=10)
        i = worker
        while not stop.is_set():
            conn.incr(f"n{i % 20}")
            i += 4

    workers = [threading.Thread(target=incr, args=(w,)) for w in range(4)]
    for w in workers:
        w.start()
    try:
        _wait_entries(group, 1500)
        leader = group.current.leader
        donor, victim = [r for r in group.spec.replicas if r != leader]
        checkpoint = group.checkpoint(donor)
        _wait_entries(group, 1000)
        group.restart_replica(victim, from_checkpoint=True)
        back = group.wait_backup(victim)
        assert back.recovered_from.startswith(f"checkpoint {checkpoint['index']} of r{donor}")
        _wait_entries(group, 500)
    finally:
        stop.set()
        for w in workers:
            w.join(30)
    assert_replicas_agree(group, expect=3)


def _wait_entries(group: ReplicatedGroup, entries: int, timeout: float = 120) -> None:
    start = group.commit_index()
    deadline = time.monotonic() + timeout
    while group.commit_index() < start + entries:
        assert time.monotonic() < deadline, f"fewer than {entries} entries in {timeout} s"
        time.sleep(0.02)


def test_a_crashed_backup_server_is_reported_and_the_group_keeps_serving(group):
    leader = group.current.leader
    backup = next(r for r in group.spec.replicas if r != leader)
    os.kill(group.pids(backup)["server"], signal.SIGKILL)
    deadline = time.monotonic() + 60
    while not group.failures():
        assert time.monotonic() < deadline, "the crash was not reported"
        time.sleep(0.05)
    (report,) = group.failures()
    assert f"replica {backup}" in report and "died" in report and "signal" not in report
    assert group.agents()[backup].state == FAILED
    dep = group.refresh()
    assert dep.replicas[backup].role == "down" and dep.leader == leader
    outcome = YcsbRun(group, records=100, ops=300).run()  # a majority remains: it serves
    assert outcome.run is not None and not outcome.run.errors
    assert_replicas_agree(group, expect=2)


def test_starting_a_started_group_is_refused_and_it_keeps_serving(steady):
    """A second start() would spawn a second set of processes and lose track of the
    first (they would outlive stop())."""
    procs = dict(steady.procs)
    with pytest.raises(GaiaError, match="already started"):
        steady.start()
    assert steady.procs == procs
    host, port = steady.wait_leader().leader_endpoint()
    assert redis.Redis(host=host, port=port, socket_timeout=10).set("still", "serving")


def test_garbage_from_a_client_is_replicated_identically(steady):
    """Random bytes (and a valid command after them on another connection) reach every
    replica in the same order; the servers answer them the same way — the output checker
    compares every answer and finds no divergence — and end in equal states."""
    group = steady
    host, port = group.current.leader_endpoint()
    rng = random.Random(5)
    sent = []
    for _ in range(4):
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300)))
        sent.append(junk)
        with socket.create_connection((host, port), timeout=30) as conn:
            conn.sendall(junk)
            conn.shutdown(socket.SHUT_WR)
            while conn.recv(4096):
                pass
    with redis.Redis(host=host, port=port, socket_timeout=30) as client:
        client.set("after-garbage", "still-serving")
    leader = group.current.leader
    with CommittedLogReader(group.spec.group_id, leader, register=False) as log:
        data = b"".join(ev.payload for i in range(1, log.commit_index() + 1)
                        for ev in decode_batch(log.entry(i)) if ev.kind == L.EV_DATA)
    assert all(junk in data for junk in sent), "the garbage went through consensus"
    _no_unexpected_divergence(group, 5)
    assert_replicas_agree(group, expect=3)


def _set_once(host: str, port: int, key: str, value: str) -> bool:
    """One SET on a fresh connection, no retries: True if acknowledged."""
    with redis.Redis(host=host, port=port, socket_timeout=30,
                     retry=Retry(NoBackoff(), 0)) as client:
        try:
            return bool(client.set(key, value))
        except redis.ConnectionError:
            return False


def test_no_client_input_runs_on_a_backup_or_a_deposed_leader(group):
    """The safety rule of the shim (gaia_ring.h "Who may give a server input"): a client
    that connects straight to a backup has its input refused; a client connected to a
    leader that was paused (SIGSTOP of all its processes) while another was elected gets
    no unreplicated answer once it resumes — every acknowledged write is on the new
    leader. The deposed replica steps out of the group (server and APUS replica gone)
    and comes back by a restart, equal to the others."""
    old = group.current.leader
    backup = next(r for r in group.spec.replicas if r != old)
    assert not _set_once(*group.endpoint(backup), "on-backup", "x")
    held = redis.Redis(*group.endpoint(old), socket_timeout=30, retry=Retry(NoBackoff(), 0))
    assert held.set("before-pause", "1")
    pids = [p for p in group.pids(old).values() if p]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        new = group.wait_leader(120, not_leader=old)
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    acknowledged = []
    for i in range(20):
        try:
            if held.set(f"after-pause-{i}", "1"):
                acknowledged.append(f"after-pause-{i}")
        except redis.ConnectionError:
            break
    held.close()
    deadline = time.monotonic() + 60
    while group.agents()[old].state != DEPOSED:
        assert time.monotonic() < deadline, group.agents()[old]
        time.sleep(0.05)
    node = group.procs[(old, "node")]
    deadline = time.monotonic() + 30
    while node.alive():  # the deposed replica is no voter any more
        assert time.monotonic() < deadline, "the deposed APUS replica still runs"
        time.sleep(0.05)
    with redis.Redis(*group.endpoint(new.leader), socket_timeout=30) as client:
        assert client.get("before-pause") == b"1"
        assert all(client.get(key) == b"1" for key in acknowledged), acknowledged
    assert not _set_once(*group.endpoint(old), "on-deposed", "x")
    group.restart_replica(old)
    group.wait_backup(old)
    assert_replicas_agree(group, expect=3)


def _write_shared_keys(host: str, port: int, writer: int) -> None:
    with redis.Redis(host=host, port=port, socket_timeout=30) as client:
        for i in range(150):
            client.set(f"shared:{i % 7}", f"w{writer}-{i}")
            client.append(f"trail:{i % 3}", str(writer))
            client.incr("counter")


def test_concurrent_writers_agree_and_the_checker_flags_a_nondeterministic_command(steady):
    """Two clients write the same keys at once: every replica executes their inputs in
    the log's order and ends equal. TIME answers differently on every replica: the output
    checker reports it at its connection and log index, as a known non-deterministic
    command, and nothing else."""
    group = steady
    host, port = group.current.leader_endpoint()
    writers = [threading.Thread(target=_write_shared_keys, args=(host, port, w))
               for w in (1, 2)]
    for t in writers:
        t.start()
    for t in writers:
        t.join(300)
    with redis.Redis(host=host, port=port, socket_timeout=30) as client:
        assert int(client.get("counter")) == 300
        client.execute_command("TIME")
    leader = group.current.leader
    with CommittedLogReader(group.spec.group_id, leader, register=False) as log:
        times = {(ev.conn_id, i) for i in range(1, log.commit_index() + 1)
                 for ev in decode_batch(log.entry(i))
                 if ev.kind == L.EV_DATA and b"TIME" in ev.payload}
    report = group.check_outputs()
    assert report.unexpected == [], report.summary()
    flagged = {(d.conn_id, d.log_index) for d in report.expected if d.known == "TIME"}
    assert times and flagged == times, report.summary()
    assert_replicas_agree(group, expect=3)


def test_a_server_that_will_not_start_is_a_clear_error(run_dir):
    group = ReplicatedGroup.of(command=["redis-server", "--port", "{port}", "--no-such-option"],
                               replicas=1, run_dir=run_dir / "bad")
    with pytest.raises(GaiaError, match=r"server did not start.*no-such-option") as err:
        group.start(timeout=120)
    assert "replica" in err.value.problem
    for pid in (p for r in group.spec.replicas for p in group.pids(r).values() if p):
        assert not Path(f"/proc/{pid}").exists() or "Z" in Path(f"/proc/{pid}/stat").read_text()


def test_any_command_with_placeholders_behind_a_front_port(run_dir):
    """The generic form, reached by an unmodified client through the stable front port,
    which follows the leader across a kill -9."""
    command = ["redis-server", "--port", "{port}", "--dir", "{dir}", "--save", "",
               "--appendonly", "no"]
    with ReplicatedGroup.of(command=command, replicas=3, front_port=0,
                            run_dir=run_dir / "generic") as group:
        front = group.forwarder.port
        assert group.current.front_port == front
        with redis.Redis(port=front, socket_timeout=30) as client:
            client.set("k", "v1")
        victim = group.current.leader
        group.kill_replica(victim)
        group.wait_leader(60, not_leader=victim)
        with redis.Redis(port=front, socket_timeout=30) as client:
            assert client.get("k") == b"v1"
            client.set("k", "v2")
        with pytest.raises(GaiaError, match="no state digest"):
            group.digests()
