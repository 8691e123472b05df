"""Real remote hosts over SSH (fabric), listed in an inventory file.

The same `Host` interface as namespaces: run a command, start a background process (its
pid in a pid file next to its log, so a later session can still signal it), copy files.

Inventory (TOML or JSON), one entry per host:

    [[hosts]]
    name = "r1"
    address = "192.168.1.11"
    user = "root"                  # default root (network faults need it)
    key_file = "~/.ssh/id_ed25519"
    port = 22                      # optional
    python = "/usr/bin/python3"    # optional: the interpreter GAIA runs there
    interface = "eth0"             # optional: enables rate limits / partitions there
    workdir = "/tmp/gaia"          # optional: logs and pid files
    known_hosts = "~/.ssh/known_hosts"  # optional: verify host keys (else accepted)

JSON: `{"hosts": [{...}, ...]}`.
"""

from __future__ import annotations

import io
import json
import shlex
import signal
import time
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from gaia import proc
from gaia.cluster.host import Command, Host, HostCommandError, RunResult, as_text
from gaia.errors import ConfigError, GaiaError


@dataclass(frozen=True)
class HostSpec:
    name: str
    address: str
    user: str = "root"
    key_file: str | None = None
    port: int = 22
    python: str = "python3"
    interface: str | None = None
    workdir: str = "/tmp/gaia"
    known_hosts: str | None = None


def load_inventory(path: Path) -> list[HostSpec]:
    """Parse an inventory file; a malformed entry is a ConfigError naming file and host."""
    path = Path(path)
    try:
        text = path.read_text()
        data: Any = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except OSError as exc:
        raise ConfigError(
            f"cannot read inventory {path}: {exc.strerror}", "check the path"
        ) from exc
    except ValueError as exc:
        raise ConfigError(f"inventory {path} does not parse: {exc}", "fix its syntax") from exc
    entries = data.get("hosts") if isinstance(data, dict) else None
    if not isinstance(entries, list) or not entries:
        raise ConfigError(
            f"inventory {path} lists no hosts", 'add [[hosts]] entries (TOML) or a "hosts" list'
        )
    known = {f.name for f in fields(HostSpec)}
    specs = []
    for index, entry in enumerate(entries):
        where = f"inventory {path}, host #{index + 1}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where} is not a table", "give name, address, user, key_file")
        extra = sorted(set(entry) - known)
        missing = [k for k in ("name", "address") if k not in entry]
        if extra or missing:
            raise ConfigError(
                f"{where}: missing {missing} / unknown fields {extra}",
                f"allowed fields: {', '.join(sorted(known))}",
            )
        specs.append(HostSpec(**entry))
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ConfigError(
            f"inventory {path} repeats host names {names}", "give each host its own name"
        )
    return specs


class RemoteHost(Host):
    """A host reached over SSH. Connects on first use; `close()` (or `with`) disconnects."""

    def __init__(self, spec: HostSpec, connect_timeout: float = 10.0) -> None:
        self.spec = spec
        self.name = spec.name
        self.address = spec.address
        self.interface = spec.interface
        self.connect_timeout = connect_timeout
        self._connection: Any = None

    @property
    def connection(self) -> Any:
        if self._connection is None:
            self._connection = self._connect()
        return self._connection

    def _connect(self) -> Any:
        try:
            import fabric
            import paramiko
        except ImportError as exc:
            raise GaiaError(
                "remote hosts need fabric, which is not installed",
                "pip install 'gaia[remote]' (or `.venv/bin/pip install fabric`)",
            ) from exc
        config = fabric.Config(overrides={"load_ssh_configs": False})
        connect_kwargs: dict[str, Any] = {"look_for_keys": False, "allow_agent": False}
        if self.spec.key_file:
            connect_kwargs["key_filename"] = str(Path(self.spec.key_file).expanduser())
        connection = fabric.Connection(
            self.spec.address,
            user=self.spec.user,
            port=self.spec.port,
            config=config,
            connect_kwargs=connect_kwargs,
            connect_timeout=int(self.connect_timeout),
        )
        if self.spec.known_hosts:
            connection.client.load_host_keys(str(Path(self.spec.known_hosts).expanduser()))
            connection.client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            connection.open()
        except Exception as exc:
            raise GaiaError(
                f"cannot reach {self.name} ({self.spec.user}@{self.address}:{self.spec.port}): {exc}",
                "check the inventory's address, user and key_file, and that sshd runs there",
            ) from exc
        return connection

    def run(
        self, command: Command, timeout: float = 60.0, check: bool = True, input: str | None = None
    ) -> RunResult:
        from invoke.exceptions import CommandTimedOut

        text = as_text(command)
        stream = io.StringIO(input) if input is not None else False
        try:
            done = self.connection.run(
                text, hide=True, warn=True, timeout=timeout, in_stream=stream, pty=False
            )
        except CommandTimedOut as exc:
            raise HostCommandError(self.name, text, -1, f"timed out after {timeout} s") from exc
        result = RunResult(text, done.exited, done.stdout, done.stderr)
        if check and not result.ok:
            raise HostCommandError(self.name, text, result.returncode, result.stderr)
        return result

    def spawn(
        self, name: str, argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None
    ) -> RemoteProcess:
        """Start detached (own session, output to `log_path` *on the remote host*).

        The process carries this session's GAIA_OWNER token like locally spawned ones.
        """
        log = str(log_path)
        pid_file = log + ".pid"
        variables = {proc.OWNER_VAR: proc.owner_token(), **(env or {})}
        launch = shlex.join(["env", *(f"{k}={v}" for k, v in variables.items()), "setsid", *argv])
        self.run(["mkdir", "-p", self.spec.workdir, str(Path(log).parent)])
        script = (
            f"cd {shlex.quote(self.spec.workdir)} && {{ {launch} >> {shlex.quote(log)} 2>&1"
            f" < /dev/null & }} && echo $! > {shlex.quote(pid_file)} && cat {shlex.quote(pid_file)}"
        )
        pid = int(self.run(["sh", "-c", script]).stdout.strip())
        return RemoteProcess(name, self, pid, log)

    def put(self, local: Path, remote: str) -> None:
        self.connection.put(str(local), remote)

    def get(self, remote: str, local: Path) -> None:
        self.connection.get(remote, str(local))

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __enter__(self) -> RemoteHost:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class RemoteProcess:
    """A process started by RemoteHost.spawn, controlled through `kill` over SSH."""

    def __init__(self, name: str, host: RemoteHost, pid: int, log_path: str) -> None:
        self.name = name
        self.host = host
        self._pid = pid
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self._pid

    def alive(self) -> bool:
        """Running (zombies and vanished pids are not)."""
        done = self.host.run(["cat", f"/proc/{self._pid}/stat"], check=False)
        return done.ok and done.stdout.rsplit(") ", 1)[-1][:1] not in ("Z", "X", "")

    def signal(self, sig: int) -> None:
        self._signal_all(sig)

    def _wait_gone(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                return True
            time.sleep(0.05)
        return not self.alive()

    def _signal_all(self, *sigs: int) -> None:
        """Several signals in one SSH round trip (each round trip costs ~0.2 s)."""
        script = "; ".join(f"kill -{int(sig)} {self._pid}" for sig in sigs)
        self.host.run(script + " 2>/dev/null; true", check=False)

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after `timeout`. The exit code is not known remotely."""
        self._signal_all(signal.SIGCONT, signal.SIGTERM)
        if not self._wait_gone(timeout):
            self.kill()
        return None

    def kill(self) -> None:
        self._signal_all(signal.SIGCONT, signal.SIGKILL)
        self._wait_gone(5.0)

    def log_tail(self, lines: int = 20) -> str:
        return self.host.run(["tail", "-n", str(lines), self.log_path], check=False).stdout


def connect_inventory(path: Path) -> list[RemoteHost]:
    """RemoteHosts for every inventory entry (connections open lazily)."""
    return [RemoteHost(spec) for spec in load_inventory(path)]
