"""Fixtures for TRIPOD deployments with network namespaces as hosts (real controllers,
agents and servers; skipped where namespaces cannot be created)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from gaia.tripod.deploy import TripodCluster, TripodOptions

# Short timeouts so failures are detected in ~1-2 s (reports every 0.2 s).
FAST = {"report_interval": 0.2, "agent_timeout": 1.5, "launch_timeout": 4.0, "offer_interval": 0.1}


def netns_skip_reason() -> str | None:
    from gaia.cluster.netns import netns_unavailable_reason

    return netns_unavailable_reason()


def start_cluster(run_dir: Path, agents: int, **options) -> TripodCluster:
    reason = netns_skip_reason()
    if reason:
        pytest.skip(f"network namespaces unavailable: {reason}")
    opts = TripodOptions(agents=agents, controllers=3, cpus=1, mem_mb=2048, **{**FAST, **options})
    return TripodCluster(run_dir, opts).start()


@pytest.fixture(scope="module")
def tripod(tmp_path_factory) -> Iterator[TripodCluster]:
    """Five agents in namespaces, three controllers, shared by a module's gentle tests."""
    cluster = start_cluster(tmp_path_factory.mktemp("tripod"), agents=5)
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def fragile_tripod(tmp_path) -> Iterator[TripodCluster]:
    """Four agents for one test that kills hosts, agents or controllers."""
    cluster = start_cluster(tmp_path / "tripod", agents=4)
    try:
        yield cluster
    finally:
        cluster.stop()


def namespace_of(pid: int) -> str:
    """The network namespace a process runs in (`ip netns identify`)."""
    out = subprocess.run(["ip", "netns", "identify", str(pid)], capture_output=True, text=True)
    return out.stdout.strip()
