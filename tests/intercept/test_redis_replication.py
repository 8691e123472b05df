"""Redis replicated through the shim: order, fail-closed, output checker, garbage, roles.

Each test runs real redis-server processes under the shim (a LocalGroup: the leader's
ring is committed in order into a shared-memory log, backups are fed by the replayer).
"""

from __future__ import annotations

import random
import socket
import threading

import pytest
import redis

from gaia.intercept import ring_layout as L
from gaia.intercept.build import preload_env
from gaia.intercept.checker import fnv1a64
from gaia.intercept.events import decode_batch
from gaia.intercept.local_commit import spawn as spawn_committer
from gaia.intercept.local_group import LocalGroup
from gaia.intercept.ring import wait_until

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def group():
    with LocalGroup("redis", replicas=2) as g:
        yield g


def _skewed_writes(port: int, tid: int, ops: int, seed: int) -> None:
    """APPEND/INCR/LPUSH on a few hot keys: the final values depend on the order."""
    rng = random.Random(seed)
    keys = [f"k{i}" for i in range(12)]
    weights = [1 / (i + 1) ** 1.2 for i in range(len(keys))]
    with redis.Redis(port=port) as client:
        pipe = client.pipeline(transaction=False)
        for i in range(ops):
            key = rng.choices(keys, weights)[0]
            op = rng.randrange(4)
            target = pipe if i % 3 == 0 else client  # pipelines put several commands in one read
            if op == 0:
                target.append(key, f"{tid}.{i};")
            elif op == 1:
                target.incr(f"n:{key}")
            elif op == 2:
                target.lpush(f"l:{key}", f"{tid}.{i}")
            else:
                target.set(f"s:{key}", f"{tid}.{i}")
            if i % 3 == 0 and i % 30 == 27:
                pipe.execute()
        pipe.execute()


def _events(log, kind=None):
    for index in range(1, log.commit_index() + 1):
        for ev in decode_batch(log.entry(index)):
            if kind is None or ev.kind == kind:
                yield index, ev


def test_two_clients_on_shared_keys_leave_equal_digests(group):
    port = group.leader.server.port
    clients = [threading.Thread(target=_skewed_writes, args=(port, t, 1500, t)) for t in (1, 2)]
    for c in clients:
        c.start()
    for c in clients:
        c.join(240)
    group.wait_caught_up()
    digests = group.digests()
    assert len(set(digests.values())) == 1, digests
    assert digests["r0"] != "0" * 40, "nothing was written"
    data_conns = {ev.conn_id for _, ev in _events(group.log, L.EV_DATA)}
    assert len(data_conns) >= 2, "both clients' inputs are in the log"
    report = group.check_outputs()
    assert report.compared > 1000
    assert report.divergences == [], report.summary()


def test_output_checker_flags_time_and_randomkey_at_their_log_index(group):
    with redis.Redis(port=group.leader.server.port) as client:
        client.mset({f"key{i}": i for i in range(2000)})
        client.execute_command("TIME")
        for _ in range(6):  # equal data: each RANDOMKEY still differs w.p. ~1 - 1/2000
            client.randomkey()
        client.set("after", 1)
    group.wait_caught_up()
    report = group.check_outputs()
    found = {(d.conn_id, d.log_index): d for d in report.divergences}
    for word in (b"TIME", b"RANDOMKEY"):
        places = [(ev.conn_id, i) for i, ev in _events(group.log, L.EV_DATA)
                  if word in ev.payload]
        assert places, f"{word!r} is not in the log"
        flagged = [found[p] for p in places if p in found]
        assert flagged, f"no divergence reported at {places}: {report.summary()}"
        assert all(d.known == word.decode() for d in flagged)
    assert report.unexpected == [], report.summary()


def test_garbage_from_a_client_is_replicated_and_answered_alike(group):
    # not a command, then a broken multibulk header: Redis answers both and closes
    garbage = b"\xff\xfe junk \x7f\x80 bytes\r\n*-x7\r\n$3\r\nSET\r\n"
    with socket.create_connection(("127.0.0.1", group.leader.server.port)) as sock:
        sock.sendall(garbage)
        answer = b""
        while chunk := sock.recv(4096):  # Redis answers a protocol error and closes
            answer += chunk
    assert answer.startswith(b"-ERR unknown command")
    assert answer.endswith(b"-ERR Protocol error: invalid multibulk length\r\n")
    group.wait_caught_up()
    logged = b"".join(ev.payload for _, ev in _events(group.log, L.EV_DATA))
    assert garbage in logged
    closes = {name: [s for s in m.ring.snapshots()[0] if s.at_close]
              for name, m in (("leader", group.leader), ("backup", group.backups[0]))}
    for name, snaps in closes.items():
        assert [(s.out_bytes, s.out_hash) for s in snaps] == [
            (len(answer), fnv1a64(answer))], f"{name} answered differently"
    assert group.check_outputs().divergences == []
    assert len(set(group.digests().values())) == 1


def test_backup_becomes_leader_at_run_time_and_serves(tmp_path):
    with LocalGroup("redis", replicas=3) as group:
        old = group.leader
        with redis.Redis(port=old.server.port) as client:
            for i in range(200):
                client.rpush("history", f"v1-{i}")
            held = redis.Redis(port=old.server.port)  # a client still connected at failover
            held.ping()
        group.fail_leader()
        with pytest.raises(redis.exceptions.ConnectionError):
            held.rpush("history", "lost")  # the old leader fails closed
        old.server.stop()
        new = group.members[1]
        pid = new.server.process.pid
        group.promote(new)
        with redis.Redis(port=new.server.port) as client:
            for i in range(100):
                client.rpush("history", f"v2-{i}")
            assert client.llen("history") == 300
        assert new.server.process.pid == pid, "the new leader was not restarted"
        group.wait_caught_up()
        digests = group.digests()
        assert digests["r1"] == digests["r2"], digests
        assert group.check_outputs().unexpected == []


def test_a_dead_replica_side_makes_the_server_fail_closed(shm, run_dir):
    import apps

    ring = shm.ring("lead", 1, dead_ns=300_000_000)
    log = shm.log()
    committer = spawn_committer(ring.name, log.name, run_dir / "committer.log")
    server = apps.get("redis")(port=0, env=preload_env(ring.name), deterministic=True)
    try:
        server.start()
        ring_ready = ring.commit_index
        with redis.Redis(port=server.port, socket_timeout=20) as client:
            _wait(lambda: _try_ping(client), "the committer process to commit")
            client.set("before", 1)
            assert ring.commit_index > ring_ready
            committer.kill()  # kill -9: no goodbye, the heartbeat just stops
            with pytest.raises(redis.exceptions.ConnectionError):
                client.set("during", 1)
        late = redis.Redis(port=server.port, socket_timeout=20)
        with pytest.raises(redis.exceptions.ConnectionError):
            late.ping()  # a new connection is refused as well
        late.close()
        with server._admin() as admin:  # unix socket: not replicated, shows the truth
            assert admin.get("before") == b"1"
            assert admin.get("during") is None, "the server executed an unreplicated input"
        committed = b"".join(ev.payload for _, ev in _events(log, L.EV_DATA))
        assert b"before" in committed and b"during" not in committed
    finally:
        committer.kill()
        server.stop()
        server.cleanup()


def test_a_replica_marked_down_fails_reads_at_once(group):
    leader = group.leader
    with redis.Redis(port=leader.server.port) as client:
        client.set("a", 1)
        leader.ring.state = L.REPLICA_DOWN
        with pytest.raises(redis.exceptions.ConnectionError):
            client.set("b", 2)
    with leader.server._admin() as admin:
        assert admin.get("b") is None


def _try_ping(client) -> bool:
    try:
        return bool(client.ping())
    except redis.exceptions.ConnectionError:
        return False


def _wait(predicate, what: str, timeout: float = 60.0) -> None:
    wait_until(predicate, timeout, what, interval=0.1)
