"""Experiment "failover_timeline": short fault campaigns whose every fault hits the leader,
feeding the figure of client throughput over time with the faults marked and the
distribution of failover times.

Quick: 4 runs of replicated Redis on shm (kill, pause, restart of the leader), ~1.5 min.
Full: 20 such runs, and 10 runs on tcp between network namespaces with partitions and
kills. The records are `faults` campaign records (gaia.faults.report) under this
experiment's name; every run is also judged (linearizability, lost writes, digests).
"""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from gaia.experiments import Experiment
from gaia.faults.campaign import run_campaign
from gaia.faults.options import CampaignOptions
from gaia.faults.report import describe, save

NAME = "failover_timeline"
console = Console(stderr=True)


def configs(full: bool) -> list[CampaignOptions]:
    common = dict(experiment=NAME, app="redis", infra="apus", leader_share=1.0, seed=7,
                  timelines=50)
    shm = CampaignOptions(runs=20 if full else 4, transport="shm",
                          nemesis=("kill", "pause", "restart"), run_s=4.0, **common)
    if not full:
        return [shm]
    tcp = CampaignOptions(runs=10, transport="tcp", nemesis=("partition", "kill"),
                          run_s=4.0, **common)
    return [shm, tcp]


def run(full: bool) -> list[Path]:
    saved = []
    for options in configs(full):
        with console.status(f"{NAME}: {options.runs} runs on {options.transport}") as status:
            campaign = run_campaign(options, progress=status.update,
                                    on_result=lambda r: console.print(r.line(),
                                                                      markup=False))
        console.print(describe(campaign), markup=False, highlight=False)
        saved += save(campaign)
    return saved


EXPERIMENT = Experiment(
    name=NAME,
    description="client throughput through leader faults; failover time distribution",
    run=run,
    figures=(NAME,),
    quick_minutes=1.0,
)
