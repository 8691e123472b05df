"""What every figure module shares: the seaborn style, saving PNG + PDF, a caption naming
where the numbers came from (commit, machine, configuration)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import seaborn as sns


def setup_style() -> None:
    sns.set_theme(style="whitegrid", context="paper")


def save_figure(fig: Any, out_dir: Path, name: str) -> list[Path]:
    """Write `<name>.png` and `<name>.pdf` into `out_dir` and close the figure."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{name}.png", out_dir / f"{name}.pdf"]
    for path in paths:
        fig.savefig(path, dpi=150, bbox_inches="tight")
    plt.close(fig)
    return paths


def provenance(records: Iterable[Any]) -> str:
    """One line: the commits (with a dirty mark), machines and run dates behind a figure."""
    records = list(records)
    commits = sorted({r.commit[:10] + ("+dirty" if r.dirty else "") for r in records})
    machines = sorted(
        {f"{r.machine.get('cpu', '?')} ×{r.machine.get('cores', '?')} cores" for r in records}
    )
    dates = sorted(r.created[:10] for r in records)
    span = dates[0] if dates[0] == dates[-1] else f"{dates[0]}..{dates[-1]}"
    return f"{len(records)} records; commit {', '.join(commits)}; {'; '.join(machines)}; {span}"
