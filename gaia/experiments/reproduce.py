"""`invoke reproduce` and `invoke figures`: run experiments, render figures, write the report.

`reproduce` runs every registered experiment (quick or full) under one run group, then
renders. `figures` renders from stored records alone: `results/` first, then the committed
`paper_figures/data/`. For each figure the newest run group that has records is used, so a
figure never mixes two runs; the report names the commit, machine and configuration of
the records behind each figure, puts the GAIA proposal's claim beside our measured number,
and states what could not run on this machine and why.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rich.console import Console

from analysis.machine import commit_info, machine_info
from analysis.store import load_records
from gaia.experiments import discover as discover_experiments
from gaia.paths import FIGURES_OUT_DIR
from paper_figures import PLANNED
from paper_figures import discover as discover_figures
from paper_figures._common import provenance

console = Console(stderr=True)


def reproduce(full: bool = False, only: Iterable[str] = ()) -> Path:
    """Run every registered experiment (quick or full), then render and report."""
    experiments = [e for e in discover_experiments() if not only or e.name in set(only)]
    mode = "full" if full else "quick"
    group = time.strftime("reproduce-%Y%m%dT%H%M%S") + f"-{mode}"
    os.environ["GAIA_RUN_GROUP"] = group
    budget = sum(e.quick_minutes for e in experiments)
    console.print(f"[bold]reproduce ({mode})[/]: {len(experiments)} experiments"
                  + ("" if full else f", about {budget:.0f} min on 2 cores"))
    failures: dict[str, str] = {}
    for index, experiment in enumerate(experiments, 1):
        console.rule(f"[{index}/{len(experiments)}] {experiment.name}: {experiment.description}")
        started = time.monotonic()
        try:
            saved = experiment.run(full)
        except Exception as exc:  # one broken experiment must not hide the others' figures
            failures[experiment.name] = f"{type(exc).__name__}: {exc}"
            console.print(f"[red]{experiment.name} failed:[/] {failures[experiment.name]}")
            continue
        console.print(f"{experiment.name}: {len(saved)} record(s) in "
                      f"{time.monotonic() - started:.0f} s")
    report = render_all(failures=failures)
    if failures:
        console.print(f"[red]{len(failures)} experiment(s) failed; see {report}[/]")
    return report


def newest_group(records: list[Any]) -> list[Any]:
    """The records of the newest run group (records without a group count as one group)."""
    if not records:
        return records
    newest = max(records, key=lambda r: r.created)
    return [r for r in records if r.run_group == newest.run_group]


def machine_limits() -> list[str]:
    """What this machine cannot run, and why: said openly in the report."""
    info = machine_info()
    lines = [
        f"This machine: {info['cpu']}, {info['cores']} cores, {info['memory_gib']} GiB, "
        f"kernel {info['kernel']}, Python {info['python']}."
    ]
    if int(info["cores"]) <= 2:
        lines.append(
            "With 2 cores, every run of 3 or more replicas time-shares the CPU: replicas "
            "and clients interrupt each other, which inflates latencies of every protocol."
        )
    try:
        from gaia.apus.transport.rdma import rdma_available

        ok, reason = rdma_available()
    except ImportError:
        ok, reason = False, "the RDMA transport is not installed"
    if not ok:
        lines.append(f"RDMA: not measured ({reason}); APUS ran over shared memory and TCP.")
    if not info["hardware_virtualisation"]:
        lines.append(
            "No hardware virtualisation (no vmx/svm flag; /dev/kvm here is paravirtual and "
            "stock guest kernels hang on it): VM experiments ran QEMU with TCG, ~11-15x "
            "slower than the host."
        )
    return lines


def _figure_section(figure: Any, records: list[Any], out_dir: Path) -> list[str]:
    lines = [f"## {figure.title}", "", f"**GAIA proposal's claim:** {figure.claim}", ""]
    if not records:
        console.print(f"[yellow]{figure.name}: no stored records; run `invoke reproduce`[/]")
        return [*lines, "No records yet: run `invoke reproduce`.", ""]
    paths = figure.render(records, out_dir)
    console.print(f"{figure.name}: " + ", ".join(p.name for p in paths))
    lines += [f"**Measured here:** {figure.measured(records)}", ""]
    lines += [f"![{figure.name}]({p.name})" for p in paths if p.suffix == ".png"]
    configs = sorted({_config_summary(r) for r in records})
    lines += ["", f"*Source: {provenance(records)}.*", ""]
    lines += [f"- configuration: {c}" for c in configs[:8]]
    notes = sorted({n for r in records for n in r.metrics.get("notes", [])})
    lines += [f"- note: {n}" for n in notes]
    return [*lines, ""]


def _config_summary(record: Any) -> str:
    parts = [f"infra={record.infra}"]
    for name in ("app", "transport", "durability"):
        value = getattr(record, name)
        if value:
            parts.append(f"{name}={value}")
    shown = {"infra", "app", "transport", "durability"}
    small = {
        k: v
        for k, v in record.config.items()
        if k not in shown and isinstance(v, int | float | str | bool)
    }
    parts += [f"{k}={v}" for k, v in sorted(small.items())[:6]]
    return ", ".join(parts)


def render_all(out_dir: Path | None = None, failures: dict[str, str] | None = None) -> Path:
    """Render every figure from stored records and write the report; returns its path."""
    out_dir = out_dir or FIGURES_OUT_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    sha, dirty = commit_info()
    lines = [
        "# GAIA: reproduced figures",
        "",
        f"Rendered {time.strftime('%Y-%m-%d %H:%M')} from commit {sha[:10]}"
        + (" (uncommitted changes)" if dirty else "") + ".",
        "",
        "## What this machine could not run",
        "",
        *[f"- {line}" for line in machine_limits()],
        "",
    ]
    for name, error in (failures or {}).items():
        lines.append(f"- Experiment `{name}` failed in this run: {error}")
    built = set()
    for figure in discover_figures():
        built.add(figure.name)
        records = newest_group(load_records(experiment=figure.experiment))
        lines += _figure_section(figure, records, out_dir)
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
