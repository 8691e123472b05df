"""memcached 1.6: TCP only (`-U 0`), one worker thread when deterministic (`-t 1`).

Digest: every item enumerated with `lru_crawler metadump all`, fetched with its flags by
meta-get, and hashed sorted by key; the enumeration is checked against the server's item
count, so the digest is sound as long as no client writes concurrently (see
`memcached_wire.Wire.all_items`).

Snapshot = a dump of every (key, flags, remaining TTL, value) into one file; restore =
`flush_all` and set them back. Chosen over the restartable cache (`-e /dev/shm/file` +
SIGUSR1) because it works while the server runs, needs no second-long wait between
restarts, and the file holds only the data rather than the whole cache memory. What it
does not keep: LRU order, CAS values and eviction statistics.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from pymemcache.client.base import Client

from apps.memcached_wire import Item, Wire, batched, decode_dump, digest_items, encode_dump
from apps.spawned import SpawnedServer
from gaia.errors import GaiaError

_SET_BATCH = 1000


class Memcached(SpawnedServer):
    name = "memcached"
    binary = ("memcached", "memcached")

    def __init__(self, *args, memory_mb: int = 64, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.memory_mb = memory_mb

    def command(self) -> list[str]:
        argv = [
            self.find_binary(),
            "-l", self.host,
            "-p", str(self.port),
            "-U", "0",
            "-m", str(self.memory_mb),
        ]  # fmt: skip
        if os.geteuid() == 0:
            argv += ["-u", "root"]  # memcached refuses to run as root otherwise
        if self.deterministic:
            argv += ["-t", "1"]
        return argv + self.extra_args

    def _wire(self) -> Wire:
        return Wire(self.host, self.port)

    def ready(self) -> bool:
        # A short timeout: while starting, whatever listens may not be our memcached.
        with Wire(self.host, self.port, timeout=1.0) as wire:
            return wire.version().startswith("VERSION")

    def client(self) -> Client:
        # noreply off: a write has happened when the call returns.
        return Client((self.host, self.port), default_noreply=False)

    def items(self) -> list[Item]:
        with self._wire() as wire:
            return wire.all_items()

    def digest(self) -> str:
        return digest_items(self.items())

    def snapshot(self, dest: Path) -> Path:
        dest.mkdir(parents=True, exist_ok=True)
        target = dest / "memcached.dump"
        target.write_bytes(encode_dump(self.items()))
        return target

    def restore(self, snapshot: Path) -> None:
        items = decode_dump(snapshot.read_bytes())
        with self._wire() as wire:
            wire.flush_all()
            wire.load(items)

    # -- key-value view -----------------------------------------------------------------
    def put(self, key: str, value: bytes) -> None:
        self.put_many([(key, value)])

    def get(self, key: str) -> bytes | None:
        client = self.client()
        try:
            return client.get(key)
        finally:
            client.close()

    def put_many(self, items: Iterable[tuple[str, bytes]]) -> None:
        client = self.client()
        try:
            pending = list(items)
            for batch in batched(pending, _SET_BATCH):
                failed = client.set_many(dict(batch))
                if failed:
                    raise GaiaError(
                        f"memcached did not store {len(failed)} keys (e.g. {failed[0]!r})",
                        "give memcached more memory (memory_mb) or store smaller values",
                    )
        finally:
            client.close()
