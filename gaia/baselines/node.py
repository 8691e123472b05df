"""What every baseline replica process shares: arguments, log, control loop, results.

A replica process is started by `cluster.BaselineCluster` as
`python -m gaia.baselines.<protocol>.node --id I --replicas N --run-dir D ...`. The leader
serves RUN commands from its control block (one closed-loop run of `rounds` proposals
with `window` outstanding, writing per-proposal latencies) until STOP; backups run until
the leader tells them to stop. Every replica writes `state-r<I>.json` (last index and log
digest) when it ends, so the orchestrator can check that all logs are equal.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np

from gaia.baselines import control as ctl
from gaia.baselines import logbook

DEFAULT_SLOTS = 4096
DEFAULT_MAX_PAYLOAD = 1024


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--id", type=int, required=True)
    p.add_argument("--replicas", type=int, required=True)
    p.add_argument("--group", required=True)
    p.add_argument("--run-dir", type=Path, required=True)
    p.add_argument("--durability", choices=("memory", "fsync"), default="memory")
    p.add_argument("--data-dir", type=Path, default=None)
    p.add_argument("--max-payload", type=int, default=DEFAULT_MAX_PAYLOAD)
    p.add_argument("--slots", type=int, default=DEFAULT_SLOTS)
    return p


def open_log(args: argparse.Namespace) -> logbook.Logbook:
    data_dir = args.data_dir / f"r{args.id}" if args.data_dir else None
    storage = logbook.open_storage(args.durability, args.group, args.id, data_dir,
                                   args.max_payload)
    return logbook.new_logbook(args.slots, args.max_payload, storage)


def result_path(run_dir: Path, replica: int, seq: int) -> Path:
    return Path(run_dir) / f"result-r{replica}-{seq}.npz"


def state_path(run_dir: Path, replica: int) -> Path:
    return Path(run_dir) / f"state-r{replica}.json"


def write_state(run_dir: Path, replica: int, lb: logbook.Logbook, **extra: object) -> None:
    write_state_dict(run_dir, replica, **logbook.state(lb), **extra)


def write_state_dict(run_dir: Path, replica: int, **state: object) -> None:
    """The replica's final word: what the orchestrator compares across replicas."""
    tmp = state_path(run_dir, replica).with_suffix(".tmp")
    tmp.write_text(json.dumps(state))
    tmp.replace(state_path(run_dir, replica))


RunOnce = Callable[[int, int, int, np.ndarray, np.ndarray], int]


def serve_commands(args: argparse.Namespace, control: ctl.Control, run_once: RunOnce) -> int:
    """Execute RUN commands until STOP. `run_once(rounds, window, payload, samples,
    words)` returns the entries committed (negative: quorum lost after that many)."""
    seq = 0
    if args.id == 0 and not getattr(args, "elected", False):
        control.words[ctl.LEADER] = 1  # the stable leader of the baselines
    control.set_state(ctl.READY)
    while True:
        cmd, seq = control.next_command(seq)
        if cmd == ctl.STOP:
            return 0
        rounds = int(control.words[ctl.ARG_ROUNDS])
        window = max(1, int(control.words[ctl.ARG_WINDOW]))
        payload = int(control.words[ctl.ARG_PAYLOAD])
        samples = np.zeros(rounds, dtype=np.int64)
        control.words[ctl.COMMITTED] = 0
        control.set_state(ctl.RUNNING)
        started = time.monotonic_ns()
        committed = run_once(rounds, window, payload, samples, control.words)
        elapsed = time.monotonic_ns() - started
        np.savez(result_path(args.run_dir, args.id, seq), samples=samples[: abs(committed)],
                 elapsed_ns=elapsed, committed=committed)
        control.words[ctl.DONE_SEQ] = seq
        control.set_state(ctl.READY)


def main_guard(body: Callable[[], int], control_file: Callable[[], Path]) -> None:
    """Run a replica's main; any crash marks the control block FAILED before exiting."""
    try:
        code = body()
    except Exception:
        traceback.print_exc()
        try:
            ctl.Control(control_file(), create=False).set_state(ctl.FAILED)
        except Exception:
            pass
        code = 1
    sys.stdout.flush()
    raise SystemExit(code)


def run_replica(description: str, leader_main, backup_main, addresses: bool) -> None:
    """The `main` of a baseline replica process: replica 0 runs `leader_main`, the others
    `backup_main`, each as f(args, control, logbook) -> exit code."""
    p = parser(description)
    if addresses:
        p.add_argument("--addresses", required=True, help="host:port of replicas 0..N-1")
    args = p.parse_args()

    def body() -> int:
        control = ctl.Control(ctl.control_path(args.run_dir, args.id), create=False)
        lb = open_log(args)
        return (leader_main if args.id == 0 else backup_main)(args, control, lb)

    main_guard(body, lambda: ctl.control_path(args.run_dir, args.id))
