"""ZooKeeper (Debian's zookeeper 3.8) as a standalone server, kazoo as the client.

Built on the ensemble driver's pieces (gaia.peers.zookeeper): the same JVM command line
and zoo.cfg writer, here without server lines (standalone mode). Digest = hash of every
znode's path and data outside /zookeeper, in path order; snapshot = a dump of those
znodes; restore = delete them and create the dump again. Versions, ACLs and ephemeral
nodes are not kept. The key-value view stores values in znodes under /gaia.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from apps.spawned import SpawnedServer
from gaia.peers.zookeeper import KazooKV, check_installed, java_argv, server_mode, write_config

SYSTEM = "/zookeeper"


def walk(zk, path: str = "/") -> Iterator[tuple[str, bytes]]:
    """(path, data) of every znode below `path` except ZooKeeper's own, parents first."""
    for child in sorted(zk.get_children(path)):
        full = f"{path.rstrip('/')}/{child}"
        if full == SYSTEM:
            continue
        yield full, zk.get(full)[0] or b""
        yield from walk(zk, full)


class ZooKeeper(SpawnedServer):
    name = "zookeeper"
    binary = ("java", "default-jre-headless")

    def prepare(self) -> None:
        data_dir = self.make_data_dir()
        self.config = write_config(data_dir / "zoo.cfg", data_dir / "data", self.port)

    def command(self) -> list[str]:
        if not hasattr(self, "config"):
            self.prepare()
        return java_argv(self.config, self.make_data_dir()) + self.extra_args

    @classmethod
    def find_binary(cls) -> str:
        return check_installed()

    def ready(self) -> bool:
        return server_mode(self.port) == "standalone"

    def client(self) -> KazooKV:
        """A connected kazoo client (`.client` is the KazooClient; put/get/close)."""
        return KazooKV(self.endpoint)

    def znodes(self) -> list[tuple[str, bytes]]:
        kv = self.client()
        try:
            return list(walk(kv.client))
        finally:
            kv.close()

    def digest(self) -> str:
        h = hashlib.sha256()
        for path, data in self.znodes():
            h.update(path.encode() + b"\0" + len(data).to_bytes(4, "little") + data)
        return h.hexdigest()

    def snapshot(self, dest: Path) -> Path:
        dest.mkdir(parents=True, exist_ok=True)
        target = dest / "zookeeper.json"
        target.write_text(json.dumps([[p, base64.b64encode(d).decode()]
                                      for p, d in self.znodes()]))
        return target

    def restore(self, snapshot: Path) -> None:
        kv = self.client()
        try:
            for child in kv.client.get_children("/"):
                if f"/{child}" != SYSTEM:
                    kv.client.delete(f"/{child}", recursive=True)
            for path, data in json.loads(snapshot.read_text()):  # parents come first
                kv.client.create(path, base64.b64decode(data))
        finally:
            kv.close()

    # -- key-value view -----------------------------------------------------------------
    def put(self, key: str, value: bytes) -> None:
        self.put_many([(key, value)])

    def put_many(self, items: Iterable[tuple[str, bytes]]) -> None:
        kv = self.client()
        try:
            for key, value in items:
                kv.put(key, value)
        finally:
            kv.close()

    def get(self, key: str) -> bytes | None:
        kv = self.client()
        try:
            return kv.get(key)
        finally:
            kv.close()
