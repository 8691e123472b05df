"""memcached (-t 1), MariaDB (bench user, one-thread pool) and a MongoDB-wire server
replicated through the shim: two concurrent writers on skewed keys, equal digests after."""

from __future__ import annotations

import random
import threading

import pytest

from gaia.intercept.local_group import LocalGroup

pytestmark = pytest.mark.timeout(300)
WRITERS = (1, 2)


def _hot_key(rng: random.Random) -> int:
    return min(int(rng.paretovariate(1.2)), 16)


def _memcached_writes(server, tid: int, ops: int) -> None:
    rng = random.Random(tid)
    client = server.client()
    for i in range(ops):
        key = f"k{_hot_key(rng)}"
        if i % 3 == 0:
            client.set(key, f"{tid}.{i}")
        elif i % 3 == 1 and not client.append(key, f";{tid}.{i}"):
            client.add(key, f"{tid}.{i}")
        elif client.incr(f"n{key}", 1) is None:
            client.add(f"n{key}", "1")
    client.close()


def _mariadb_writes(server, tid: int, ops: int) -> None:
    rng = random.Random(tid)
    conn = server.client()
    with conn.cursor() as cur:
        for i in range(ops):
            cur.execute("INSERT INTO t (k, v) VALUES (%s, %s) "
                        "ON DUPLICATE KEY UPDATE v = CONCAT(v, ';', VALUES(v))",
                        (_hot_key(rng), f"{tid}.{i}"))
    conn.close()


def _mongodb_writes(server, tid: int, ops: int) -> None:
    rng = random.Random(tid)
    client = server.client()
    for i in range(ops):
        client.ycsb.t.update_one({"_id": _hot_key(rng)}, {"$push": {"v": f"{tid}.{i}"}},
                                 upsert=True)
    client.close()


def _run_writers(target, server, ops: int) -> None:
    threads = [threading.Thread(target=target, args=(server, t, ops)) for t in WRITERS]
    for t in threads:
        t.start()
    for t in threads:
        t.join(240)


def _assert_replicas_agree(group: LocalGroup) -> None:
    group.wait_caught_up()
    digests = group.digests()
    assert len(set(digests.values())) == 1, digests
    report = group.check_outputs()
    assert report.compared > 100
    assert report.unexpected == [], report.summary()


def test_memcached_two_writers_equal_digests():
    with LocalGroup("memcached") as group:
        _run_writers(_memcached_writes, group.leader.server, 800)
        _assert_replicas_agree(group)


def test_mariadb_two_writers_equal_digests_and_rand_is_reported():
    with LocalGroup("mariadb") as group:
        leader = group.leader.server
        with leader.client() as conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE t (k INT PRIMARY KEY, v TEXT)")
        _run_writers(_mariadb_writes, leader, 300)
        with leader.client() as conn, conn.cursor() as cur:
            cur.execute("SELECT RAND(), UUID()")
        _assert_replicas_agree(group)  # logins included: the greeting is not hashed
        known = {d.known for d in group.check_outputs().expected}
        assert "RAND" in known


def test_mongodb_wire_server_two_writers_equal_digests():
    with LocalGroup("mongodb") as group:
        _run_writers(_mongodb_writes, group.leader.server, 150)
        _assert_replicas_agree(group)
