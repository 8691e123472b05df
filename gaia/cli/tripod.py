"""`gaia tripod up|submit|status|kill|down`: the TRIPOD scheduler from the command line.

gaia tripod up --agents 5                  # 3 controllers, 5 namespace hosts, background
gaia tripod submit --app redis --R 3       # three replicas on three distinct hosts
gaia tripod submit --R 1 -- sh -c 'python3 -m http.server {port}'
gaia tripod status [--json]
gaia tripod down
"""

from __future__ import annotations

import argparse

from gaia.tripod import ops
from gaia.tripod.deploy import TripodOptions


def cmd_up(args: argparse.Namespace) -> int:
    options = TripodOptions(
        agents=args.agents,
        controllers=args.controllers,
        hosts=args.hosts,
        cpus=args.cpus,
        mem_mb=args.mem,
        advertise=args.advertise,
        log=args.log,
    )
    run_dir = ops.up(options, timeout=args.timeout)
    print(f"TRIPOD up: {args.controllers} controllers ({args.log} log), {args.agents} agents "
          f"({args.hosts})")
    print(f"  run dir {run_dir}")
    print("  next: gaia tripod submit --app redis --R 3 · gaia tripod status · gaia tripod down")
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    run_dir = ops.resolve_run_dir(args.run_dir)
    task_id, statuses = ops.submit(
        run_dir,
        app=args.app,
        command=args.command or None,
        r=args.r,
        cpus=args.cpus,
        mem_mb=args.mem,
        task_id=args.id,
        wait=not args.no_wait,
        timeout=args.timeout,
    )
    if statuses:
        print("\n".join(ops.placement_lines(task_id, statuses)))
    else:
        print(f"task {task_id} submitted")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    ops.print_status(ops.status(ops.resolve_run_dir(args.run_dir)), as_json=args.json)
    return 0


def cmd_kill(args: argparse.Namespace) -> int:
    ops.kill(ops.resolve_run_dir(args.run_dir), args.task_id)
    print(f"killed {args.task_id}")
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    run_dir = ops.resolve_run_dir(args.run_dir)
    ops.down(run_dir)
    print(f"TRIPOD down ({run_dir})")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tripod", help="the replication-aware scheduler (controllers, agents, tasks with R)"
    )
    sub = parser.add_subparsers(dest="tripod_command", metavar="ACTION", required=True)

    up = sub.add_parser("up", help="start controllers and agents in the background")
    up.add_argument("--agents", type=int, default=5, help="agents, one per host (default 5)")
    up.add_argument("--controllers", type=int, default=3, help="controllers (default 3)")
    up.add_argument(
        "--hosts", default="netns", help="netns (default), local, or an SSH inventory file"
    )
    up.add_argument("--cpus", type=float, default=None, help="cpus each agent offers")
    up.add_argument("--mem", type=int, default=None, help="MiB each agent offers")
    up.add_argument("--advertise", default=None, help="controllers' address for SSH hosts")
    up.add_argument("--log", choices=("apus", "file"), default="apus",
                    help="the controllers' decision log: an APUS group (default) or a "
                         "shared file (one machine)")
    up.add_argument("--timeout", type=float, default=240.0,
                    help="seconds to wait for a leader and every agent (a cold numba cache "
                         "compiles APUS in each controller)")
    up.set_defaults(handler=cmd_up)

    submit = sub.add_parser("submit", help="run a task with replica strength R")
    submit.add_argument("--app", default=None, help="redis, memcached, mariadb or mongodb")
    submit.add_argument("--R", "-R", dest="r", type=int, default=1, help="replica strength")
    submit.add_argument("--cpus", type=float, default=0.1, help="cpus per replica")
    submit.add_argument("--mem", type=int, default=64, help="MiB per replica")
    submit.add_argument("--id", default=None, help="task id (default: generated)")
    submit.add_argument("--no-wait", action="store_true", help="do not wait until it runs")
    submit.add_argument("--timeout", type=float, default=180.0,
                        help="seconds to wait until every replica runs (R > 1 groups start "
                             "three processes per replica)")
    submit.add_argument("--run-dir", default=None)
    submit.add_argument(
        "command", nargs="*", help="a command after --, with {port} {dir} {address}"
    )
    submit.set_defaults(handler=cmd_submit)

    status = sub.add_parser("status", help="controllers, agents, tasks and their replicas")
    status.add_argument("--json", action="store_true")
    status.add_argument("--run-dir", default=None)
    status.set_defaults(handler=cmd_status)

    kill = sub.add_parser("kill", help="kill a task (every replica)")
    kill.add_argument("task_id")
    kill.add_argument("--run-dir", default=None)
    kill.set_defaults(handler=cmd_kill)

    down = sub.add_parser("down", help="stop everything and remove the namespaces")
    down.add_argument("--run-dir", default=None)
    down.set_defaults(handler=cmd_down)
