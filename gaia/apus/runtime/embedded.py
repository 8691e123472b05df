"""An APUS replica inside another program's process, with that program's state machine.

Why: TRIPOD controllers and the VM-FT controller are replicated state machines themselves;
they run their replica in-process so that committed entries reach their `apply` in
order, `snapshot`/`restore` cover their state, backups answer REQUEST entries with
`reply` (VM sync's Algorithm 1), and the leader can change the membership. The replica's
loop (numba hot loop + Python slow path) runs in a background thread; every call below
is handed to that thread and runs between two ticks, so the core is never touched
concurrently. The group itself is described by a GroupSpec in `run_dir` (the other
replicas may be embedded too, or plain `python -m gaia.apus.replica` processes).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from gaia.apus.core import AppHooks, Core, NotLeaderError
from gaia.apus.messages import Config
from gaia.apus.runtime.node import ReplicaRunner
from gaia.errors import GaiaError


class EmbeddedReplica:
    def __init__(self, run_dir: Path | str, replica_id: int, app: AppHooks) -> None:
        self.runner = ReplicaRunner(Path(run_dir), replica_id, app)
        self.thread: threading.Thread | None = None

    # -- lifecycle ------------------------------------------------------------------
    def start(self) -> EmbeddedReplica:
        self.runner.setup()  # in the caller's thread: bad input raises here
        self.thread = threading.Thread(target=self.runner.run, name="apus-replica",
                                       daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.runner.stop = True
        if self.thread is not None:
            self.thread.join(30)
        if self.runner.core is not None:
            self.runner.shutdown()

    def __enter__(self) -> EmbeddedReplica:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- state ------------------------------------------------------------------------
    @property
    def core(self) -> Core:
        assert self.runner.core is not None, "start() first"
        return self.runner.core

    @property
    def is_leader(self) -> bool:
        return self.core.is_leader

    @property
    def leader(self) -> int | None:
        return self.core.leader

    @property
    def view(self) -> int:
        return self.core.view

    @property
    def commit(self) -> int:
        return self.core.commit

    def call(self, fn: Callable[[Core], Any], timeout: float = 10.0) -> Any:
        """Run fn(core) in the replica's thread (between two ticks); returns its result."""
        future: Future = Future()
        self.runner.commands.put((fn, future))
        return future.result(timeout)

    def wait_commit(self, index: int, timeout: float = 10.0, view: int | None = None) -> None:
        """Wait until `index` commits. With `view` (the view it was proposed in), a
        replica that stops leading that view fails fast with NotLeaderError: the entry
        may or may not survive the view change, as in etcd's dropped proposals."""
        deadline = time.monotonic() + timeout
        while self.core.commit < index:
            if view is not None and (self.core.view != view or not self.core.is_leader):
                raise NotLeaderError(self.runner.id, self.core.leader)
            if time.monotonic() > deadline:
                raise GaiaError(f"entry {index} did not commit within {timeout:.1f} s",
                                "is a majority of the group running?")
            time.sleep(0.0005)

    # -- the APIs other parts use -----------------------------------------------------
    def propose(self, payload: bytes, timeout: float = 10.0) -> int:
        """Append an entry as leader and wait until it commits; returns its index
        (NotLeaderError on a backup). High-rate inputs should use the input ring."""
        index, view = self.call(lambda core: (core.propose(payload), core.view), timeout)
        self.wait_commit(index, timeout, view)
        return index

    def request(self, payload: bytes, timeout: float = 10.0) -> dict[int, bytes]:
        """Replicate a REQUEST entry; every backup's app answers it (AppHooks.reply)
        before acknowledging. Returns {replica: reply} of the backups that answered by the
        time it committed (at least a majority minus the leader)."""
        index, view = self.call(lambda core: (core.request(payload), core.view), timeout)
        self.wait_commit(index, timeout, view)
        return self.call(lambda core: core.replies(index), timeout)

    def change_config(self, config: Config, timeout: float = 10.0) -> int:
        index, view = self.call(lambda core: (core.change_config(config), core.view),
                                timeout)
        self.wait_commit(index, timeout, view)
        return index

    def add_learner(self, replica: int, executing: bool = True, priority: int = 1) -> int:
        members = dict(self.core.config.members)
        members[replica] = (False, executing, priority)
        return self.change_config(Config(members))

    def promote(self, replica: int) -> int:
        members = dict(self.core.config.members)
        _, executing, priority = members[replica]
        members[replica] = (True, executing, priority)
        return self.change_config(Config(members))

    def remove(self, replica: int) -> int:
        members = dict(self.core.config.members)
        del members[replica]
        return self.change_config(Config(members))

    def compact(self) -> None:
        """Snapshot the app now and drop the applied log prefix."""
        self.call(lambda core: core.maybe_compact(force=True))
