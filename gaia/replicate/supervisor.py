"""`python -m gaia.replicate.supervisor --run-dir D`: a replicated group in the background.

`gaia replicate` writes the deployment's spec (replicate.json) and starts this process,
which starts the group, keeps deployment.json current, runs the front port if asked, and
stops everything on SIGTERM (`gaia replicate down`). It reports itself in
supervisor.json: running (with the leader's endpoint), failed (with the one-line reason
the command prints), or stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from gaia.errors import GaiaError
from gaia.replicate.group import ReplicatedGroup
from gaia.replicate.spec import ReplicateSpec

SUPERVISOR_FILE = "supervisor.json"
RUNNING, FAILED, STOPPED, STARTING = "running", "failed", "stopped", "starting"


@dataclass
class SupervisorStatus:
    pid: int
    state: str
    error: str = ""
    updated: float = 0.0


def write_status(run_dir: Path, status: SupervisorStatus) -> None:
    status.updated = time.time()
    path = Path(run_dir) / SUPERVISOR_FILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(status)))
    os.replace(tmp, path)


def read_status(run_dir: Path) -> SupervisorStatus | None:
    try:
        return SupervisorStatus(**json.loads((Path(run_dir) / SUPERVISOR_FILE).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gaia.replicate.supervisor")
    parser.add_argument("--run-dir", required=True, type=Path)
    parser.add_argument("--timeout", type=float, default=240.0)
    args = parser.parse_args(argv)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    status = SupervisorStatus(os.getpid(), STARTING)
    write_status(args.run_dir, status)
    group = ReplicatedGroup(ReplicateSpec.load(args.run_dir), args.run_dir)
    try:
        group.start(args.timeout)
        status.state = RUNNING
        write_status(args.run_dir, status)
        stop.wait()
        status.state = STOPPED
        return 0
    except GaiaError as exc:
        status.state, status.error = FAILED, exc.one_line()
        print(status.error, flush=True)
        return exc.exit_code
    finally:
        group.stop()
        write_status(args.run_dir, status)


if __name__ == "__main__":
    sys.exit(main())
