"""`invoke ycsb --infra tripod --app X`: the run drives a task that TRIPOD scheduled.

Without `--run-dir` the provider starts a TRIPOD deployment of its own (three controllers
replicated by APUS, `agents` agents in network namespaces), submits the app with replica
strength `r` (3 by default: an APUS group on three distinct hosts; 1: the plain server,
as any scheduler runs it), yields an endpoint that follows the task's serving replica
through the task's deployment.json (written by the leading controller), and tears it all
down after the run. With `--run-dir`:
  - a task directory (`<tripod run dir>/tasks/<id>`, holding deployment.json): follow it;
  - a TRIPOD run directory (`gaia tripod up`): submit the app into that deployment and
    kill the task after the run (the deployment stays up).
Options (`-p gaia.infra.<name>=<value>`): `r` (3), `agents` (r + 1), `hosts` (netns),
`task_id`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from gaia.errors import ConfigError
from gaia.paths import new_run_dir
from gaia.tripod.deploy import TripodCluster, TripodOptions
from gaia.tripod.entries import TaskSpec
from gaia.tripod.framework import LAYOUT_FILE, Framework
from gaia.tripod.replicas import serving, task_dir
from gaia.tripod.resources import Resources
from workloads.bindings.endpoint import Endpoint
from workloads.infra import InfraOptions, Target

SUBMIT_TIMEOUT_S = 240.0  # R > 1: three replica processes with numba code per host
TASK_RESOURCES = Resources.of(0.1, 256)


def binding_props(app: str, host: str, port: int) -> dict[str, str]:
    """MariaDB's passwordless bench user (what the replicated-server layer creates)."""
    from gaia.replicate.ycsb_infra import binding_props as props

    return props(app, host, port)


@contextmanager
def provide(app: str, options: InfraOptions) -> Iterator[Target]:
    extra = options.take("tripod", {"r": (int, 3), "agents": (int, 0), "hosts": (str, "netns"),
                                    "task_id": (str, None)})
    r = extra["r"]
    run_dir = Path(options.run_dir) if options.run_dir else None
    if run_dir is not None and not (run_dir / LAYOUT_FILE).exists() and \
            (run_dir / "deployment.json").exists():  # a task directory
        endpoint = Endpoint.from_run_dir(run_dir, options.failover_timeout)
        yield Target(endpoint, app, "tripod", props=binding_props(app, *endpoint.current()),
                     details={"run_dir": str(run_dir)})
        return
    if run_dir is not None and not (run_dir / LAYOUT_FILE).exists():  # nor a TRIPOD run dir
        raise ConfigError(f"{run_dir} is neither a TRIPOD run dir nor a task dir",
                          "pass what `gaia tripod up` printed, or its tasks/<id> directory")
    own = run_dir is None
    with start_cluster(r, extra) if own else nullcontext() as cluster:
        where = cluster.run_dir if cluster is not None else run_dir
        with task_of(where, app, r, extra["task_id"]) as (task_id, details):
            dep = serving_deployment(where, task_id)
            endpoint = Endpoint.from_run_dir(dep, options.failover_timeout)
            details.update(tripod_run_dir=str(where), own_deployment=own)
            yield Target(endpoint, app, "tripod",
                         props=binding_props(app, *endpoint.current()), details=details)


@contextmanager
def start_cluster(r: int, extra: dict[str, Any]) -> Iterator[TripodCluster]:
    options = TripodOptions(agents=extra["agents"] or r + 1, cpus=1, mem_mb=2048,
                            hosts=extra["hosts"])
    with TripodCluster(new_run_dir("tripod"), options).start() as cluster:
        yield cluster


@contextmanager
def task_of(run_dir: Path, app: str, r: int, task_id: str | None
            ) -> Iterator[tuple[str, dict[str, Any]]]:
    """Submit the app with strength r; kill the task afterwards."""
    with Framework.from_run_dir(run_dir, "ycsb", max_r=r).connect() as fw:
        result, statuses = fw.submit(TaskSpec(app=app), r=r, resources=TASK_RESOURCES,
                                     task_id=task_id, timeout=SUBMIT_TIMEOUT_S)
        details: dict[str, Any] = {
            "task_id": result.task_id, "r": r,
            "hosts": sorted({s.host for s in statuses.values()}),
            "consensus": result.consensus,
        }
        try:
            yield result.task_id, details
        finally:
            fw.kill(result.task_id)


def serving_deployment(run_dir: Path, task_id: str) -> Path:
    """The task's directory once its deployment.json names a serving replica."""
    serving(run_dir, task_id, timeout=120.0)
    return task_dir(run_dir, task_id)
