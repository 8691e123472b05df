"""Redis (Debian's redis-server 7.0): no persistence unless asked, digest = DEBUG DIGEST.

Clients use TCP on 127.0.0.1:port; the harness's own requests (readiness, digest, SAVE)
go through a unix socket in the data dir, so they never mix with the client traffic that
the interception layer replicates. Redis executes commands on one thread, so it needs no
extra setting to be deterministic; what still differs between replicas fed the same
commands (KEYS/SCAN order, RANDOMKEY, SPOP, absolute expire times, which DEBUG DIGEST
covers) is listed in DESIGN.md.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from apps.spawned import SpawnedServer

RDB_FILE = "dump.rdb"
_PIPELINE_BATCH = 1000


class Redis(SpawnedServer):
    name = "redis"
    binary = ("redis-server", "redis-server")

    def command(self) -> list[str]:
        return [
            self.find_binary(),
            "--port", str(self.port),
            "--bind", self.host,
            "--unixsocket", str(self.socket_path("redis.sock")),
            "--unixsocketperm", "700",
            "--dir", str(self.make_data_dir()),
            "--dbfilename", RDB_FILE,
            # No persistence by default: snapshots are explicit (SAVE in snapshot()).
            "--save", "",
            "--appendonly", "no",
            "--protected-mode", "no",
            # Debian's 7.0 refuses DEBUG unless enabled; "local" = loopback/unix only.
            "--enable-debug-command", "local",
            "--daemonize", "no",
            *self.extra_args,
        ]  # fmt: skip

    def _admin(self) -> redis.Redis:
        # No retries: redis-py's default backs off for seconds on a refused connection,
        # which would turn every early readiness probe into a multi-second wait.
        return redis.Redis(
            unix_socket_path=str(self.socket_path("redis.sock")), retry=Retry(NoBackoff(), 0)
        )

    def ready(self) -> bool:
        with self._admin() as conn:
            return bool(conn.ping())

    def client(self) -> redis.Redis:
        return redis.Redis(host=self.host, port=self.port)

    def digest(self) -> str:
        """DEBUG DIGEST: a SHA1 over every key, value and expire time (40 zeros = empty)."""
        with self._admin() as conn:
            value = conn.execute_command("DEBUG", "DIGEST")
        return value.decode() if isinstance(value, bytes) else str(value)

    def snapshot(self, dest: Path) -> Path:
        """SAVE (synchronous RDB write) and copy the RDB file into `dest`."""
        dest.mkdir(parents=True, exist_ok=True)
        with self._admin() as conn:
            conn.save()
        target = dest / "redis.rdb"
        shutil.copyfile(self.make_data_dir() / RDB_FILE, target)
        return target

    def restore(self, snapshot: Path) -> None:
        """Stop, put the RDB file in place, start: Redis loads it while starting."""
        self.stop()
        shutil.copyfile(snapshot, self.make_data_dir() / RDB_FILE)
        self.start()

    # -- key-value view -----------------------------------------------------------------
    def put(self, key: str, value: bytes) -> None:
        with self.client() as conn:
            conn.set(key, value)

    def get(self, key: str) -> bytes | None:
        with self.client() as conn:
            return conn.get(key)

    def put_many(self, items: Iterable[tuple[str, bytes]]) -> None:
        with self.client() as conn:
            pipe = conn.pipeline(transaction=False)
            for count, (key, value) in enumerate(items, 1):
                pipe.set(key, value)
                if count % _PIPELINE_BATCH == 0:
                    pipe.execute()
            pipe.execute()
