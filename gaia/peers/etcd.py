"""etcd (Debian's etcd-server 3.4) clusters and two minimal v3 clients.

`EtcdGrpcClient` calls etcd's gRPC API (KV/Put, KV/Range) through grpcio with the few
protobuf messages encoded by hand (protowire.py): the `etcd3` PyPI client imports only
with the slow pure-Python protobuf. It is the client measurements use. `EtcdJsonClient`
speaks the JSON gateway (`POST /v3/kv/put`, `/v3/kv/range`, `/v3/maintenance/status`)
with the standard library only; the harness uses it for status and leader discovery.
(The gateway runs inside etcd and forwards to its gRPC server: one extra hop.)
"""

from __future__ import annotations

import base64
import http.client
import json
from pathlib import Path
from typing import Any

from gaia.errors import GaiaError, MissingBinaryError
from gaia.net import free_ports
from gaia.peers.base import PeerCluster
from gaia.peers.protowire import bytes_field, fields, first

BINARY = ("etcd", "etcd-server")
ELECTION_TIMEOUT_MS = 2500  # 2 cores shared by up to 9 members: the default (1 s) churns
HEARTBEAT_MS = 250


def etcd_binary() -> str:
    import shutil

    path = shutil.which(BINARY[0])
    if path is None:
        raise MissingBinaryError(*BINARY)
    return path


def _b64(data: str | bytes) -> str:
    raw = data.encode() if isinstance(data, str) else data
    return base64.b64encode(raw).decode()


class EtcdJsonClient:
    """put/get/status over the JSON gateway of one member."""

    def __init__(self, endpoint: str, timeout: float = 10.0) -> None:
        host, port = endpoint.rsplit(":", 1)
        self.endpoint = endpoint
        self._conn = http.client.HTTPConnection(host, int(port), timeout=timeout)

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        payload = json.dumps(body)
        try:
            self._conn.request("POST", path, payload, {"Content-Type": "application/json"})
            response = self._conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException) as exc:
            self._conn.close()
            raise GaiaError(f"etcd at {self.endpoint} did not answer {path} ({exc})",
                            "check that the member is running") from None
        if response.status != 200:
            raise GaiaError(f"etcd at {self.endpoint} refused {path}: {data[:200]!r}",
                            "see the member's log")
        return json.loads(data or b"{}")

    def put(self, key: str, value: bytes) -> None:
        self.call("/v3/kv/put", {"key": _b64(key), "value": _b64(value)})

    def get(self, key: str) -> bytes | None:
        kvs = self.call("/v3/kv/range", {"key": _b64(key)}).get("kvs", [])
        return base64.b64decode(kvs[0].get("value", "")) if kvs else None

    def status(self) -> dict[str, Any]:
        return self.call("/v3/maintenance/status", {})

    def close(self) -> None:
        self._conn.close()


class EtcdGrpcClient:
    """put/get over etcd's gRPC API on one member."""

    def __init__(self, endpoint: str, timeout: float = 10.0) -> None:
        import grpc

        self.endpoint = endpoint
        self.timeout = timeout
        self._errors = grpc.RpcError
        self._channel = grpc.insecure_channel(endpoint)
        raw = {"request_serializer": bytes, "response_deserializer": bytes}
        self._put = self._channel.unary_unary("/etcdserverpb.KV/Put", **raw)
        self._range = self._channel.unary_unary("/etcdserverpb.KV/Range", **raw)

    def _call(self, method, request: bytes, what: str) -> bytes:
        try:
            return method(request, timeout=self.timeout)
        except self._errors as exc:
            raise GaiaError(f"etcd at {self.endpoint} failed {what}: {exc.details()}",
                            "check that the member is running and has a leader") from None

    def put(self, key: str, value: bytes) -> None:
        self._call(self._put, bytes_field(1, key.encode()) + bytes_field(2, value), "a put")

    def get(self, key: str) -> bytes | None:
        response = self._call(self._range, bytes_field(1, key.encode()), "a range")
        kvs = [v for n, v in fields(response) if n == 2]
        return first(kvs[0], 5, b"") if kvs else None  # KeyValue.value is field 5

    def close(self) -> None:
        self._channel.close()


def grpc_available() -> bool:
    try:
        import grpc  # noqa: F401
    except ImportError:
        return False
    return True


def member_argv(name: str, data_dir: Path, client_port: int, peer_port: int,
                initial_cluster: str, token: str) -> list[str]:
    """One member's command line (a single member: initial_cluster names only it)."""
    return [
        etcd_binary(), "--name", name, "--data-dir", str(data_dir),
        "--listen-client-urls", f"http://127.0.0.1:{client_port}",
        "--advertise-client-urls", f"http://127.0.0.1:{client_port}",
        "--listen-peer-urls", f"http://127.0.0.1:{peer_port}",
        "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer_port}",
        "--initial-cluster", initial_cluster, "--initial-cluster-state", "new",
        "--initial-cluster-token", token,
        "--election-timeout", str(ELECTION_TIMEOUT_MS),
        "--heartbeat-interval", str(HEARTBEAT_MS),
        "--logger", "zap", "--log-level", "warn",
    ]


class EtcdCluster(PeerCluster):
    name = "etcd"

    def prepare(self) -> None:
        etcd_binary()
        ports = free_ports(2 * self.members)
        self.client_ports = ports[: self.members]
        self.peer_ports = ports[self.members :]
        self.token = self.root.name
        self.initial = ",".join(f"m{i}=http://127.0.0.1:{p}"
                                for i, p in enumerate(self.peer_ports))

    def argv(self, member: int) -> list[str]:
        return member_argv(f"m{member}", self.root / f"m{member}", self.client_ports[member],
                           self.peer_ports[member], self.initial, self.token)

    def endpoint(self, member: int) -> str:
        return f"127.0.0.1:{self.client_ports[member]}"

    def _status(self, member: int) -> dict[str, Any] | None:
        client = EtcdJsonClient(self.endpoint(member), timeout=2)
        try:
            return client.status()
        except GaiaError:
            return None
        finally:
            client.close()

    def member_ready(self, member: int) -> bool:
        status = self._status(member)
        return bool(status and status.get("leader") not in (None, "0"))

    def leader(self) -> int | None:
        for member, process in self.processes.items():
            if not process.alive():
                continue
            status = self._status(member)
            if status and status.get("leader") == status.get("header", {}).get("member_id"):
                return member
        return None

    def client(self, member: int | None = None) -> EtcdGrpcClient | EtcdJsonClient:
        """gRPC when grpcio is installed, else the JSON gateway."""
        if member is None:
            member = self.leader()
        if member is None:
            member = next(m for m, p in self.processes.items() if p.alive())
        kind = EtcdGrpcClient if grpc_available() else EtcdJsonClient
        return kind(self.endpoint(member))
