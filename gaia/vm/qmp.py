"""A minimal QMP client: one Unix socket, synchronous commands, events kept aside.

Why not a library: we need five commands (stop, cont, migrate*, query-*, quit) with
sub-millisecond overhead inside a VM pause; QMP is newline-delimited JSON. Never send
dirty-bitmap or dirty-ring commands: they crash QEMU 7.2 under TCG.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Any

from gaia.errors import GaiaError

FORBIDDEN = ("block-dirty-bitmap", "calc-dirty-rate", "set-vcpu-dirty-limit")


class QmpError(GaiaError):
    """QEMU answered a command with an error."""


class Qmp:
    def __init__(self, path: Path, timeout: float = 30.0) -> None:
        self.path = path
        self.timeout = timeout
        self.events: list[dict[str, Any]] = []
        self.sock = self._connect(timeout)
        self.reader = self.sock.makefile("rb")
        self._read()  # greeting
        self.execute("qmp_capabilities")

    def _connect(self, timeout: float) -> socket.socket:
        deadline = time.monotonic() + timeout
        while True:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(str(self.path))
                sock.settimeout(self.timeout)
                return sock
            except OSError as exc:
                sock.close()
                if time.monotonic() > deadline:
                    raise GaiaError(
                        f"QMP socket {self.path} did not accept a connection ({exc})",
                        "check the QEMU log next to it: QEMU may have failed to start",
                    ) from None
                time.sleep(0.02)

    def _read(self) -> dict[str, Any]:
        try:
            line = self.reader.readline()
        except OSError as exc:
            raise GaiaError(f"QMP socket {self.path} failed: {exc}", "see the QEMU log") from None
        if not line:
            raise GaiaError(f"QEMU closed its QMP socket {self.path}", "see the QEMU log")
        return json.loads(line)

    def execute(self, command: str, **arguments: Any) -> Any:
        if any(command.startswith(f) for f in FORBIDDEN):
            raise QmpError(f"QMP command {command} crashes QEMU 7.2 under TCG", "do not send it")
        msg: dict[str, Any] = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            reply = self._read()
            if "event" in reply:
                self.events.append(reply)
                continue
            if "error" in reply:
                err = reply["error"]
                raise QmpError(f"QMP {command} failed: {err.get('desc', err)}", "see the QEMU log")
            return reply.get("return")

    def status(self) -> str:
        return self.execute("query-status")["status"]

    def wait_status(self, wanted: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while (status := self.status()) != wanted:
            if time.monotonic() > deadline:
                raise GaiaError(f"VM stayed {status!r}, expected {wanted!r}", "see the QEMU log")
            time.sleep(0.001)

    def close(self) -> None:
        try:
            self.reader.close()
            self.sock.close()
        except OSError:
            pass
