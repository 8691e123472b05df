"""Top-level tasks: setup, test, reproduce, figures."""

from __future__ import annotations

import sys

from invoke import task

from gaia.errors import friendly

# Long campaigns and sweeps are marked and run by their own tasks, not by `test`.
DEFAULT_DESELECT = "not campaign and not sweep and not peers9 and not vm"


@task
def setup(c):
    """Install Debian packages and the virtualenv (what `python3 tasks.py` does first)."""
    from gaia.bootstrap import setup as do_setup

    do_setup()


@task(
    help={
        "k": "only tests matching this expression (pytest -k)",
        "markers": "pytest -m expression (default: the default suite)",
        "args": "extra pytest arguments",
    }
)
def test(c, k="", markers=DEFAULT_DESELECT, args=""):
    """Run the test suite (the default suite: no campaigns, sweeps or VM boots beyond one)."""
    cmd = [sys.executable, "-m", "pytest", "-m", f'"{markers}"']
    if k:
        cmd += ["-k", f'"{k}"']
    if args:
        cmd.append(args)
    c.run(" ".join(cmd), pty=False)


@task(help={"quick": "the quick subset (default)", "full": "every experiment at full size"})
@friendly
def reproduce(c, quick=True, full=False):
    """Run the experiments behind every figure, render the figures, write the report."""
    from gaia.experiments.reproduce import reproduce as run_reproduce

    run_reproduce(full=full)


@task
@friendly
def figures(c):
    """Re-render every figure and the report from stored records alone (no experiments)."""
    from gaia.experiments.reproduce import render_all

    render_all()


TASKS = [setup, test, reproduce, figures]
