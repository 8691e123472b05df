"""The lifecycle shared by servers that run as one child process.

Start = check the data dir, pick the port, spawn through `gaia.proc` (so the session's
leak check sees the process), then poll a protocol-level ready probe while watching the
process: a server that dies while starting is reported with its log tail, and a port
taken between picking and binding is retried on a fresh port when the caller asked for
"any port" (0) — otherwise it is a PortInUseError.
"""

from __future__ import annotations

import abc
import os
import shutil
import tempfile
import time
from pathlib import Path

from apps.base import Server
from gaia import proc
from gaia.errors import ConfigError, GaiaError, PortInUseError
from gaia.net import port_in_use, resolve_port

# Unix socket paths are limited to 108 bytes; leave room for the file name.
_MAX_SOCKET_DIR = 80
_PORT_RACE_RETRIES = 3


class SpawnedServer(Server):
    """A `Server` backed by one `gaia.proc.Process`; subclasses say how to run and probe."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.process: proc.Process | None = None
        self._socket_dir: Path | None = None

    # -- what a subclass provides -----------------------------------------------------
    @abc.abstractmethod
    def ready(self) -> bool:
        """True once the server answers its own protocol (not merely accepts TCP)."""

    def prepare(self) -> None:
        """Runs before every start with the data dir in place (e.g. initialise it)."""

    def after_start(self) -> None:
        """Runs after every successful start (e.g. create the bench database once)."""

    # -- paths --------------------------------------------------------------------------
    @property
    def log_path(self) -> Path:
        return self.make_data_dir() / "server.log"

    def socket_path(self, name: str) -> Path:
        """A unix socket path inside the data dir, or a short temp dir when that is long."""
        data_dir = self.make_data_dir()
        if len(str(data_dir)) <= _MAX_SOCKET_DIR:
            return data_dir / name
        if self._socket_dir is None:
            self._socket_dir = Path(tempfile.mkdtemp(prefix=f"gaia-{self.name}-sock-"))
        return self._socket_dir / name

    # -- lifecycle ----------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self.process.pid if self.alive() else None

    def alive(self) -> bool:
        return self.process is not None and self.process.alive()

    def start(self, timeout: float = 30.0) -> SpawnedServer:
        if self.alive():
            return self
        self.find_binary()
        self.make_data_dir()
        any_port = self.requested_port == 0 and self.port == 0
        attempts = _PORT_RACE_RETRIES if any_port else 1
        for attempt in range(attempts):
            self.port = resolve_port(self.port, f"{self.name} server")
            self.prepare()
            began = time.monotonic()
            self.process = proc.spawn(self.name, self.command(), self.log_path, env=self._env())
            try:
                self._wait_ready(timeout)
            except _PortTaken:
                if attempt + 1 == attempts:
                    raise PortInUseError(self.port, f"{self.name} server") from None
                self.port = 0
                continue
            self.start_seconds = time.monotonic() - began
            self.after_start()
            return self
        raise AssertionError("unreachable")

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is not None:
            self.process.stop(timeout)

    def restart(self, timeout: float = 30.0) -> None:
        """Stop and start again on the same port with the same data dir."""
        self.stop()
        self.start(timeout)

    def cleanup(self) -> None:
        super().cleanup()
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None

    # -- internals ----------------------------------------------------------------------
    def _env(self) -> dict[str, str] | None:
        return {**os.environ, **self.env} if self.env else None

    def _wait_ready(self, timeout: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.process.alive():
                self._report_death()
            try:
                if self.ready():
                    return
            except Exception:  # any client error while starting means "not yet"
                pass
            time.sleep(0.02)
        self.process.stop(2.0)
        raise GaiaError(
            f"{self.name} did not answer on {self.endpoint} within {timeout:.0f} s "
            f"(log {self.log_path}: {_one_line(self.process.log_tail(3))})",
            "look at the log; on a loaded machine pass a longer timeout",
        )

    def _report_death(self) -> None:
        assert self.process is not None
        code = self.process.popen.poll()
        if port_in_use(self.port):
            raise _PortTaken
        raise GaiaError(
            f"{self.name} exited with code {code} while starting "
            f"(log {self.log_path}: {_one_line(self.process.log_tail(3))})",
            "read the log; check extra arguments and the data dir",
        )


def one_of(what: str, value: str, choices: tuple[str, ...]) -> str:
    """`value` if it is one of `choices`, else a ConfigError naming them."""
    if value not in choices:
        raise ConfigError(f"unknown {what} {value!r}", f"use one of {', '.join(choices)}")
    return value


class _PortTaken(Exception):
    """The server died because something else bound its port first."""


def _one_line(text: str) -> str:
    return " | ".join(line.strip() for line in text.splitlines() if line.strip())
