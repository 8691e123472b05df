"""`invoke reproduce` and `invoke figures`: run experiments, render figures, write the report."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from analysis.store import load_records
from gaia.experiments import discover as discover_experiments
from gaia.paths import FIGURES_OUT_DIR
from paper_figures import PLANNED
from paper_figures import discover as discover_figures

console = Console(stderr=True)


def reproduce(full: bool = False) -> Path:
    """Run every registered experiment (quick or full), then render and report."""
    experiments = discover_experiments()
    mode = "full" if full else "quick"
    if not experiments:
        console.print("[yellow]no experiment has landed yet; nothing to run[/yellow]")
    for index, experiment in enumerate(experiments, 1):
        console.rule(f"[{index}/{len(experiments)}] {experiment.name} ({mode})")
        saved = experiment.run(full)
        console.print(f"{experiment.name}: {len(saved)} result record(s) saved")
    return render_all()


def render_all(out_dir: Path | None = None) -> Path:
    """Render every figure from stored records and write the report; returns its path."""
    out_dir = out_dir or FIGURES_OUT_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    lines = ["# GAIA: reproduced figures", ""]
    built = set()
    for figure in discover_figures():
        records = load_records(experiment=figure.experiment)
        built.add(figure.name)
        if not records:
            console.print(f"[yellow]{figure.name}: no stored records; run `invoke reproduce`[/]")
            lines += [f"## {figure.title}", "", "No records yet.", ""]
            continue
        paths = figure.render(records, out_dir)
        console.print(f"{figure.name}: " + ", ".join(str(p) for p in paths))
        lines += [f"## {figure.title}", "", f"Claim (GAIA proposal): {figure.claim}", ""]
        lines += [f"Measured: {figure.measured(records)}", ""]
        lines += [f"![{figure.name}]({p.name})" for p in paths if p.suffix == ".png"] + [""]
    missing = {name: info for name, info in PLANNED.items() if name not in built}
    if missing:
        lines += ["## Not built yet", ""]
        for name, (what, issue) in missing.items():
            lines.append(f"- `{name}` ({what}): its experiment has not landed (issue {issue}).")
            console.print(f"[yellow]not built yet:[/] {name} — {what} (issue {issue})")
    report = out_dir / "REPORT.md"
    report.write_text("\n".join(lines) + "\n")
    console.print(f"report: {report}")
    return report
