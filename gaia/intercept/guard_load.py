"""A steady write load against a replicated server, for the guard's tests and measurements.

Why: a checkpoint and a recovery must be right while clients keep writing — on
connections that stay open across the checkpoint (their later inputs are in the log
suffix a recovered replica replays) and on connections opened and closed meanwhile. The
writes append to a few hot keys, so a lost, repeated or reordered input changes the
final state and the digests disagree.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

HOT_KEYS = 16
_MARIADB_TABLE = "CREATE TABLE IF NOT EXISTS guard_load (k INT PRIMARY KEY, v LONGTEXT)"


def _redis(client: Any, i: int, tag: str) -> None:
    client.append(f"g{i % HOT_KEYS}", f"{tag}{i};")


def _memcached(client: Any, i: int, tag: str) -> None:
    key = f"g{i % HOT_KEYS}"
    if not client.append(key, f"{tag}{i};"):
        client.add(key, f"{tag}{i};")


def _mariadb(client: Any, i: int, tag: str) -> None:
    with client.cursor() as cur:
        cur.execute("INSERT INTO guard_load (k, v) VALUES (%s, %s) "
                    "ON DUPLICATE KEY UPDATE v = CONCAT(v, VALUES(v))",
                    (i % HOT_KEYS, f"{tag}{i};"))


def _mongodb(client: Any, i: int, tag: str) -> None:
    client.ycsb.guard_load.update_one({"_id": i % HOT_KEYS}, {"$push": {"v": f"{tag}{i}"}},
                                      upsert=True)


WRITES: dict[str, Callable[[Any, int, str], None]] = {
    "redis": _redis, "memcached": _memcached, "mariadb": _mariadb, "mongodb": _mongodb,
}


def prepare(app: str, server: Any) -> None:
    """Create what the writes need (MariaDB's table), through the leader."""
    if app == "mariadb":
        with server.client() as conn, conn.cursor() as cur:
            cur.execute(_MARIADB_TABLE)


class WriteLoad:
    """Writes on one long-lived connection from a thread until stopped; every
    `reconnect_every` writes it also writes once on a short-lived connection."""

    def __init__(self, app: str, server: Any, reconnect_every: int = 200) -> None:
        self.app = app
        self.server = server
        self.write = WRITES[app]
        self.reconnect_every = reconnect_every
        self.ops = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"load-{app}", daemon=True)

    def _run(self) -> None:
        client = self.server.client()
        try:
            while not self._stop.is_set():
                self.write(client, self.ops, "a")
                self.ops += 1
                if self.reconnect_every and self.ops % self.reconnect_every == 0:
                    short = self.server.client()
                    try:
                        self.write(short, self.ops, "b")
                    finally:
                        short.close()
        except BaseException as exc:  # reported by stop()
            self.error = exc
        finally:
            client.close()

    def wait_ops(self, count: int, timeout: float = 60.0) -> None:
        """Block until `count` more writes were made."""
        target = self.ops + count
        deadline = time.monotonic() + timeout
        while self.ops < target and self.error is None and time.monotonic() < deadline:
            time.sleep(0.01)
        if self.error is not None:
            raise self.error
        if self.ops < target:
            raise TimeoutError(f"the write load made {self.ops} of {target} writes in {timeout} s")

    def start(self) -> WriteLoad:
        self._thread.start()
        return self

    def stop(self) -> int:
        """Stop; returns the number of writes made (raises the load's error, if any)."""
        self._stop.set()
        self._thread.join(60)
        if self.error is not None:
            raise self.error
        return self.ops

    def __enter__(self) -> WriteLoad:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)
