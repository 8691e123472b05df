"""`gaia status [--json] [--run-dir D]`: who leads a deployment, in which view."""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from gaia.deployment import Deployment


def _load(run_dir: str | None) -> Deployment:
    from gaia.apus.runtime.group import current_run_dir
    from gaia.apus.runtime.spec import SPEC_FILE

    path = current_run_dir(run_dir)
    if (Path(path) / SPEC_FILE).exists():  # an APUS group: refresh from live status
        from gaia.apus.runtime.status import live_deployment

        return live_deployment(path)
    return Deployment.load(path)


def _status(args: argparse.Namespace) -> int:
    dep = _load(args.run_dir)
    if args.json:
        print(json.dumps(asdict(dep), indent=1))
        return 0
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{dep.kind} {dep.group_id}  view {dep.view}  leader "
                        f"{'r' + str(dep.leader) if dep.leader is not None else 'none'}")
    for col in ("replica", "role", "host", "pid", "executing"):
        table.add_column(col)
    for r in dep.replicas:
        table.add_row(f"r{r.id}", r.role, r.host, str(r.pid or "-"), str(r.executing))
    Console().print(table)
    print(f"{dep.transport} transport, {dep.durability} durability, run dir {dep.run_dir}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("status", help="show a deployment's replicas and leader")
    p.add_argument("--json", action="store_true", help="print deployment.json (refreshed)")
    p.add_argument("--run-dir", help="the deployment's run directory (default: the last "
                                     "`gaia apus up`)")
    p.set_defaults(handler=_status)
