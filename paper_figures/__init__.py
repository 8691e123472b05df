"""The paper's figures, one module per figure, each rendered from stored result records.

A figure module defines `FIGURE = Figure(...)`: its name, the GAIA proposal's claim it
tests, the experiment whose records it reads, `render(records, out_dir) -> [paths]`
(PNG and PDF) and `measured(records) -> str`, our number in one sentence for the report.
`PLANNED` lists the figures whose experiments have not landed yet, so `reproduce` can say
so plainly instead of drawing anything.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Figure:
    name: str
    title: str
    claim: str
    experiment: str
    render: Callable[[list[Any], Path], list[Path]]
    measured: Callable[[list[Any]], str]


# name -> (what it shows, the issue that builds its experiment)
PLANNED: dict[str, tuple[str, str]] = {
    "fig3_consensus_latency": ("consensus latency vs replicas, APUS and every baseline", "#6"),
    "kernel_share": ("share of consensus time spent in the kernel", "#6"),
    "app_overhead": ("replicated vs unreplicated throughput and latency per server", "#5"),
    "failover_timeline": ("throughput over time with faults marked", "#7"),
    "tripod_overhead": ("TRIPOD R=3 vs R=1 vs plain Redis", "#9"),
    "vm_divergent_pages": ("dirty vs divergent pages and bytes sent per sync", "#10"),
}


def discover() -> list[Figure]:
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        figure = getattr(module, "FIGURE", None)
        if isinstance(figure, Figure):
            found.append(figure)
    return found
