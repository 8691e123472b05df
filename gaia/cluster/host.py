"""What a host is to the harness: run a command, start a process, move files.

Local processes, network namespaces and SSH hosts all offer this one interface, so a
deployment, the nemesis and a fault campaign are written once and run on any of them.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from gaia import proc
from gaia.errors import GaiaError

Command = Sequence[str] | str


class HostCommandError(GaiaError):
    """A command run on a host exited non-zero."""

    def __init__(self, host: str, command: str, returncode: int, stderr: str) -> None:
        tail = " | ".join(stderr.strip().splitlines()[-3:])
        super().__init__(
            f"`{command}` on host {host} exited with {returncode}: {tail or 'no error output'}",
            "check that the host has the program and the permissions the command needs",
        )
        self.returncode = returncode


@dataclass(frozen=True)
class RunResult:
    command: str
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


class HostProcess(Protocol):
    """A long-lived process on some host (gaia.proc.Process satisfies it)."""

    name: str

    @property
    def pid(self) -> int: ...

    def alive(self) -> bool: ...

    def signal(self, sig: int) -> None: ...

    def stop(self, timeout: float = 10.0) -> int | None: ...

    def kill(self) -> None: ...

    def log_tail(self, lines: int = 20) -> str: ...


def as_argv(command: Command) -> list[str]:
    """A string is a shell command line; a sequence is an argv."""
    return ["sh", "-c", command] if isinstance(command, str) else list(command)


def as_text(command: Command) -> str:
    return command if isinstance(command, str) else shlex.join(command)


class Host(ABC):
    """A machine (or namespace) processes run on; `address` is how peers reach it."""

    name: str
    address: str
    # Network device for rate limits; None where the host has no network of its own.
    interface: str | None = None

    @property
    def network_faults(self) -> bool:
        """Whether partitions, loss and rate limits can act on this host's traffic."""
        return self.interface is not None

    @abstractmethod
    def run(
        self, command: Command, timeout: float = 60.0, check: bool = True, input: str | None = None
    ) -> RunResult:
        """Run to completion, capturing output; `check` raises HostCommandError on failure."""

    @abstractmethod
    def spawn(
        self, name: str, argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None
    ) -> HostProcess:
        """Start a long-lived process in the background, its output appended to `log_path`."""

    @abstractmethod
    def put(self, local: Path, remote: str) -> None: ...

    @abstractmethod
    def get(self, remote: str, local: Path) -> None: ...

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.address!r})"


def run_local(
    host: str, argv: list[str], text: str, timeout: float, check: bool, input: str | None
) -> RunResult:
    """subprocess.run with the Host.run contract."""
    try:
        done = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, input=input, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise HostCommandError(host, text, -1, f"timed out after {timeout} s") from exc
    result = RunResult(text, done.returncode, done.stdout, done.stderr)
    if check and not result.ok:
        raise HostCommandError(host, text, result.returncode, result.stderr)
    return result


class LocalHost(Host):
    """This machine's root namespace: every replica of a shm deployment lives here."""

    def __init__(self, name: str = "local", address: str = "127.0.0.1") -> None:
        self.name = name
        self.address = address
        self.interface = None  # loopback traffic is not a network to fault

    def wrap(self, argv: list[str]) -> list[str]:
        """The argv that runs `argv` on this host (subclasses enter a namespace)."""
        return argv

    def run(
        self, command: Command, timeout: float = 60.0, check: bool = True, input: str | None = None
    ) -> RunResult:
        argv = self.wrap(as_argv(command))
        return run_local(self.name, argv, as_text(command), timeout, check, input)

    def spawn(
        self, name: str, argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None
    ) -> HostProcess:
        return proc.spawn(name, self.wrap(list(argv)), log_path, env=env)

    def put(self, local: Path, remote: str) -> None:
        shutil.copyfile(local, remote)

    def get(self, remote: str, local: Path) -> None:
        shutil.copyfile(remote, local)
