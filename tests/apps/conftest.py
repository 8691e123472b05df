"""Fixtures that always stop what they started, even when the test fails."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

import apps
from apps.base import Server

SERVER_APPS = ["redis", "memcached", "mariadb", "mongodb"]


@pytest.fixture
def start_server() -> Iterator[Callable[..., Server]]:
    """`start_server("redis", **kwargs)` -> a started server; all stopped and removed after."""
    created: list[Server] = []

    def factory(name: str, **kwargs) -> Server:
        server = apps.get(name)(**kwargs)
        created.append(server)
        return server.start()

    try:
        yield factory
    finally:
        for server in created:
            server.stop()
            server.cleanup()
