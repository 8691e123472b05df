"""Fixtures for the transport tests: a unique group id whose segments are removed after."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from gaia.apus.transport import unlink_group
from gaia.net import free_ports


@pytest.fixture
def group() -> Iterator[str]:
    group_id = f"test-{uuid.uuid4().hex[:10]}"
    yield group_id
    unlink_group(group_id)


@pytest.fixture
def book() -> dict[int, str]:
    """tcp addresses for replicas 0..2 on loopback."""
    return {i: f"127.0.0.1:{port}" for i, port in enumerate(free_ports(3))}
