"""Register clients, one per app: read, write and compare-and-set a string under a key.

Why not the YCSB bindings: a linearizability check needs every operation's real outcome,
and an operation must never be sent twice behind the checker's back. These clients make
exactly one attempt per call (no library retries: redis-py and pymongo retry by default,
which can apply a write twice and show up as a false violation) and say how a call
ended:

- it returns: the operation completed (cas returns False when the compare failed);
- `NotApplied`: it certainly had no effect (the connection could not be opened, so
  nothing was sent);
- any other exception: the outcome is unknown (the request may have been executed).

Schemas: redis and memcached store the value under the key itself (prefixed keys);
MariaDB a table `faults_kv(k, v)`; MongoDB a collection `faults_kv` with `_id = key`.
"""

from __future__ import annotations

import socket
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any

from gaia.errors import ConfigError

# redis cas as one script: atomic on the server, deterministic on every replica.
_REDIS_CAS = (
    "local v = redis.call('GET', KEYS[1]) "
    "if (v == false and ARGV[1] == '') or v == ARGV[1] then "
    "redis.call('SET', KEYS[1], ARGV[2]) return 1 end return 0"
)


class NotApplied(Exception):
    """The operation certainly had no effect (nothing reached the server)."""


class RegisterClient(ABC):
    """One connection to one server; `timeout` bounds every call (seconds)."""

    def __init__(self, host: str, port: int, timeout: float = 1.0) -> None:
        self.host, self.port, self.timeout = host, port, timeout
        try:
            self._connect()
        except Exception as exc:
            raise NotApplied(f"cannot connect to {host}:{port}: {exc}") from exc

    @abstractmethod
    def _connect(self) -> None: ...

    @abstractmethod
    def read(self, key: str) -> str | None: ...

    @abstractmethod
    def write(self, key: str, value: str) -> None: ...

    @abstractmethod
    def cas(self, key: str, old: str | None, new: str) -> bool:
        """Set `new` if the value is `old` (None: the key has no value). True if set."""

    @abstractmethod
    def close(self) -> None: ...

    def _socket(self) -> socket.socket | None:
        """The connection's socket, for `abort` (None: the library hides it)."""
        return None

    def abort(self) -> None:
        """From another thread: end the call in flight (it raises, outcome unknown). A
        leader-aware client does this when the deployment names a new leader, instead
        of waiting for its timeout on a deposed or frozen one."""
        sock = self._socket()
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def setup(self) -> None:  # noqa: B027 - most apps need no schema
        """Create what the schema needs (once, on the leader, before any run)."""


class RedisRegister(RegisterClient):
    def _connect(self) -> None:
        import redis
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        self.conn = redis.Connection(host=self.host, port=self.port,
                                     socket_timeout=self.timeout,
                                     socket_connect_timeout=self.timeout,
                                     retry=Retry(NoBackoff(), 0))
        self.conn.connect()

    def _call(self, *args: Any) -> Any:
        self.conn.send_command(*args)
        return self.conn.read_response()

    def read(self, key: str) -> str | None:
        value = self._call("GET", key)
        return None if value is None else value.decode()

    def write(self, key: str, value: str) -> None:
        self._call("SET", key, value)

    def cas(self, key: str, old: str | None, new: str) -> bool:
        return self._call("EVAL", _REDIS_CAS, 1, key, old or "", new) == 1

    def _socket(self) -> socket.socket | None:
        return self.conn._sock

    def close(self) -> None:
        self.conn.disconnect()


class MemcachedRegister(RegisterClient):
    """memcached's text protocol on a plain socket (one request, one reply)."""

    def _connect(self) -> None:
        self.sock = socket.create_connection((self.host, self.port), timeout=self.timeout)
        self.buf = b""

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("memcached closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _get(self, key: str, command: bytes = b"get") -> tuple[str | None, bytes]:
        self.sock.sendall(command + b" " + key.encode() + b"\r\n")
        header = self._line()
        if header == b"END":
            return None, b""
        parts = header.split()
        if parts[0] != b"VALUE":
            raise ConnectionError(f"unexpected memcached reply {header[:80]!r}")
        value = self._line()
        if self._line() != b"END":
            raise ConnectionError("memcached reply without END")
        return value.decode(), parts[4] if len(parts) > 4 else b""

    def _store(self, command: bytes, key: str, value: str, extra: bytes = b"") -> bytes:
        data = value.encode()
        self.sock.sendall(b"%s %s 0 0 %d%s\r\n%s\r\n" % (command, key.encode(), len(data),
                                                        extra, data))
        return self._line()

    def read(self, key: str) -> str | None:
        return self._get(key)[0]

    def write(self, key: str, value: str) -> None:
        reply = self._store(b"set", key, value)
        if reply != b"STORED":
            raise ConnectionError(f"memcached set answered {reply!r}")

    def cas(self, key: str, old: str | None, new: str) -> bool:
        """gets + cas (or add when `old` is None). A cas refused because the item changed
        since the gets is a failed compare too: values are unique, so it no longer holds
        `old` (an unknown outcome would also be sound, but weaker)."""
        if old is None:
            return self._store(b"add", key, new) == b"STORED"
        current, unique = self._get(key, b"gets")
        if current != old:
            return False
        reply = self._store(b"cas", key, new, b" " + unique)
        if reply == b"STORED":
            return True
        if reply in (b"EXISTS", b"NOT_FOUND"):
            return False
        raise ConnectionError(f"memcached cas answered {reply!r}")

    def _socket(self) -> socket.socket | None:
        return self.sock

    def close(self) -> None:
        self.sock.close()


class MariaDBRegister(RegisterClient):
    TABLE = "faults_kv"

    def _connect(self) -> None:
        import pymysql

        from apps.mariadb import BENCH_USER, DATABASE

        self.conn = pymysql.connect(host=self.host, port=self.port, user=BENCH_USER,
                                    database=DATABASE, autocommit=True,
                                    connect_timeout=max(1, int(self.timeout + 0.999)),
                                    read_timeout=self.timeout, write_timeout=self.timeout)

    def setup(self) -> None:
        with self.conn.cursor() as cur:
            cur.execute(f"CREATE TABLE IF NOT EXISTS {self.TABLE} (k VARCHAR(64) PRIMARY KEY,"
                        " v VARCHAR(64) NOT NULL) ENGINE=InnoDB")

    def read(self, key: str) -> str | None:
        with self.conn.cursor() as cur:
            cur.execute(f"SELECT v FROM {self.TABLE} WHERE k = %s", (key,))
            row = cur.fetchone()
        return None if row is None else row[0]

    def write(self, key: str, value: str) -> None:
        with self.conn.cursor() as cur:
            cur.execute(f"INSERT INTO {self.TABLE} (k, v) VALUES (%s, %s) "
                        "ON DUPLICATE KEY UPDATE v = VALUES(v)", (key, value))

    def cas(self, key: str, old: str | None, new: str) -> bool:
        with self.conn.cursor() as cur:
            if old is None:
                return cur.execute(f"INSERT IGNORE INTO {self.TABLE} (k, v) VALUES (%s, %s)",
                                   (key, new)) == 1
            return cur.execute(f"UPDATE {self.TABLE} SET v = %s WHERE k = %s AND v = %s",
                               (new, key, old)) == 1

    def _socket(self) -> socket.socket | None:
        return self.conn._sock

    def close(self) -> None:
        self.conn.close()


class MongoRegister(RegisterClient):
    COLLECTION = "faults_kv"

    def _connect(self) -> None:
        from pymongo import MongoClient

        ms = int(self.timeout * 1000)
        self.client = MongoClient(self.host, self.port, directConnection=True,
                                  retryWrites=False, retryReads=False,
                                  serverSelectionTimeoutMS=ms, connectTimeoutMS=ms,
                                  socketTimeoutMS=ms, maxPoolSize=1)
        self.client.admin.command("ping")  # connect now: failures here sent nothing
        self.coll = self.client["faults"][self.COLLECTION]

    def read(self, key: str) -> str | None:
        doc = self.coll.find_one({"_id": key})
        return None if doc is None else doc["v"]

    def write(self, key: str, value: str) -> None:
        self.coll.replace_one({"_id": key}, {"v": value}, upsert=True)

    def cas(self, key: str, old: str | None, new: str) -> bool:
        from pymongo.errors import DuplicateKeyError

        if old is None:
            try:
                self.coll.insert_one({"_id": key, "v": new})
            except DuplicateKeyError:
                return False
            return True
        return self.coll.update_one({"_id": key, "v": old}, {"$set": {"v": new}}
                                    ).modified_count == 1

    def close(self) -> None:
        self.client.close()


CLIENTS: dict[str, type[RegisterClient]] = {
    "redis": RedisRegister,
    "memcached": MemcachedRegister,
    "mariadb": MariaDBRegister,
    "mongodb": MongoRegister,
}
APPS = tuple(CLIENTS)
Connector = Callable[[str, int], RegisterClient]


def connector(app: str, timeout: float = 1.0) -> Connector:
    """A function (host, port) -> connected client of `app`."""
    if app not in CLIENTS:
        raise ConfigError(f"no fault-campaign client for app {app!r}",
                          f"choose one of {', '.join(APPS)}")
    cls = CLIENTS[app]
    return lambda host, port: cls(host, port, timeout)
