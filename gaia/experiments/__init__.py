"""Experiments behind the paper figures, and the registry `invoke reproduce` walks.

An experiment module in this package defines `EXPERIMENT = Experiment(...)`: a name, the
figure modules it feeds, and `run(full: bool) -> list[Path]` returning the records it
saved. Figures are rendered by `paper_figures` from stored records only.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Experiment:
    name: str
    description: str
    run: Callable[[bool], list[Path]]
    figures: tuple[str, ...] = field(default_factory=tuple)
    # Rough minutes in quick mode on 2 cores, for the progress display.
    quick_minutes: float = 1.0


def discover() -> list[Experiment]:
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        experiment = getattr(module, "EXPERIMENT", None)
        if isinstance(experiment, Experiment):
            found.append(experiment)
    return found
