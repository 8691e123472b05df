"""etcd (Debian's etcd-server 3.4) as a single-member server.

Built on the cluster driver's pieces (gaia.peers.etcd): the same member command line
with a one-member initial cluster, the same gRPC / JSON-gateway clients. etcdctl is not
packaged here, so digest, snapshot and restore go through the KV API: digest = hash of
every key and value in key order; snapshot = a dump of every key and value; restore =
delete everything and put the dump back. Revisions, leases and watches are not kept.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path

from apps.spawned import SpawnedServer
from gaia.net import free_port
from gaia.peers.etcd import (
    EtcdGrpcClient,
    EtcdJsonClient,
    grpc_available,
    member_argv,
)

ALL_KEYS = {"key": base64.b64encode(b"\0").decode(), "range_end": base64.b64encode(b"\0").decode()}


class Etcd(SpawnedServer):
    name = "etcd"
    binary = ("etcd", "etcd-server")

    def prepare(self) -> None:
        self.peer_port = free_port()

    def command(self) -> list[str]:
        if getattr(self, "peer_port", None) is None:
            self.prepare()
        peer = self.peer_port
        return member_argv("gaia", self.make_data_dir() / "member", self.port, peer,
                           f"gaia=http://{self.host}:{peer}", f"gaia-{self.port}") \
            + self.extra_args

    def _json(self, timeout: float = 10.0) -> EtcdJsonClient:
        return EtcdJsonClient(self.endpoint, timeout=timeout)

    def ready(self) -> bool:
        client = self._json(timeout=1.0)
        try:
            return client.status().get("leader") not in (None, "0")
        finally:
            client.close()

    def client(self) -> EtcdGrpcClient | EtcdJsonClient:
        """A gRPC client (put/get/close), or the JSON-gateway one without grpcio."""
        return EtcdGrpcClient(self.endpoint) if grpc_available() else self._json()

    def items(self) -> list[tuple[bytes, bytes]]:
        """Every (key, value) in key order."""
        client = self._json()
        try:
            kvs = client.call("/v3/kv/range", ALL_KEYS).get("kvs", [])
        finally:
            client.close()
        return sorted((base64.b64decode(kv["key"]), base64.b64decode(kv.get("value", "")))
                      for kv in kvs)

    def digest(self) -> str:
        h = hashlib.sha256()
        for key, value in self.items():
            h.update(len(key).to_bytes(4, "little") + key + len(value).to_bytes(4, "little")
                     + value)
        return h.hexdigest()

    def snapshot(self, dest: Path) -> Path:
        dest.mkdir(parents=True, exist_ok=True)
        target = dest / "etcd.json"
        target.write_text(json.dumps([[base64.b64encode(k).decode(), base64.b64encode(v).decode()]
                                      for k, v in self.items()]))
        return target

    def restore(self, snapshot: Path) -> None:
        client = self._json()
        try:
            client.call("/v3/kv/deleterange", ALL_KEYS)
            for key, value in json.loads(snapshot.read_text()):
                client.call("/v3/kv/put", {"key": key, "value": value})
        finally:
            client.close()

    # -- key-value view -----------------------------------------------------------------
    def put(self, key: str, value: bytes) -> None:
        self.put_many([(key, value)])

    def put_many(self, items: Iterable[tuple[str, bytes]]) -> None:
        client = self.client()
        try:
            for key, value in items:
                client.put(key, value)
        finally:
            client.close()

    def get(self, key: str) -> bytes | None:
        client = self.client()
        try:
            return client.get(key)
        finally:
            client.close()
