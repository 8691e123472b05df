"""`gaia replicate`: run an unmodified server replicated under APUS, in the background.

    gaia replicate --app redis|memcached|mariadb|mongodb [--replicas 3]
                   [--transport shm|tcp] [--front-port N] [--run-dir D]
    gaia replicate [--replicas 3] -- CMD ARGS      ({port} and {dir} are filled in)
    gaia replicate down [--run-dir D]

It prints the run directory and the leader's endpoint, then returns; the deployment runs
on (a supervisor process) until `gaia replicate down`. `gaia status --run-dir D` shows
it (deployment.json: leader, every replica's app port); leader-aware clients follow the
leader through that file, unmodified ones use the front port.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
from pathlib import Path

from gaia.errors import ConfigError, GaiaError

CURRENT = "replicate.current"  # in run_root(): the run dir of the last `gaia replicate`


def _pointer() -> Path:
    from gaia.paths import run_root

    return run_root() / CURRENT


def _run_dir(given: str | None) -> Path:
    if given:
        return Path(given)
    pointer = _pointer()
    if pointer.exists():
        return Path(pointer.read_text().strip())
    raise GaiaError("no replicated deployment found", "start one with `gaia replicate "
                    "--app redis`, or pass --run-dir")


def _up(args: argparse.Namespace) -> int:
    from gaia.paths import new_run_dir
    from gaia.proc import spawn
    from gaia.replicate.spec import ReplicateSpec
    from gaia.replicate.supervisor import FAILED, RUNNING, read_status

    spec = ReplicateSpec(replicas=list(range(args.replicas)), app=args.app,
                         command=args.command, transport=args.transport,
                         front_port=args.front_port, election_ms=args.election_ms)
    run_dir = Path(args.run_dir) if args.run_dir else new_run_dir("replicate")
    run_dir.mkdir(parents=True, exist_ok=True)
    spec.save(run_dir)
    repo = Path(__file__).resolve().parents[2]
    proc = spawn("replicate-supervisor", [sys.executable, "-m", "gaia.replicate.supervisor",
                                          "--run-dir", str(run_dir), "--timeout",
                                          str(args.wait)],
                 run_dir / "supervisor.log", cwd=repo)
    _pointer().write_text(str(run_dir))
    deadline = time.monotonic() + args.wait + 30
    while True:
        status = read_status(run_dir)
        if status is not None and status.pid == proc.pid and status.state == RUNNING:
            break
        if status is not None and status.state == FAILED:
            problem, _, fix = status.error.removeprefix("error: ").partition(" — fix: ")
            raise GaiaError(problem, fix or f"see {run_dir}/supervisor.log")
        if not proc.alive():
            raise GaiaError(f"the deployment's supervisor exited with code "
                            f"{proc.popen.returncode}: {proc.log_tail(3)}",
                            f"see {run_dir}/supervisor.log")
        if time.monotonic() > deadline:
            proc.stop()
            raise GaiaError(f"the deployment did not start within {args.wait:.0f} s",
                            f"see {run_dir}/supervisor.log")
        time.sleep(0.05)
    from gaia.deployment import Deployment

    dep = Deployment.load(run_dir)
    host, port = dep.leader_endpoint()
    print(run_dir)
    print(f"leader r{dep.leader} at {host}:{port}"
          + (f"; front port 127.0.0.1:{dep.front_port}" if dep.front_port else ""))
    return 0


def _down(args: argparse.Namespace) -> int:
    from gaia.apus.runtime.status import pid_alive
    from gaia.replicate.supervisor import read_status

    run_dir = _run_dir(args.run_dir)
    status = read_status(run_dir)
    if status is None:
        raise GaiaError(f"{run_dir} holds no `gaia replicate` deployment",
                        "pass the run directory `gaia replicate` printed")
    if pid_alive(status.pid):
        os.kill(status.pid, signal.SIGTERM)
        deadline = time.monotonic() + args.wait
        while pid_alive(status.pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if pid_alive(status.pid):
            os.kill(status.pid, signal.SIGKILL)
    pointer = _pointer()
    if pointer.exists() and pointer.read_text().strip() == str(run_dir):
        pointer.unlink()
    print(f"stopped the deployment in {run_dir}")
    return 0


def _dispatch(args: argparse.Namespace) -> int:
    if args.rest == ["down"]:
        return _down(args)
    args.command = args.rest or None
    if args.app is None and args.command is None:
        raise ConfigError("nothing to replicate", "pass --app redis|memcached|mariadb|mongodb "
                          "or a server command after --")
    if args.app is not None and args.command is not None:
        raise ConfigError("both --app and a command were given", "pass one of them")
    return _up(args)


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "replicate", help="run a server replicated under APUS in the background; "
        "`gaia replicate down` stops it",
        description="gaia replicate --app APP [options] | gaia replicate [options] -- CMD "
        "ARGS ({port}, {dir} filled in) | gaia replicate down [--run-dir D]")
    p.add_argument("--app", choices=("redis", "memcached", "mariadb", "mongodb"))
    p.add_argument("--replicas", type=int, default=3)
    p.add_argument("--transport", choices=("shm", "tcp"), default="shm",
                   help="shm: one host; tcp: one network namespace per replica")
    p.add_argument("--front-port", type=int, default=None,
                   help="stable port forwarding to the current leader (0: pick one)")
    p.add_argument("--run-dir", help="the deployment's directory (up: default a new one; "
                   "down: default the last one started)")
    p.add_argument("--election-ms", type=int, default=300)
    p.add_argument("--wait", type=float, default=240.0,
                   help="seconds to wait for a serving leader (down: for the stop)")
    p.add_argument("rest", nargs="*", metavar="down | -- CMD ARGS")
    p.set_defaults(handler=_dispatch)
