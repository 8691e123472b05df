"""The tcp mode: one network namespace per replica, APUS over TCP between them, each
server listening on its namespace's address; clients reach the leader over the bridge
and follow it across a kill -9."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from gaia.cluster.netns import netns_unavailable_reason
from gaia.replicate.group import ReplicatedGroup
from tests.replicate.helpers import YcsbRun, assert_replicas_agree, writes_on

# a campaign: three namespaces and a failover (~1 min on 2 cores) do not fit the default
# suite's share; run with `pytest -m campaign tests/replicate`
pytestmark = [pytest.mark.netns, pytest.mark.campaign, pytest.mark.timeout(600)]


def test_redis_across_network_namespaces(run_dir: Path):
    reason = netns_unavailable_reason()
    if reason:
        pytest.skip(f"network namespaces unavailable: {reason}")
    with ReplicatedGroup.of("redis", 3, transport="tcp", run_dir=run_dir / "tcp") as group:
        assert len(set(group.spec.hosts.values())) == 3 and group.spec.namespaces
        recording = run_dir / "writes.jsonl"
        YcsbRun(group, records=100, ops=300, recording=recording).run()
        assert_replicas_agree(group, expect=3)
        victim = group.current.leader
        group.kill_replica(victim)
        dep = group.wait_leader(60, not_leader=victim)
        host, port = dep.leader_endpoint()
        assert host == group.spec.hosts[dep.leader] != "127.0.0.1"
        with redis.Redis(host=host, port=port, socket_timeout=30) as client:
            client.set("after", "failover")
        for r in assert_replicas_agree(group, expect=2):
            assert writes_on(group, r, recording).ok
