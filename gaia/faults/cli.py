"""Running a campaign from a command line: `invoke faults ...` and `python -m gaia.faults`
share `execute`, which shows progress, prints one line per run and the summary, saves
the record, and turns Ctrl-C or SIGTERM into an orderly stop (everything torn down,
exit code 130).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from gaia.errors import GaiaError, report
from gaia.faults.campaign import Campaign
from gaia.faults.options import CampaignOptions, parse_kinds

INTERRUPTED = 130


def execute(options: CampaignOptions, publish: bool = False,
            console: Console | None = None) -> tuple[int, list[Path]]:
    """Run the campaign; (exit code, saved record paths). 0 only when every run is clean;
    interrupted: 130, and the runs finished before it are still summarized and saved."""
    from gaia.faults.campaign import CampaignInterrupted, check, run_campaign

    check(options)
    console = console or Console(stderr=True)
    columns = (TextColumn("[bold]faults[/]"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn(), TextColumn("{task.description}"))
    try:
        with Progress(*columns, console=console, transient=True) as bar:
            task = bar.add_task("starting", total=options.runs)

            def on_result(result) -> None:
                bar.advance(task)
                style = "green" if result.clean else "red"
                console.print(f"[{style}]{escape(result.line())}[/]")

            campaign = run_campaign(
                options, progress=lambda msg: bar.update(task, description=msg),
                on_result=on_result)
    except CampaignInterrupted as stop:
        console.print("[yellow]interrupted: the deployment was stopped and removed[/]")
        if not stop.campaign.results:
            return INTERRUPTED, []
        return INTERRUPTED, _report(stop.campaign, publish, console)
    except KeyboardInterrupt:  # before the campaign began
        console.print("[yellow]interrupted[/]")
        return INTERRUPTED, []
    paths = _report(campaign, publish, console)
    clean = all(r.clean for r in campaign.results)
    return (0 if clean else 1), paths


def _report(campaign: Campaign, publish: bool, console: Console) -> list[Path]:
    """Save the record, print the summary and where the record went."""
    from gaia.faults.report import describe, save

    paths = save(campaign, publish)
    console.print(describe(campaign), markup=False, highlight=False)
    for path in paths:
        console.print(f"record: {path}")
    return paths


def build_options(runs: int, seed: int, app: str, infra: str, nemesis: str, transport: str,
                  **more: object) -> CampaignOptions:
    """Options from command-line values (strings where a shell gives strings)."""
    fields = {k: v for k, v in more.items() if v is not None}
    return CampaignOptions(runs=int(runs), seed=int(seed), app=app, infra=infra,
                           nemesis=parse_kinds(nemesis), transport=transport, **fields)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m gaia.faults",
                                description="Seeded fault campaigns with linearizability "
                                            "and lost-write checks.")
    p.add_argument("--runs", type=int, default=10)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--first", type=int, default=None, help="index of the first run")
    p.add_argument("--app", default="redis")
    p.add_argument("--infra", default="apus")
    p.add_argument("--nemesis", default="kill,pause,restart")
    p.add_argument("--transport", default="shm")
    p.add_argument("--replicas", type=int, default=None)
    p.add_argument("--run-s", type=float, default=None)
    p.add_argument("--clients", type=int, default=None)
    p.add_argument("--keys", type=int, default=None)
    p.add_argument("--election-ms", type=int, default=None)
    p.add_argument("--op-timeout", type=float, default=None)
    p.add_argument("--experiment", default=None)
    p.add_argument("--fresh", action="store_true", default=None)
    p.add_argument("--publish", action="store_true")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = vars(parser().parse_args(argv))
    publish = args.pop("publish")
    try:
        options = build_options(**args)
        code, _ = execute(options, publish)
    except GaiaError as exc:
        report(exc)
        return exc.exit_code
    return code


if __name__ == "__main__":
    sys.exit(main())
