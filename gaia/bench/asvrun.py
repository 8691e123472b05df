"""Running the asv suite on one commit with the virtualenv we already have.

asv's own per-commit virtualenvs (`asv continuous`, `asv run A^!`; asv.conf.json supports
them and they work here) install the commit's wheel and all its dependencies into
.asv/env. `bench.compare` instead exports each commit's tree with `git archive` (read-only
for the repository: no checkout, no worktree) into a temp dir and runs asv with
`--environment existing:<this python>` and `--set-commit-hash <sha>`, with ASV_PYTHONPATH
(asv's documented way to set PYTHONPATH for benchmarks) and PYTHONPATH pointing at the
export, so `import gaia` — also in processes the benchmarks spawn — loads that commit's
code. Why: no package index or wheel cache needed, identical dependency versions for both
commits (this measures code changes, not an upgrade of numba), and the caller can
alternate the two commits module by module. The benchmark suite is the current checkout's
benchmarks/ for both commits, as in asv itself, so both run the same benchmark code.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tarfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from gaia.bench.asvresults import Measurement, load_benchmarks, load_run, result_file_for
from gaia.errors import ConfigError, GaiaError

ASV_CONF = "asv.conf.json"
MACHINE_FILE = Path("~/.asv-machine.json").expanduser()
NOTHING_SELECTED = "No benchmarks selected"


@dataclass(frozen=True)
class AsvProject:
    """The checkout holding asv.conf.json, and where asv keeps results there."""

    repo: Path
    config: dict[str, Any]

    @property
    def results_dir(self) -> Path:
        return self.repo / self.config.get("results_dir", "results")

    @property
    def html_dir(self) -> Path:
        return self.repo / self.config.get("html_dir", "html")


def load_project(repo: Path) -> AsvProject:
    path = repo / ASV_CONF
    try:
        config = json.loads(path.read_text())
    except OSError:
        raise ConfigError(
            f"no {ASV_CONF} in {repo}", "run invoke from the root of a GAIA checkout"
        ) from None
    except ValueError as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc})", "fix or restore it") from None
    return AsvProject(repo=repo, config=config)


def git(repo: Path, *args: str) -> str:
    out = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True)
    if out.returncode != 0:
        raise GaiaError(
            f"git {' '.join(args)} failed: {out.stderr.strip()}",
            "run inside a git checkout of GAIA",
        )
    return out.stdout.strip()


def resolve_commit(repo: Path, rev: str) -> str:
    out = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
        cwd=repo,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0 or not out.stdout.strip():
        raise ConfigError(
            f"`{rev}` names no commit in {repo}",
            "pass a commit hash, tag, branch or HEAD~N that `git rev-parse` knows",
        )
    return out.stdout.strip()


def is_dirty(repo: Path) -> bool:
    return bool(git(repo, "status", "--porcelain", "--untracked-files=no"))


def export_commit(repo: Path, sha: str, dest: Path) -> Path:
    """The tree of `sha` as plain files under dest (git archive | tar -x)."""
    dest.mkdir(parents=True, exist_ok=True)
    with subprocess.Popen(
        ["git", "archive", "--format=tar", sha], cwd=repo, stdout=subprocess.PIPE
    ) as archive:
        assert archive.stdout is not None
        with tarfile.open(fileobj=archive.stdout, mode="r|") as tar:
            tar.extractall(dest, filter="data")
    if archive.returncode != 0:
        raise GaiaError(f"git archive {sha} failed", "check that the commit exists")
    return dest


def ensure_machine(python: str = sys.executable) -> str:
    """asv's name for this machine, registering it (`asv machine --yes`) the first time."""
    name = platform.node()
    try:
        known = json.loads(MACHINE_FILE.read_text())
    except (OSError, ValueError):
        known = {}
    if name not in known:
        subprocess.run(
            [python, "-m", "asv", "machine", "--yes", "--machine", name],
            check=True,
            capture_output=True,
        )
    return name


def asv_run_command(
    project: AsvProject,
    sha: str,
    *,
    python: str,
    machine: str,
    bench: tuple[str, ...] = (),
    quick: bool = False,
    attributes: tuple[str, ...] = (),
) -> list[str]:
    """`asv run` on the existing environment, results filed under `sha`; `attributes`
    override benchmark attributes (asv -a, e.g. "rounds=1")."""
    cmd = [
        python, "-m", "asv", "run",
        "--config", str(project.repo / ASV_CONF),
        "--environment", f"existing:{python}",
        "--set-commit-hash", sha,
        "--machine", machine,
        "--record-samples",
        "--show-stderr",
    ]  # fmt: skip
    if quick:
        cmd.append("--quick")
    for regex in bench:
        cmd += ["--bench", regex]
    for attribute in attributes:
        cmd += ["--attribute", attribute]
    return cmd


def benchmark_env(source: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment asv runs with so that the code under `source` is measured.

    ASV_PYTHONPATH puts `source` first on the benchmark process's sys.path, but asv's
    existing environment drops it from the environment that process passes on, so
    processes a benchmark spawns (the ping-pong's echo side, replicas) would import
    whatever PYTHONPATH or the editable install names — another commit. PYTHONPATH makes
    them agree."""
    env = dict(os.environ if base is None else base)
    env["ASV_PYTHONPATH"] = env["PYTHONPATH"] = str(source)
    return env


def _run_echoing(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[int, bool]:
    """Run asv with its output passed through; (exit status, whether asv said that no
    benchmark matched the selection — it exits 1 then, like on a failure)."""
    selected_none = False
    with subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as child:
        assert child.stdout is not None
        for line in child.stdout:
            sys.stdout.write(line)
            sys.stdout.flush()
            selected_none = selected_none or NOTHING_SELECTED in line
    return child.returncode, selected_none


def run_suite(
    project: AsvProject,
    sha: str,
    source: Path,
    *,
    machine: str,
    bench: tuple[str, ...] = (),
    quick: bool = False,
    attributes: tuple[str, ...] = (),
    python: str = sys.executable,
    allow_empty: bool = False,
) -> dict[str, Measurement]:
    """Run the suite against the code under `source`, file it as `sha`, and return every
    measurement the commit's result file holds (earlier runs' included: filter by name).
    `allow_empty`: a run in which no benchmark matched `bench` returns {}."""
    try:
        import asv  # noqa: F401
    except ImportError:
        raise GaiaError(
            "asv is not installed in this virtualenv",
            "install the dev extra: .venv/bin/pip install -e '.[dev]'",
        ) from None
    env = benchmark_env(source)
    cmd = asv_run_command(
        project, sha, python=python, machine=machine, bench=bench, quick=quick,
        attributes=attributes,
    )  # fmt: skip
    started = time.time()
    returncode, selected_none = _run_echoing(cmd, project.repo, env)
    path = result_file_for(project.results_dir, sha, machine)
    if path is None or path.stat().st_mtime < started:
        if allow_empty and selected_none:
            return {}
        raise GaiaError(
            f"asv stored no results for {sha[:8]} (asv exit status {returncode})",
            "read asv's output above; `asv check` shows benchmarks that do not import",
        )
    return load_run(path, load_benchmarks(project.results_dir)).measurements


def benchmark_modules(project: AsvProject) -> list[str]:
    """The suite's modules (benchmarks/bench_*.py), the unit `bench.compare` alternates."""
    bench_dir = project.repo / project.config.get("benchmark_dir", "benchmarks")
    return sorted(p.stem for p in bench_dir.glob("bench_*.py"))


def module_regex(module: str, selection: str = "") -> str:
    """asv --bench regex for one module's benchmarks, narrowed by a user regex."""
    if not selection:
        return rf"^{module}\."
    return rf"^{module}\.(?=.*(?:{selection}))"


def interleaved(modules: list[str], commits: list[str], rounds: int) -> list[tuple[int, str, str]]:
    """(round, module, commit) in run order: per module the commits alternate A B, then
    B A in the next round (ABBA), so load that drifts or comes in bursts of a minute
    falls on both commits alike instead of on whichever ran second."""
    plan = []
    for r in range(rounds):
        order = commits if r % 2 == 0 else commits[::-1]
        plan += [(r, module, commit) for module in modules for commit in order]
    return plan
