"""The campaign's clients: threads issuing reads, writes and cas against the current
leader, every operation recorded with its honest outcome.

Each thread owns one connection to the leader named by the deployment; after an
operation whose outcome is unknown it drops the connection, looks the leader up again
and continues as a new process id (`c3.1`, `c3.2`, ...): the unknown operation stays
open until the end of the history, so the same client must not look sequential
across it. Written values are unique in the run (`c<thread>:<n>`), which is what lets
a value read back name the write it came from. A watcher thread follows the deployment:
when it names another leader, calls still in flight on the old one are aborted (their
outcome unknown) instead of waiting for their timeout, as a leader-aware client would.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from gaia.checker.history import Recorder
from gaia.faults.clients import Connector, NotApplied, RegisterClient

Endpoint = Callable[[], tuple[str, int] | None]
RECONNECT_PAUSE_S = 0.005
WATCH_S = 0.005


@dataclass(frozen=True)
class Mix:
    read: float = 0.4
    cas: float = 0.2

    def choose(self, rng: random.Random) -> str:
        x = rng.random()
        if x < self.read:
            return "read"
        return "cas" if x < self.read + self.cas else "write"


class Worker:
    def __init__(self, index: int, keys: Sequence[str], mix: Mix, seed: int,
                 connect: Connector, endpoint: Endpoint, recorder: Recorder,
                 stop: threading.Event) -> None:
        self.index = index
        self.keys = list(keys)
        self.mix = mix
        self.rng = random.Random(seed)
        self.connect = connect
        self.endpoint = endpoint
        self.recorder = recorder
        self.stop = stop
        self.generation = 0
        self.written = 0
        self.known: dict[str, str | None] = {}  # last value this client saw per key
        self.client: RegisterClient | None = None
        self.where: tuple[str, int] | None = None  # the endpoint `client` talks to
        self.connections: list[tuple[int, str, str]] = []  # (ns, process, "host:port")

    @property
    def process(self) -> str:
        return f"c{self.index}.{self.generation}"

    def _client(self) -> RegisterClient | None:
        if self.client is None:
            where = self.endpoint()
            if where is None:
                return None
            try:
                self.client = self.connect(*where)
            except NotApplied:
                return None
            self.where = where
            self.connections.append((time.monotonic_ns(), self.process,
                                     f"{where[0]}:{where[1]}"))
        return self.client

    def abort_if_not(self, leader: tuple[str, int]) -> None:
        """(Watcher thread) the leader moved: end the call in flight on the old one."""
        client = self.client
        if client is not None and self.where is not None and self.where != leader:
            client.abort()

    def _drop(self) -> None:
        self.where = None
        if self.client is not None:
            try:
                self.client.close()
            except Exception:
                pass
        self.client = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                client = self._client()
                if client is None:
                    time.sleep(RECONNECT_PAUSE_S)
                    continue
                self.step(client)
        finally:
            self._drop()

    def step(self, client: RegisterClient) -> None:
        key = self.rng.choice(self.keys)
        kind = self.mix.choose(self.rng)
        if kind == "read":
            op = self.recorder.invoke(self.process, "read", key)
        else:
            self.written += 1
            new = f"c{self.index}:{self.written}"
            value = (self.known.get(key), new) if kind == "cas" else new
            op = self.recorder.invoke(self.process, kind, key, value)
        try:
            if kind == "read":
                got = client.read(key)
                self.recorder.complete(op, "ok", got)
                self.known[key] = got
            elif kind == "write":
                client.write(key, new)
                self.recorder.complete(op, "ok")
                self.known[key] = new
            elif client.cas(key, self.known.get(key), new):
                self.recorder.complete(op, "ok")
                self.known[key] = new
            else:
                self.recorder.complete(op, "fail")
                self.known.pop(key, None)  # stale: guess None next time, or read first
        except NotApplied:
            # nothing was sent; a cas stays unknown all the same: "fail" would claim its
            # compare failed, which nobody observed
            self.recorder.complete(op, "unknown" if kind == "cas" else "fail")
            self._drop()
        except Exception:
            self.recorder.complete(op, "unknown")
            self.generation += 1
            self._drop()


class Workload:
    """`clients` workers over `keys`; start(), then stop() (joins them)."""

    def __init__(self, keys: Sequence[str], clients: int, mix: Mix, seed: int,
                 connect: Connector, endpoint: Endpoint, recorder: Recorder) -> None:
        self.stop_event = threading.Event()
        self.workers = [Worker(i, keys, mix, seed * 1000 + i, connect, endpoint, recorder,
                               self.stop_event) for i in range(clients)]
        self.endpoint = endpoint
        self.threads: list[threading.Thread] = []

    def start(self) -> Workload:
        for worker in self.workers:
            thread = threading.Thread(target=worker.run, name=f"faults-c{worker.index}",
                                      daemon=True)
            thread.start()
            self.threads.append(thread)
        watcher = threading.Thread(target=self._watch, name="faults-watch", daemon=True)
        watcher.start()
        self.threads.append(watcher)
        return self

    def _watch(self) -> None:
        """Follow the deployment's leader for the clients (see Worker.abort_if_not)."""
        while not self.stop_event.wait(WATCH_S):
            leader = self.endpoint()
            if leader is not None:
                for worker in self.workers:
                    worker.abort_if_not(leader)

    def stop(self, timeout: float = 30.0) -> None:
        self.stop_event.set()
        for thread in self.threads:
            thread.join(timeout)

    def connections(self) -> list[tuple[int, str, str]]:
        """Every (re)connection of every client, oldest first: which server a process
        talked to (ops of process p after time t went to the endpoint it connected to)."""
        return sorted(c for worker in self.workers for c in worker.connections)


def read_all(client: RegisterClient, keys: Sequence[str]) -> dict[str, str | None]:
    """Every key's value through one client (raises on any failure)."""
    return {key: client.read(key) for key in keys}


def read_at(connect: Connector, where: tuple[str, int], keys: Sequence[str]
            ) -> dict[str, str | None]:
    """Every key's value on the server at `where`, over a connection of its own."""
    client = connect(*where)
    try:
        return read_all(client, keys)
    finally:
        client.close()
