"""A tiny request/answer channel to an agent: one JSON line each way on a unix socket.

Why: the agent owns its server object (ports, sockets, data dir) and its replayer, so
questions about them — the server's state digest, how far the replayer got — are asked
of the agent rather than re-derived elsewhere. A unix socket in the replica's directory
works across network namespaces (the file system is shared). A path longer than a unix
socket address can hold (108 bytes; deep run dirs such as pytest's) is bound as a short
stand-in under /tmp/gaia-sock named by the path's hash; server and callers map it alike.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gaia.errors import GaiaError

SOCKET_NAME = "agent.sock"
SHORT_DIR = Path("/tmp/gaia-sock")
_MAX_PATH = 100  # sun_path holds 108 bytes with the NUL; keep a margin
Handler = Callable[[dict[str, Any]], dict[str, Any]]


def bindable(path: Path) -> Path:
    """`path` itself, or its short stand-in when it is too long for a unix socket."""
    if len(os.fsencode(str(path))) <= _MAX_PATH:
        return path
    SHORT_DIR.mkdir(mode=0o700, exist_ok=True)
    return SHORT_DIR / (hashlib.sha256(os.fsencode(str(path))).hexdigest()[:24] + ".sock")


class ControlServer:
    """Answers requests on `path` with `handler(request)` on a background thread each."""

    def __init__(self, path: Path, handler: Handler) -> None:
        self.path = bindable(Path(path))
        self.handler = handler
        self.path.unlink(missing_ok=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(self.path))
        os.chmod(self.path, 0o600)
        self.sock.listen(16)
        self._thread = threading.Thread(target=self._serve, name="agent-control", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _answer(self, conn: socket.socket) -> None:
        with conn, conn.makefile("rwb") as stream:
            line = stream.readline()
            try:
                answer = {"ok": True, **self.handler(json.loads(line))}
            except GaiaError as exc:
                answer = {"ok": False, "problem": exc.problem, "fix": exc.fix}
            except Exception as exc:  # the caller gets it as a GaiaError
                answer = {"ok": False, "problem": f"{type(exc).__name__}: {exc}", "fix": ""}
            stream.write(json.dumps(answer).encode() + b"\n")
            stream.flush()

    def close(self) -> None:
        self.sock.close()
        self.path.unlink(missing_ok=True)


def call(path: Path, request: dict[str, Any], timeout: float = 120.0) -> dict[str, Any]:
    """Send one request; the answer, or a GaiaError (agent gone, or its own error)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(bindable(Path(path))))
            with sock.makefile("rwb") as stream:
                stream.write(json.dumps(request).encode() + b"\n")
                stream.flush()
                line = stream.readline()
    except OSError as exc:
        raise GaiaError(f"the agent at {path} does not answer ({exc})",
                        "check the replica's agent.log; is the replica running?") from None
    if not line:
        raise GaiaError(f"the agent at {path} closed the channel without an answer",
                        "check the replica's agent.log")
    answer = json.loads(line)
    if not answer.pop("ok", False):
        raise GaiaError(answer.get("problem", "agent error"), answer.get("fix", ""))
    return answer
