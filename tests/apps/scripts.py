"""The same writes for every app, each through the app's real Python client.

`feed(server, version)` writes a versioned data set (overwriting shared keys, adding a
version-only key, using each server's richer types); `check(server, version)` asserts
that exactly that version is visible. Two servers fed the same version must digest
equal; the snapshot tests restore one version over another.
"""

from __future__ import annotations

from collections.abc import Callable

from apps.base import Server

KEYS = 20


def _value(version: str, i: int) -> str:
    return f"{version}-value-{i}"


# -- redis ----------------------------------------------------------------------------
def feed_redis(server: Server, version: str) -> None:
    with server.client() as r:
        for i in range(KEYS):
            r.set(f"k{i}", _value(version, i))
        r.set(f"only-{version}", "1")
        r.hset("hash", mapping={"a": version, "b": "2"})
        r.rpush("list", version, "x", "y")
        r.sadd("set", version, "m")
        r.zadd("zset", {version: 1.5, "n": 2})
        r.incrby("counter", 7)


def check_redis(server: Server, version: str) -> None:
    with server.client() as r:
        assert [r.get(f"k{i}") for i in range(KEYS)] == [
            _value(version, i).encode() for i in range(KEYS)
        ]
        assert r.get(f"only-{version}") == b"1"
        assert r.hget("hash", "a") == version.encode()
        assert version.encode() in r.lrange("list", 0, -1)
        assert r.sismember("set", version)


# -- memcached ------------------------------------------------------------------------
def feed_memcached(server: Server, version: str) -> None:
    client = server.client()
    try:
        for i in range(KEYS):
            assert client.set(f"k{i}", _value(version, i), flags=i)
        assert client.set(f"only-{version}", "1")
        assert client.set("counter", "10")
        client.incr("counter", 5)
        client.append("k0", "+tail")
    finally:
        client.close()


def check_memcached(server: Server, version: str) -> None:
    client = server.client()
    try:
        got = [client.get(f"k{i}") for i in range(1, KEYS)]
        assert got == [_value(version, i).encode() for i in range(1, KEYS)]
        assert client.get("k0") == (_value(version, 0) + "+tail").encode()
        assert client.get(f"only-{version}") == b"1"
    finally:
        client.close()


# -- mariadb --------------------------------------------------------------------------
def feed_mariadb(server: Server, version: str) -> None:
    with server.client() as conn, conn.cursor() as cur:
        cur.execute(
            "CREATE TABLE IF NOT EXISTS items (id INT AUTO_INCREMENT PRIMARY KEY, "
            "name VARCHAR(64) NOT NULL UNIQUE, n INT NOT NULL)"
        )
        cur.execute("CREATE TABLE IF NOT EXISTS versions (v VARCHAR(32) PRIMARY KEY, note TEXT)")
        cur.executemany(
            "REPLACE INTO items (name, n) VALUES (%s, %s)",
            [(f"k{i}", len(_value(version, i)) + i) for i in range(KEYS)],
        )
        cur.execute("UPDATE items SET n = n * 2 WHERE id % 3 = 0")
        cur.execute("DELETE FROM items WHERE name = 'k5'")
        cur.execute("INSERT INTO versions VALUES (%s, %s)", (version, f"only-{version}"))


def check_mariadb(server: Server, version: str) -> None:
    with server.client() as conn, conn.cursor() as cur:
        cur.execute("SELECT v, note FROM versions")
        assert cur.fetchall() == ((version, f"only-{version}"),)
        cur.execute("SELECT COUNT(*) FROM items")
        assert cur.fetchone() == (KEYS - 1,)


# -- mongodb --------------------------------------------------------------------------
def feed_mongodb(server: Server, version: str) -> None:
    with server.client() as client:
        items = client.ycsb.items
        for i in range(KEYS):
            items.update_one(
                {"_id": f"k{i}"}, {"$set": {"v": _value(version, i), "n": i}}, upsert=True
            )
        items.update_many({"n": {"$gte": 10}}, {"$inc": {"n": 100}})
        items.delete_one({"_id": "k5"})
        client.ycsb.versions.insert_one({"_id": version, "tags": [version, "x"], "b": b"\x00"})


def check_mongodb(server: Server, version: str) -> None:
    with server.client() as client:
        docs = list(client.ycsb.items.find({}).sort("_id", 1))
        assert len(docs) == KEYS - 1
        assert {d["v"] for d in docs} == {_value(version, i) for i in range(KEYS) if i != 5}
        assert [d["_id"] for d in client.ycsb.versions.find({})] == [version]


FEED: dict[str, Callable[[Server, str], None]] = {
    "redis": feed_redis,
    "memcached": feed_memcached,
    "mariadb": feed_mariadb,
    "mongodb": feed_mongodb,
}
CHECK: dict[str, Callable[[Server, str], None]] = {
    "redis": check_redis,
    "memcached": check_memcached,
    "mariadb": check_mariadb,
    "mongodb": check_mongodb,
}
