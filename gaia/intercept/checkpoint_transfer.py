"""Moving a checkpoint from one guard to another over TCP (until APUS carries snapshots).

Why: a brand-new replica, or one whose own checkpoints are gone, has nothing to restore
from; another replica's guard has. The protocol is one request line and one answer:
  client: "GET newest\\n", "GET <index>\\n" or "GET atleast <index>\\n" (the newest,
          if it is that recent; else the server takes one now when it can: a replica
          that restarts after its group compacted the log needs one that recent)
  server: one JSON line — the checkpoint's record (checkpoint_store.Checkpoint), or
          {"error": "..."} — then, for a record, an uncompressed tar stream of its
          directory.
The receiver unpacks into a staging directory and commits it to its own store, which
checks the record's size and checksum: a damaged transfer is refused, never used. The
server sends only checkpoints that pass their own checks (the newest usable one).
write_checkpoint()/read_checkpoint() are that byte format on any stream, so APUS's own
snapshot transfer can carry a checkpoint as bytes (io.BytesIO) instead of this socket.
"""

from __future__ import annotations

import json
import shutil
import socket
import socketserver
import tarfile
import threading
from collections.abc import Callable
from typing import BinaryIO

from gaia.errors import GaiaError
from gaia.intercept.checkpoint_store import Checkpoint, CheckpointError, CheckpointStore

_TIMEOUT = 60.0
_CONNECT_TIMEOUT = 5.0


class _Handler(socketserver.StreamRequestHandler):
    server: _Server

    def handle(self) -> None:
        try:
            words = self.rfile.readline(256).decode().split()
            ck = self.server.pick(words)
        except GaiaError as exc:  # e.g. no checkpoint, or none can be taken now
            self.wfile.write(json.dumps({"error": exc.problem}).encode() + b"\n")
            return
        except (ValueError, UnicodeDecodeError) as exc:
            self.wfile.write(json.dumps({"error": str(exc)}).encode() + b"\n")
            return
        write_checkpoint(self.server.store, ck, self.wfile)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, store: CheckpointStore, address: tuple[str, int],
                 take: Callable[[], Checkpoint] | None = None) -> None:
        self.store = store
        self.take = take
        super().__init__(address, _Handler)

    def pick(self, words: list[str]) -> Checkpoint:
        atleast = len(words) == 3 and words[:2] == ["GET", "atleast"]
        if not atleast and (len(words) != 2 or words[0] != "GET"):
            raise ValueError(f"bad request {' '.join(words)!r}: expected GET "
                             "newest|<index>|atleast <index>")
        good, problems = self.store.usable()
        if atleast:
            floor = int(words[2])
            good = [c for c in good if c.index >= floor]
            if not good and self.take is not None:
                good = [self.take()]  # CheckpointError if this replica cannot now
        elif words[1] != "newest":
            good = [c for c in good if c.index == int(words[1])]
        if not good:
            raise CheckpointError(
                f"no usable checkpoint {words[1]} in {self.store.root}"
                f"{': ' + '; '.join(problems) if problems else ''}",
                "take a checkpoint on a live backup first (Guard.checkpoint)")
        return good[0]


class CheckpointServer:
    """Serves a store's checkpoints on host:port (0: a free port) from a thread; `take`,
    if given, takes a checkpoint now for an "atleast" request the store cannot meet."""

    def __init__(self, store: CheckpointStore, host: str = "127.0.0.1", port: int = 0,
                 take: Callable[[], Checkpoint] | None = None) -> None:
        self._server = _Server(store, (host, port), take)
        self.address: tuple[str, int] = self._server.server_address[:2]
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="checkpoint-server", daemon=True)

    def start(self) -> CheckpointServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(10)

    def __enter__(self) -> CheckpointServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def write_checkpoint(store: CheckpointStore, ck: Checkpoint, out: BinaryIO) -> None:
    """`ck` as one JSON record line and a tar stream of its snapshot."""
    out.write(json.dumps(ck.to_json()).encode() + b"\n")
    with tarfile.open(fileobj=out, mode="w|") as tar:
        tar.add(store.snapshot_path(ck), arcname=ck.snapshot)


def read_checkpoint(store: CheckpointStore, src: BinaryIO, origin: str = "the stream"
                    ) -> Checkpoint:
    """Add the checkpoint that write_checkpoint() wrote to `src` into `store` (its size
    and checksum are checked); returns its record there."""
    header = json.loads(src.readline() or b'{"error": "nothing was sent"}')
    if "error" in header:
        raise CheckpointError(f"{origin} sent no checkpoint: {header['error']}",
                              "take a checkpoint on that replica first")
    record = Checkpoint.from_json(header)
    staging = store.staging(record.index)
    try:
        with tarfile.open(fileobj=src, mode="r|") as tar:
            tar.extractall(staging, filter="data")
    except (tarfile.TarError, OSError) as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise CheckpointError(f"the transfer of checkpoint {record.index} from {origin} "
                              f"broke off ({exc})", "fetch it again") from None
    return store.commit(staging, record)


def fetch_checkpoint(address: tuple[str, int], store: CheckpointStore,
                     which: str = "newest") -> Checkpoint:
    """Copy checkpoint `which` ("newest" or an index) from the guard serving `address`
    into `store`; returns its record there."""
    try:  # a peer across a partition must not hold a restarting replica for a minute
        sock = socket.create_connection(address, timeout=_CONNECT_TIMEOUT)
        sock.settimeout(_TIMEOUT)
    except OSError as exc:
        raise CheckpointError(f"cannot reach the checkpoint server at {address[0]}:"
                              f"{address[1]} ({exc.strerror or exc})",
                              "check that the other replica's guard serves its checkpoints"
                              ) from None
    with sock, sock.makefile("rb") as stream:
        sock.sendall(f"GET {which}\n".encode())
        return read_checkpoint(store, stream,
                               f"the checkpoint server at {address[0]}:{address[1]}")
