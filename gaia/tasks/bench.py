"""bench.* — regression tracking with asv (benchmarks/, asv.conf.json).

invoke bench [--bench REGEX] [--quick] [--commit REV]   # run the suite, store results
invoke bench.compare A B [--factor 1.5] [--rounds 5]   # exit 1 when a benchmark regressed
invoke bench.plot [--bench REGEX]                       # latency across commits, PNG + PDF

All three use the existing virtualenv (`asv run --environment existing:<python>
--set-commit-hash <sha>`); a commit other than the working tree is measured from a
`git archive` export of it (see gaia/bench/asvrun.py for why not per-commit virtualenvs).
"""

from __future__ import annotations

import math
import re
import tempfile
from pathlib import Path

from invoke import Collection, task
from invoke.exceptions import Exit

from gaia.bench.regression import DEFAULT_ALPHA, DEFAULT_FACTOR, Verdict
from gaia.errors import ConfigError, friendly

REPO = Path(__file__).resolve().parents[2]
DEFAULT_ROUNDS = 5
TIME_UNIT_SECONDS = {"ns": 1e-9, "µs": 1e-6, "us": 1e-6, "ms": 1e-3, "s": 1.0}
TIME_UNITS = ((1e-6, 1e9, "ns"), (1e-3, 1e6, "µs"), (1.0, 1e3, "ms"), (math.inf, 1.0, "s"))


def _console():
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=160)


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "failed/skipped"
    if unit in TIME_UNIT_SECONDS:
        value, unit = value * TIME_UNIT_SECONDS[unit], "seconds"
    if unit == "seconds":
        for below, scale, name in TIME_UNITS:
            if abs(value) < below:
                return f"{value * scale:.4g} {name}"
    return f"{value:.4g} {unit}"


def _fmt_p(v: Verdict) -> str:
    if v.p_value is None:
        return "-"
    return f"{v.p_value:.2g}" + ("" if v.tested else "*")


def _status_style(v: Verdict) -> str:
    if v.failing:
        return "bold red"
    return "green" if v.status.value in ("improved", "fixed") else ""


def _short(name: str) -> str:
    return name.split(".", 1)[-1] if name.startswith("bench_") else name


def _project_and_machine():
    from gaia.bench.asvrun import ensure_machine, load_project

    return load_project(REPO), ensure_machine()


@task(
    default=True,
    help={
        "bench": "only benchmarks whose name matches this regex (asv --bench)",
        "quick": "each benchmark once, no repeats (asv --quick): a smoke run",
        "commit": "measure this commit (exported from git) instead of the working tree",
    },
)
@friendly
def run(c, bench="", quick=False, commit=""):
    """Run the asv suite with this virtualenv and store the results under the commit."""
    from rich.table import Table

    from gaia.bench.asvrun import export_commit, is_dirty, resolve_commit, run_suite

    project, machine = _project_and_machine()
    console = _console()
    sha = resolve_commit(REPO, commit or "HEAD")
    with tempfile.TemporaryDirectory(prefix="gaia-bench-") as tmp:
        if commit:
            source = export_commit(REPO, sha, Path(tmp) / sha[:12])
        else:
            source = REPO
            if is_dirty(REPO):
                console.print(
                    f"[yellow]note: the working tree has uncommitted changes; they are "
                    f"measured and filed under HEAD ({sha[:8]})[/yellow]"
                )
        results = run_suite(
            project,
            sha,
            source,
            machine=machine,
            bench=(bench,) if bench else (),
            quick=quick,
        )
    table = Table("benchmark", "value", "samples", title=f"{sha[:8]} on {machine}")
    for name, m in sorted(results.items()):
        table.add_row(_short(name), _fmt(m.value, m.unit), str(len(m.samples) or "-"))
    console.print(table)
    console.print(f"results: {project.results_dir / machine}")


def _measure_interleaved(project, machine, commits, rounds, selection, console):
    """Run every module for A and B back to back (ABBA across rounds, asv rounds=1: one
    process per benchmark per round) and pool each commit's rounds. Returns
    {label: {benchmark: Measurement}} with one observation per round."""
    from gaia.bench.asvresults import pool_runs
    from gaia.bench.asvrun import (
        benchmark_modules,
        export_commit,
        interleaved,
        module_regex,
        run_suite,
    )

    shas = dict(commits)
    runs: dict[tuple[str, int], dict] = {(label, r): {} for label in shas for r in range(rounds)}
    plan = interleaved(benchmark_modules(project), list(shas), rounds)
    with tempfile.TemporaryDirectory(prefix="gaia-bench-") as tmp:
        sources = {
            sha: export_commit(REPO, sha, Path(tmp) / sha[:12]) for sha in set(shas.values())
        }
        for step, (r, module, label) in enumerate(plan, 1):
            sha = shas[label]
            console.rule(
                f"[{step}/{len(plan)}] round {r + 1}/{rounds} · {module} · {label} = {sha[:8]}"
            )
            measured = run_suite(
                project,
                sha,
                sources[sha],
                machine=machine,
                bench=(module_regex(module, selection),),
                attributes=("rounds=1",),
                allow_empty=True,
            )
            runs[(label, r)].update(
                (name, m)
                for name, m in measured.items()
                if name.startswith(f"{module}.") and re.search(selection, name)
            )
    if not any(runs.values()):
        raise ConfigError(
            f"no benchmark matched `{selection}`" if selection else "no benchmark ran",
            "check the regex against `asv run --bench` names, or run `invoke bench` to see "
            "which benchmarks fail to import",
        )
    return {label: pool_runs([runs[(label, r)] for r in range(rounds)]) for label in shas}


@task(
    positional=["a", "b"],
    help={
        "a": "the baseline commit (hash, tag, branch, HEAD~1 ...)",
        "b": "the commit under test",
        "factor": "flag a benchmark only when it got worse by more than this ratio",
        "alpha": "... and a Mann-Whitney U test over the rounds says p < alpha (with fewer "
        "than 5 rounds: every round of B worse than every round of A by the factor)",
        "rounds": "measurements per commit, A and B alternating module by module",
        "bench": "only benchmarks whose name matches this regex",
    },
)
@friendly
def compare(c, a, b, factor=DEFAULT_FACTOR, alpha=DEFAULT_ALPHA, rounds=DEFAULT_ROUNDS, bench=""):
    """Measure commits A and B and exit 1 when any benchmark regressed from A to B."""
    from rich.table import Table

    from gaia.bench.asvrun import resolve_commit
    from gaia.bench.regression import compare as judge_all

    factor, alpha, rounds = float(factor), float(alpha), int(rounds)
    if factor <= 1 or not 0 < alpha < 1 or rounds < 1:
        raise ConfigError(
            f"--factor {factor} / --alpha {alpha} / --rounds {rounds} out of range",
            "use --factor > 1 (e.g. 1.4), 0 < --alpha < 1, --rounds >= 1",
        )
    project, machine = _project_and_machine()
    console = _console()
    commits = [("A", resolve_commit(REPO, a)), ("B", resolve_commit(REPO, b))]
    pooled = _measure_interleaved(project, machine, commits, rounds, bench, console)
    verdicts = judge_all(pooled["A"], pooled["B"], factor, alpha)
    table = Table(
        "benchmark", "A", "B", "B/A", "p", "verdict",
        title=f"A={commits[0][1][:8]} ({a})  B={commits[1][1][:8]} ({b})  "
        f"factor {factor}, alpha {alpha}, {rounds} round(s), {machine}",
    )  # fmt: skip
    for v in verdicts:
        table.add_row(
            _short(v.name),
            _fmt(v.before, v.unit),
            _fmt(v.after, v.unit),
            "-" if v.ratio is None else f"{v.ratio:.2f}",
            _fmt_p(v),
            v.status.value,
            style=_status_style(v),
        )
    console.print(table)
    if any(v.p_value is not None and not v.tested for v in verdicts):
        console.print(
            f"* {rounds} round(s) cannot reach p < {alpha}: a benchmark counts as changed "
            f"only when every round of B differs from every round of A by more than ×{factor}"
        )
    failing = [v for v in verdicts if v.failing]
    if failing:
        names = ", ".join(f"{_short(v.name)} ({v.status.value})" for v in failing)
        raise Exit(f"{len(failing)} benchmark(s) got worse from A to B: {names}", code=1)
    console.print(f"no benchmark regressed by more than ×{factor} (significant at {alpha})")


@task(
    help={
        "bench": "regex of the benchmarks to plot (default: the p50/p99 latency tracks)",
        "out": "output directory (default: results/figures)",
    }
)
@friendly
def plot(c, bench="", out=""):
    """Plot latency across commits from asv's stored results (PNG + PDF)."""
    from gaia.bench.asvresults import load_history
    from gaia.bench.asvrun import git
    from gaia.bench.history import DEFAULT_SELECTION, history_points
    from gaia.paths import FIGURES_OUT_DIR
    from paper_figures.latency_history import render

    project, machine = _project_and_machine()
    order = git(REPO, "rev-list", "--reverse", "--topo-order", "HEAD").split()
    points = history_points(
        load_history(project.results_dir, machine), order, bench or DEFAULT_SELECTION
    )
    if not points:
        raise ConfigError(
            f"no stored asv results on {machine} match `{bench or DEFAULT_SELECTION}`",
            "run `invoke bench` (or `invoke bench --commit REV` for older commits) first",
        )
    commits = len({p.commit for p in points})
    paths = render(
        points,
        Path(out) if out else FIGURES_OUT_DIR,
        subtitle=f"{machine}, {commits} commit(s), asv results",
    )
    for path in paths:
        print(path)


NAMESPACE = Collection("bench", run, compare, plot)
