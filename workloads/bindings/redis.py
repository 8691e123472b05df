"""YCSB's redis binding (site.ycsb.db.RedisClient), on redis-py.

Schema, as the Java binding: one hash per record (key = the YCSB key, one hash field per
YCSB field), plus one sorted set `_indices` holding every inserted key scored by Java's
`String.hashCode()` of the key, which is what scans walk (ZRANGEBYSCORE from the start
key's score, LIMIT 0 n, then one read per key found). The table name is ignored.

Reproduced call by call: insert = HMSET (HSET with several fields) + ZADD (two round
trips), update = HMSET, read = HGETALL (all fields) or HMGET, delete = DEL, and ZREM only
when DEL removed nothing (Java's short-circuit `&&`). Status as Java computes it: a read
with a field list is OK even for an absent key (HMGET returns nils, and Java's result map
then holds null values); HGETALL of an absent key is ERROR (empty result).
Properties: redis.host/redis.port (used when no endpoint is given), redis.password,
redis.timeout (ms, Jedis's default 2000). redis.cluster is not supported (properties.py).
"""

from __future__ import annotations

import redis
import redis.exceptions
from redis.backoff import NoBackoff
from redis.retry import Retry

from workloads.bindings.base import DB, Fields, Values, prop
from workloads.javamath import string_hashcode
from workloads.measurements import ERROR, OK, Status

INDEX_KEY = "_indices"


class RedisDB(DB):
    name = "redis"
    default_port = 6379
    connection_errors = (
        redis.exceptions.ConnectionError,
        redis.exceptions.TimeoutError,
        ConnectionError,
        OSError,
    )

    def _connect(self, host: str, port: int) -> None:
        timeout = float(prop(self.props, "redis.timeout", "2000")) / 1000.0
        # Jedis does not retry; redis-py would, with backoff, by default
        self.client = redis.Redis(
            host=host,
            port=port,
            password=self.props.get("redis.password"),
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
        )
        self.client.ping()  # Jedis.connect(): fail now, not at the first operation

    def _close(self) -> None:
        self.client.close()

    def _read(self, table: str, key: str, fields: Fields) -> tuple[Status, Values]:
        if fields is None:
            raw = self.client.hgetall(key)
            result = {k.decode(): v for k, v in raw.items()}
            return (OK if result else ERROR), result
        values = self.client.hmget(key, fields)
        result = {f: v for f, v in zip(fields, values, strict=True) if v is not None}
        return (OK if fields else ERROR), result

    def _insert(self, table: str, key: str, values: Values) -> Status:
        self.client.hset(key, mapping=values)
        self.client.zadd(INDEX_KEY, {key: float(string_hashcode(key))})
        return OK

    def _update(self, table: str, key: str, values: Values) -> Status:
        self.client.hset(key, mapping=values)
        return OK

    def _delete(self, table: str, key: str) -> Status:
        if self.client.delete(key) == 0 and self.client.zrem(INDEX_KEY, key) == 0:
            return ERROR
        return OK

    def _scan(
        self, table: str, startkey: str, count: int, fields: Fields
    ) -> tuple[Status, list[Values]]:
        keys = self.client.zrangebyscore(
            INDEX_KEY, float(string_hashcode(startkey)), "+inf", start=0, num=count
        )
        return OK, [self._read(table, k.decode(), fields)[1] for k in keys]
