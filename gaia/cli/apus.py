"""`gaia apus up | propose | log | restart | down`: run a standalone APUS group."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from gaia.apus.layout import LayoutConfig
from gaia.apus.runtime.spec import DURABILITIES, TRANSPORTS, GroupSpec
from gaia.errors import ConfigError


def _up(args: argparse.Namespace) -> int:
    from gaia.apus.runtime.group import start_group

    if not 1 <= args.replicas <= 64:
        raise ConfigError(f"--replicas {args.replicas} is outside 1..64", "use e.g. 3")
    spec = GroupSpec(
        replicas=list(range(args.replicas)), transport=args.transport,
        durability=args.durability,
        layout=LayoutConfig(max_members=max(args.replicas + args.spare, 1)),
        election_ticks=max(2, args.election_ms * 1000 // args.tick_us), tick_us=args.tick_us,
        pin=args.pin, spin=args.spin)
    if args.transport == "tcp":
        from gaia.net import free_ports

        spec.addresses = {r: f"127.0.0.1:{p}" for r, p in zip(spec.replicas,
                                                                free_ports(args.replicas),
                                                                strict=True)}
    run_dir, _ = start_group(spec, Path(args.run_dir) if args.run_dir else None,
                             wait=args.wait)
    print(run_dir)
    return 0


def _propose(args: argparse.Namespace) -> int:
    from gaia.apus.client import Client

    with Client(args.run_dir) as client:
        data = args.data.encode() if args.data is not None else Path(args.file).read_bytes()
        print(client.propose(data, timeout=args.timeout))
    return 0


def _log(args: argparse.Namespace) -> int:
    from gaia.apus.client import Client
    from gaia.intercept.events import decode_batch

    with Client(args.run_dir) as client:
        for e in client.entries(args.start, replica=args.replica):
            events = decode_batch(e.payload)
            body = [ev.payload.decode(errors="replace") for ev in events] if events else \
                e.payload.decode(errors="replace")
            if args.json:
                print(json.dumps({"index": e.index, "view": e.view, "kind": e.kind,
                                  "data": body}))
            else:
                print(f"{e.index}\tview {e.view}\tkind {e.kind}\t{body}")
    return 0


def _restart(args: argparse.Namespace) -> int:
    from gaia.apus.runtime.group import current_run_dir, spawn_replica

    proc = spawn_replica(current_run_dir(args.run_dir), args.id)
    print(proc.pid)
    return 0


def _down(args: argparse.Namespace) -> int:
    from gaia.apus.runtime.group import current_run_dir, stop_group

    run_dir = current_run_dir(args.run_dir)
    pids = stop_group(run_dir)
    print(f"stopped {len(pids)} replica(s) of {run_dir}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    apus = subparsers.add_parser("apus", help="run a standalone APUS consensus group")
    sub = apus.add_subparsers(dest="apus_command", metavar="COMMAND", required=True)

    up = sub.add_parser("up", help="start a group in the background; prints its run dir")
    up.add_argument("--replicas", type=int, default=3)
    up.add_argument("--transport", choices=TRANSPORTS, default="shm")
    up.add_argument("--durability", choices=DURABILITIES, default="memory")
    up.add_argument("--run-dir", help="directory for the group (default: a fresh one)")
    up.add_argument("--election-ms", type=int, default=50,
                    help="base election timeout (short on a dedicated box; this 2-core "
                         "shared one needs ~50)")
    up.add_argument("--tick-us", type=int, default=1000)
    up.add_argument("--spare", type=int, default=2, help="room for members added later")
    up.add_argument("--pin", default="none", help="none, spread, a CPU, or a list 0,1")
    up.add_argument("--spin", choices=("auto", "spin", "shared"), default="auto")
    up.add_argument("--wait", type=float, default=120.0, help="seconds to wait for a leader")
    up.set_defaults(handler=_up)

    propose = sub.add_parser("propose", help="replicate bytes; prints the committed index")
    propose.add_argument("data", nargs="?", help="the entry (text)")
    propose.add_argument("--file", help="read the entry from a file instead")
    propose.add_argument("--run-dir")
    propose.add_argument("--timeout", type=float, default=10.0)
    propose.set_defaults(handler=_propose)

    log = sub.add_parser("log", help="print committed entries")
    log.add_argument("--run-dir")
    log.add_argument("--replica", type=int, help="whose log (default: the leader's)")
    log.add_argument("--start", type=int, default=1)
    log.add_argument("--json", action="store_true")
    log.set_defaults(handler=_log)

    restart = sub.add_parser("restart", help="start a replica of the group again")
    restart.add_argument("id", type=int)
    restart.add_argument("--run-dir")
    restart.set_defaults(handler=_restart)

    down = sub.add_parser("down", help="stop the group and remove its shared memory")
    down.add_argument("--run-dir")
    down.set_defaults(handler=_down)
