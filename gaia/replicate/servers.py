"""The server of one replica: an `apps` server, or any command given with placeholders.

Every replica's server runs with the shim preloaded (its ring = the local APUS replica's
input ring) in the deterministic configuration of its app (memcached `-t 1`, MariaDB's
one-thread pool); multi-threaded ones also get the shim's serialize gate
(local_group.shim_settings). The generic form runs `CMD ARGS` with `{port}` and `{dir}`
filled in; it is ready when its port accepts a connection, and has no state digest.
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path
from typing import Any

import apps
from apps.base import Server
from apps.spawned import SpawnedServer
from gaia.apus.ringio import ring_name
from gaia.errors import GaiaError
from gaia.intercept.build import preload_env
from gaia.intercept.local_group import shim_settings
from gaia.replicate.spec import ReplicateSpec

# Settings that make a server answer identically on every replica, beyond the app's own
# deterministic=True. Redis: a hash stored as a hashtable answers HGETALL/HKEYS/HVALS in
# the order of its randomly seeded dict (measured: YCSB's 10 x 100 B records diverged on
# every HGETALL); kept as a listpack it answers in insertion order on every replica.
REPLICA_ARGS: dict[str, list[str]] = {
    "redis": ["--hash-max-listpack-entries", "1024", "--hash-max-listpack-value", "4096"],
}


def replica_args(app: str | None) -> list[str]:
    """Extra server arguments for identical answers on every replica (also used by
    unreplicated baselines, so that both run the same configuration)."""
    return list(REPLICA_ARGS.get(app or "", []))


class NoDigestError(GaiaError):
    def __init__(self, what: str) -> None:
        super().__init__(f"{what} has no state digest (a generic command)",
                         "replicate one of the known apps (--app) to compare replicas")


class CommandServer(SpawnedServer):
    """Any TCP server started from an argv template (`gaia replicate -- CMD ARGS`)."""

    name = "command"
    binary = ("", "")

    def __init__(self, argv_template: list[str], spec: ReplicateSpec, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.template = list(argv_template)
        self.spec = spec

    def find_binary(self) -> str:  # type: ignore[override]
        program = self.template[0]
        path = shutil.which(program)
        if path is None:
            raise GaiaError(f"the server command `{program}` was not found",
                            "give its full path, or install it")
        return path

    def command(self) -> list[str]:
        argv = self.spec.server_command(self.port, self.make_data_dir())
        return [self.find_binary(), *argv[1:]]

    def ready(self) -> bool:
        with socket.create_connection((self.host, self.port), timeout=1.0):
            return True

    def client(self) -> Any:
        raise NoDigestError(f"`{self.template[0]}`")

    def digest(self) -> str:
        raise NoDigestError(f"`{self.template[0]}`")

    def snapshot(self, dest: Path) -> Path:
        raise NoDigestError(f"`{self.template[0]}`")

    def restore(self, snapshot: Path) -> None:
        raise NoDigestError(f"`{self.template[0]}`")


def server_env(spec: ReplicateSpec, replica: int) -> dict[str, str]:
    """LD_PRELOAD of the shim, its ring, and the app's shim settings."""
    return preload_env(ring_name(spec.group_id, replica),
                       **shim_settings(spec.app or "", spec.serialize))


def make_server(spec: ReplicateSpec, replica: int, data_dir: Path) -> Server:
    """The (not started) server of `replica`, on its fixed port, under the shim."""
    common = dict(port=spec.app_ports[replica], host=spec.hosts.get(replica, "127.0.0.1"),
                  env=server_env(spec, replica), data_dir=data_dir, deterministic=True)
    if spec.app is None:
        return CommandServer(spec.command or [], spec, **common)
    return apps.get(spec.app)(**common, extra_args=replica_args(spec.app), **spec.server_args)


def after_start(spec: ReplicateSpec, server: Server) -> None:
    """Local setup every replica does the same way before any replicated input: MariaDB's
    passwordless bench user from any host (clients reach a namespace's server from the
    bridge address, not 127.0.0.1)."""
    if spec.app != "mariadb" or server.host in ("127.0.0.1", "localhost"):
        return
    from apps.mariadb import BENCH_USER, DATABASE

    with server._admin() as conn, conn.cursor() as cur:  # type: ignore[attr-defined]
        cur.execute(f"CREATE USER IF NOT EXISTS '{BENCH_USER}'@'%'")
        cur.execute(f"GRANT ALL PRIVILEGES ON {DATABASE}.* TO '{BENCH_USER}'@'%'")
