"""tripod.* — the TRIPOD scheduler (same operations as `gaia tripod ...`).

invoke tripod.up [--agents 5] [--controllers 3] [--hosts netns]
invoke tripod.submit --app redis --r 3
invoke tripod.status [--json]
invoke tripod.kill --task-id ID
invoke tripod.down
invoke tripod.experiment [--full]     # the tripod_overhead experiment and its figure
"""

from __future__ import annotations

from invoke import Collection, task

from gaia.errors import friendly


@task(
    help={
        "agents": "agents, one per host",
        "controllers": "controllers (R can be at most this)",
        "hosts": "netns (default), local, or an SSH inventory file",
        "cpus": "cpus each agent offers (default: the host's)",
        "mem": "MiB each agent offers (default: the host's)",
        "log": "the controllers' decision log: apus (default) or file",
    }
)
@friendly
def up(c, agents=5, controllers=3, hosts="netns", cpus=None, mem=None, log="apus"):
    """Start controllers and agents (network namespaces as hosts) in the background."""
    from gaia.tripod import ops
    from gaia.tripod.deploy import TripodOptions

    options = TripodOptions(
        agents=int(agents),
        controllers=int(controllers),
        hosts=hosts,
        cpus=float(cpus) if cpus else None,
        mem_mb=int(mem) if mem else None,
        log=log,
    )
    print(f"TRIPOD up in {ops.up(options)}")


@task(
    help={
        "app": "redis, memcached, mariadb or mongodb",
        "command": "a command instead of an app ({port} {dir} {address} placeholders)",
        "r": "replica strength R (1 .. number of controllers)",
        "cpus": "cpus per replica",
        "mem": "MiB per replica",
    }
)
@friendly
def submit(c, app="", command="", r=1, cpus=0.1, mem=64, task_id=""):
    """Submit a task with replica strength R and wait until its replicas run."""
    import shlex

    from gaia.tripod import ops

    run_dir = ops.resolve_run_dir(None)
    argv = shlex.split(command) if command else None
    tid, statuses = ops.submit(
        run_dir, app or None, argv, int(r), float(cpus), int(mem), task_id or None
    )
    print("\n".join(ops.placement_lines(tid, statuses)))


@task(help={"json": "print the raw view as JSON"})
@friendly
def status(c, json=False):
    """Controllers, agents, tasks and where each replica runs."""
    from gaia.tripod import ops

    ops.print_status(ops.status(ops.resolve_run_dir(None)), as_json=json)


@task
@friendly
def kill(c, task_id):
    """Kill a task (every replica)."""
    from gaia.tripod import ops

    ops.kill(ops.resolve_run_dir(None), task_id)


@task
@friendly
def down(c):
    """Stop agents, replicas and controllers; remove the namespaces."""
    from gaia.tripod import ops

    ops.down(ops.resolve_run_dir(None))


@task(help={"full": "the full-size run (default: quick, ~2 min on 2 cores)"})
@friendly
def experiment(c, full=False):
    """Redis R=3 vs R=1 vs plain (YCSB), host and controller kills; records + figure."""
    from analysis.store import load_records
    from gaia.experiments.tripod_overhead import run
    from gaia.paths import FIGURES_OUT_DIR
    from paper_figures.tripod_overhead import FIGURE

    paths = run(bool(full))
    print(f"{len(paths)} records saved under {paths[0].parent}")
    for figure in FIGURE.render(load_records(), FIGURES_OUT_DIR):
        print(f"figure: {figure}")


NAMESPACE = Collection("tripod", up, submit, status, kill, down, experiment)
