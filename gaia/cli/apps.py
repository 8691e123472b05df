"""`gaia apps list|start|stop`: the same as the invoke tasks apps.*, for the gaia command."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("apps", help="start, stop and list the real servers")
    commands = parser.add_subparsers(dest="apps_command", metavar="ACTION", required=True)

    listing = commands.add_parser("list", help="servers, installed or not, what runs")
    listing.set_defaults(handler=_list)

    start = commands.add_parser("start", help="start a server in the background")
    start.add_argument("app")
    start.add_argument("--port", type=int, default=0, help="loopback port (0 = a free one)")
    start.add_argument("--deterministic", action="store_true")
    start.set_defaults(handler=_start)

    stop = commands.add_parser("stop", help="stop servers started with `gaia apps start`")
    target = stop.add_mutually_exclusive_group(required=True)
    target.add_argument("app", nargs="?")
    target.add_argument("--all", action="store_true")
    stop.set_defaults(handler=_stop)


def _list(args: argparse.Namespace) -> int:
    from apps.catalog import describe_all

    for row in describe_all():
        print(f"{row.app:<10} {row.binary:<13} {row.installed:<36} {row.package:<30} {row.running}")
    return 0


def _start(args: argparse.Namespace) -> int:
    from apps.running import start_app

    entry = start_app(args.app, args.port, args.deterministic)
    print(
        f"{entry.app} ({entry.server_kind}) {entry.endpoint} pid {entry.pid} data {entry.data_dir}"
    )
    return 0


def _stop(args: argparse.Namespace) -> int:
    from apps.running import stop_apps

    for entry in stop_apps(None if args.all else [args.app]):
        print(f"stopped {entry.app} at {entry.endpoint} (pid {entry.pid})")
    return 0
