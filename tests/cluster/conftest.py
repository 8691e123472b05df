"""Fixtures for the cluster tests: real namespaces (root only) and the probe script."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from gaia.cluster.netns import NetnsCluster, netns_unavailable_reason
from tests.cluster.helpers import leftovers


@pytest.fixture
def netns_ok() -> None:
    reason = netns_unavailable_reason()
    if reason:
        pytest.skip(f"network namespaces unavailable: {reason}")


@pytest.fixture
def cluster(netns_ok: None) -> Iterator[NetnsCluster]:
    """Three namespace hosts h1..h3; after the test nothing of them may remain."""
    with NetnsCluster(3) as created:
        yield created
    assert leftovers(created.run) == []
