"""Agents on SSH hosts (fabric): two namespaces running sshd stand in for remote
machines; TRIPOD starts its agents there over SSH and places a real redis on each."""

from __future__ import annotations

import json
import sys

import pytest
import redis

from gaia.tripod.deploy import TripodCluster, TripodOptions
from gaia.tripod.entries import TaskSpec
from gaia.tripod.framework import Framework
from gaia.tripod.replicas import serving
from gaia.tripod.resources import Resources

from .conftest import FAST, netns_skip_reason

pytestmark = pytest.mark.netns


def test_agents_started_over_ssh_run_replicas_on_their_hosts(tmp_path):
    if reason := netns_skip_reason():
        pytest.skip(reason)
    pytest.importorskip("fabric")
    from gaia.cluster.netns import NetnsCluster
    from gaia.cluster.sshd import start_sshd

    with NetnsCluster(["r1", "r2"]) as hosts:
        servers, entries = [], []
        try:
            for host in hosts.hosts:
                server, spec = start_sshd(host, tmp_path / "ssh")
                servers.append(server)
                entry = {k: v for k, v in vars(spec).items() if v is not None}
                entries.append({**entry, "python": sys.executable})
            inventory = tmp_path / "inventory.json"
            inventory.write_text(json.dumps({"hosts": entries}))
            options = TripodOptions(
                agents=2, hosts=str(inventory), advertise=hosts.gateway, cpus=1, mem_mb=1024, **FAST
            )
            with (
                TripodCluster(tmp_path / "run", options) as cluster,
                Framework.from_run_dir(cluster.run_dir, "ssh", max_r=2) as fw,
            ):
                _, statuses = fw.submit(
                    TaskSpec(app="redis"), r=2, resources=Resources.of(0.1, 64), timeout=120
                )
                assert {s.host for s in statuses.values()} == {"r1", "r2"}
                for s in statuses.values():
                    assert s.address == hosts[s.host].address
                (task_id,) = {s.task_id for s in statuses.values()}
                host, port = serving(cluster, task_id, timeout=60).leader_endpoint()
                assert host in {h.address for h in hosts.hosts}
                assert redis.Redis(host, port, socket_timeout=5).set("k", "v")
        finally:
            for server in servers:
                server.stop()
