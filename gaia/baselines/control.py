"""The control block between the orchestrator and one replica process.

Why a shared file and not a pipe: the replica's hot loop runs in numba with the GIL
released; it publishes progress (entries committed) with a store the orchestrator can
read at any time, and the orchestrator's commands are picked up between runs. One small
file per replica under the run directory, mapped by both sides.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from gaia.apus.transport.segments import MappedRegion, map_segment
from gaia.errors import GaiaError

CONTROL_BYTES = 4096
# int64 words
CMD = 0  # what the orchestrator asks for (below)
CMD_SEQ = 1  # bumped with every command
STATE = 2  # what the replica is doing
DONE_SEQ = 3  # the last command finished
COMMITTED = 4  # leader: entries committed in the current run (progress)
LEADER = 5  # 1 while this replica believes it leads
APPLIED = 6  # elected protocols: the last log index this replica applied
ARG_ROUNDS = 8
ARG_WINDOW = 9
ARG_PAYLOAD = 10

RUN = 1
STOP = 9
STARTING, READY, RUNNING, STOPPED, FAILED = 0, 1, 2, 3, 4


def control_path(run_dir: Path, replica: int) -> Path:
    return Path(run_dir) / f"control-r{replica}.bin"


class Control:
    """One replica's control block (either side)."""

    def __init__(self, path: Path, create: bool) -> None:
        self.path = path
        self._region: MappedRegion = map_segment(path, CONTROL_BYTES, zero=create)
        self.words = self._region.array.view(np.int64)

    def set_state(self, state: int) -> None:
        self.words[STATE] = state

    def command(self, cmd: int, rounds: int = 0, window: int = 1, payload: int = 0) -> int:
        """Orchestrator: issue a command; returns its sequence number."""
        self.words[ARG_ROUNDS] = rounds
        self.words[ARG_WINDOW] = window
        self.words[ARG_PAYLOAD] = payload
        self.words[CMD] = cmd
        seq = int(self.words[CMD_SEQ]) + 1
        self.words[CMD_SEQ] = seq
        return seq

    def next_command(self, last_seq: int, alive=lambda: True) -> tuple[int, int]:
        """Replica: wait for a command newer than `last_seq`; returns (cmd, seq)."""
        while int(self.words[CMD_SEQ]) == last_seq:
            if not alive():
                return STOP, last_seq
            time.sleep(0.001)
        return int(self.words[CMD]), int(self.words[CMD_SEQ])

    def wait(self, predicate, what: str, timeout: float, alive=lambda: True,
             log_tail=lambda: "") -> None:
        """Orchestrator: wait until predicate(words) holds; GaiaError naming `what`."""
        deadline = time.monotonic() + timeout
        while not predicate(self.words):
            if self.words[STATE] == FAILED or not alive():
                raise GaiaError(f"replica process failed while {what}: {log_tail()}",
                                "see the replica's log in the run directory")
            if time.monotonic() > deadline:
                raise GaiaError(f"timed out after {timeout:.0f} s {what}: {log_tail()}",
                                "the machine may be overloaded; retry with fewer replicas")
            time.sleep(0.002)
