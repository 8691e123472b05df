"""`invoke ycsb --infra apus --app X`: the run drives the leader of a replicated group.

The provider starts a ReplicatedGroup of the app (in this process: its monitor keeps
deployment.json current), yields a leader-aware endpoint (the bindings follow the leader
through deployment.json across failovers) and stops the group when the run ends. With
`--run-dir` of a running `gaia replicate` deployment it follows that one instead and
starts nothing. Options (`-p gaia.infra.<name>=<value>`): `replicas` (3), `transport` (shm|tcp),
`front_port` (connect through the stable front port instead: one extra hop),
`keep_run_dir` (keep the servers' data afterwards).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from gaia.replicate.group import ReplicatedGroup
from workloads.bindings.endpoint import Endpoint
from workloads.infra import InfraOptions, Target, flag


def binding_props(app: str, host: str, port: int) -> dict[str, str]:
    """What the bindings need beyond the endpoint: MariaDB's passwordless bench user."""
    if app != "mariadb":
        return {}
    from apps.mariadb import BENCH_USER, DATABASE

    return {"db.user": BENCH_USER, "db.passwd": "",
            "db.url": f"jdbc:mysql://{host}:{port}/{DATABASE}"}


def details_of(group: ReplicatedGroup) -> dict[str, Any]:
    spec = group.spec
    return {"run_dir": str(group.run_dir), "replicas": len(spec.replicas),
            "transport": spec.transport, "front_port": spec.front_port,
            "group_id": spec.group_id}


@contextmanager
def provide(app: str, options: InfraOptions) -> Iterator[Target]:
    if options.run_dir is not None:  # an existing deployment: follow its leader
        endpoint = Endpoint.from_run_dir(options.run_dir, options.failover_timeout)
        yield Target(endpoint, app, "apus", props=binding_props(app, *endpoint.current()),
                     details={"run_dir": str(options.run_dir)})
        return
    extra = options.take("apus", {"replicas": (int, 3), "transport": (str, "shm"),
                                  "front_port": (int, None), "keep_run_dir": (flag, False)})
    group = ReplicatedGroup.of(app, extra["replicas"], transport=extra["transport"],
                               front_port=extra["front_port"])
    with group:
        details = details_of(group)
        if group.forwarder is not None:
            endpoint = Endpoint(group.forwarder.host, group.forwarder.port)
        else:
            endpoint = Endpoint.from_run_dir(group.run_dir, options.failover_timeout)
        try:
            yield Target(endpoint, app, "apus", props=binding_props(app, *endpoint.current()),
                         details=details)
        finally:
            details["leader_changes"] = [(c.leader, c.view) for c in group.changes]
            details["failures"] = group.failures()
    if not extra.get("keep_run_dir"):
        group.remove()
