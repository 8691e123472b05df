"""The one interface every server GAIA runs implements (redis, memcached, mariadb,
mongodb, etcd, zookeeper).

A `Server` finds its binary (or names the Debian package to install), starts on a given
loopback port (a free one when 0) with a fresh temp data dir, waits until it answers,
stops (SIGTERM, then SIGKILL), and exposes a client, a state digest that is equal iff the
data is equal, and snapshot/restore using the server's own mechanism.

Extra environment (e.g. LD_PRELOAD of the interception shim) is passed with `env`; the
interception layer needs the exact command line (`command()`) and a deterministic
configuration (`deterministic=True`: e.g. memcached `-t 1`).
"""

from __future__ import annotations

import abc
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from gaia.errors import MissingBinaryError, UnwritableDirectoryError


class Server(abc.ABC):
    name: ClassVar[str]
    # (binary name, Debian package providing it)
    binary: ClassVar[tuple[str, str]]

    def __init__(
        self,
        port: int = 0,
        data_dir: Path | None = None,
        host: str = "127.0.0.1",
        env: Mapping[str, str] | None = None,
        extra_args: Sequence[str] = (),
        deterministic: bool = False,
    ) -> None:
        self.requested_port = port
        self.port = port
        self.host = host
        self.env = dict(env or {})
        self.extra_args = list(extra_args)
        self.deterministic = deterministic
        self.data_dir = data_dir
        self._owns_data_dir = data_dir is None
        self._data_dir_checked = False
        # Seconds the last start() took until the server answered (None before a start).
        self.start_seconds: float | None = None

    @property
    def server_kind(self) -> str:
        """Which implementation runs (result records carry it; MongoDB has several)."""
        return self.name

    @property
    def endpoint(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """Pid of the server process while it runs."""
        return None

    # -- lifecycle ----------------------------------------------------------------------
    @abc.abstractmethod
    def start(self, timeout: float = 30.0) -> Server:
        """Start and wait until ready; raises GaiaError naming the cause on failure."""

    @abc.abstractmethod
    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `timeout`; idempotent."""

    @abc.abstractmethod
    def alive(self) -> bool: ...

    @abc.abstractmethod
    def command(self) -> list[str]:
        """The exact argv used to start the server (for the interception layer)."""

    # -- data ---------------------------------------------------------------------------
    @abc.abstractmethod
    def client(self) -> Any:
        """A connected client of the server's usual Python library."""

    @abc.abstractmethod
    def digest(self) -> str:
        """A hex digest of the whole state: equal iff the data is equal."""

    @abc.abstractmethod
    def snapshot(self, dest: Path) -> Path:
        """Write a snapshot with the server's own mechanism into `dest`; returns its path."""

    @abc.abstractmethod
    def restore(self, snapshot: Path) -> None:
        """Replace the server's state with `snapshot` (restarting it if needed)."""

    # -- a key-value view for tests, benchmarks and examples (optional) ---------------
    def put(self, key: str, value: bytes) -> None:
        """Store `value` under `key` through the server's usual client."""
        raise NotImplementedError(f"{self.name} has no key-value view")

    def get(self, key: str) -> bytes | None:
        """The value stored under `key`, or None."""
        raise NotImplementedError(f"{self.name} has no key-value view")

    def put_many(self, items: Iterable[tuple[str, bytes]]) -> None:
        for key, value in items:
            self.put(key, value)

    # -- helpers ------------------------------------------------------------------------
    @classmethod
    def find_binary(cls) -> str:
        name, package = cls.binary
        path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin")
        if path is None:
            raise MissingBinaryError(name, package)
        return path

    def make_data_dir(self) -> Path:
        """The data dir, created if needed; UnwritableDirectoryError before any start."""
        if self.data_dir is None:
            self.data_dir = Path(tempfile.mkdtemp(prefix=f"gaia-{self.name}-"))
            self._data_dir_checked = True
        if self._data_dir_checked:
            return self.data_dir
        path = Path(self.data_dir)
        try:
            path.mkdir(parents=True, exist_ok=True)
            # os.access lies for root and read-only mounts: really write a file.
            with tempfile.TemporaryFile(dir=path):
                pass
        except OSError as exc:
            raise UnwritableDirectoryError(str(path), exc.strerror or str(exc)) from None
        self.data_dir = path
        self._data_dir_checked = True
        return path

    def cleanup(self) -> None:
        if self._owns_data_dir and self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.cleanup()
