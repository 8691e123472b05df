"""A process pair for the process backend: one process forked from the other at a
quiescent point, both then fed the same commands (and, on request, per-replica noise).

Why a fork: only clones start from the same memory, as a VM backup starts as a copy of
the leader (separately started processes differ in 28-49% of their pages). The program
maps an anonymous region (the "image"), forks, and each replica serves line commands on
its own Unix socket:
  write PAGE OFFSET LEN SEED   fill bytes from a seeded generator (identical on both)
  noise N                      flip N bytes chosen by the replica's pid (divergence)
  ping
Run as `python -m gaia.vm.forkclone DIR N_PAGES`; `ForkedPair` drives it.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import random
import socket
import sys
import time
from pathlib import Path

from gaia import proc
from gaia.errors import GaiaError
from gaia.vm.process_backend import ProcessStore, Region

PAGE = 4096


def _serve(sock_path: Path, region: mmap.mmap) -> None:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(str(sock_path))
    server.listen(1)
    conn, _ = server.accept()
    reader = conn.makefile("rb")
    for raw in reader:
        words = raw.split()
        if not words:
            continue
        cmd = words[0]
        if cmd == b"write":
            page, offset, length, seed = (int(w) for w in words[1:5])
            start = page * PAGE + offset
            region[start : start + length] = random.Random(seed).randbytes(length)
        elif cmd == b"noise":
            rnd = random.Random(os.getpid() ^ time.monotonic_ns())
            for _ in range(int(words[1])):
                at = rnd.randrange(len(region))
                region[at] = region[at] ^ 0xA5
        conn.sendall(b"ok\n")


def main(argv: list[str]) -> None:
    run_dir, n_pages = Path(argv[0]), int(argv[1])
    # MAP_PRIVATE: after the fork each clone owns its pages (copy on write).
    region = mmap.mmap(-1, n_pages * PAGE, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    for page in range(n_pages):  # touch every page so both clones share a full image
        region[page * PAGE : page * PAGE + 8] = page.to_bytes(8, "little")
    addr = ctypes.addressof(ctypes.c_char.from_buffer(region))
    child = os.fork()
    role = "backup" if child == 0 else "leader"
    (run_dir / f"{role}.info").write_text(f"{os.getpid()} {addr} {n_pages * PAGE}\n")
    try:
        _serve(run_dir / f"{role}.sock", region)
    finally:
        if child == 0:
            os._exit(0)


class ForkedPair:
    """Start the forked pair, send commands to one or both, expose them as PageStores."""

    ROLES = ("leader", "backup")

    def __init__(self, run_dir: Path, n_pages: int, timeout: float = 20.0) -> None:
        self.run_dir = run_dir
        self.process = proc.spawn(
            "forkclone",
            [sys.executable, "-m", "gaia.vm.forkclone", str(run_dir), str(n_pages)],
            run_dir / "forkclone.log",
        )
        self.pids: dict[str, int] = {}
        self.conns: dict[str, socket.socket] = {}
        self.region: Region | None = None
        try:
            self._connect(timeout)
        except BaseException:
            self.stop()
            raise

    def _connect(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for role in self.ROLES:
            info, sock = self.run_dir / f"{role}.info", self.run_dir / f"{role}.sock"
            while not (info.exists() and sock.exists()):
                if time.monotonic() > deadline or not self.process.alive():
                    raise GaiaError(
                        f"the forked {role} did not start: {self.process.log_tail()}",
                        f"see {self.process.log_path}",
                    )
                time.sleep(0.01)
            pid, addr, length = (int(x) for x in info.read_text().split())
            self.pids[role] = pid
            self.region = Region(addr, length)
            self.conns[role] = _connect_unix(sock, deadline)

    def send(self, role: str, command: str) -> None:
        conn = self.conns[role]
        conn.sendall(command.encode() + b"\n")
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = conn.recv(16)
            if not chunk:
                raise GaiaError(f"the forked {role} closed its socket", "see forkclone.log")
            reply += chunk

    def both(self, command: str) -> None:
        for role in self.ROLES:
            self.send(role, command)

    def store(self, role: str) -> ProcessStore:
        assert self.region is not None
        return ProcessStore(self.pids[role], [self.region])

    def stop(self) -> None:
        for conn in self.conns.values():
            conn.close()
        for pid in self.pids.values():
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass
        self.process.kill()
        for pid in self.pids.values():  # the backup is the leader's child: reap is its job
            _wait_gone(pid)


def _connect_unix(path: Path, deadline: float) -> socket.socket:
    """Connect once the clone listens (its socket file appears at bind, before listen)."""
    while True:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.connect(str(path))
            return conn
        except ConnectionRefusedError:
            conn.close()
            if time.monotonic() > deadline:
                raise GaiaError(f"the forked clone never listened on {path}",
                                "see forkclone.log") from None
            time.sleep(0.01)


def _wait_gone(pid: int, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0]
        except OSError:
            return
        if state == "Z":
            return
        time.sleep(0.01)


if __name__ == "__main__":
    main(sys.argv[1:])
