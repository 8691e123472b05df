"""Real servers for the YCSB tests: one of each app for the whole package, wiped per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

import apps
from apps.base import Server
from workloads.infra import server_props

APPS = ["redis", "memcached", "mariadb", "mongodb"]


def wipe(app: str, server: Server) -> None:
    """Remove every YCSB record (and the SQL table) so each test starts empty."""
    if app == "redis":
        server.client().flushall()
    elif app == "memcached":
        client = server.client()
        client.flush_all()
        client.close()
    elif app == "mariadb":
        conn = server.client()
        with conn.cursor() as cur:
            cur.execute("DROP TABLE IF EXISTS usertable")
        conn.close()
    else:
        client = server.client()
        client.drop_database("ycsb")
        client.close()


@pytest.fixture(scope="session")
def ycsb_servers() -> Iterator[Callable[[str], Server]]:
    """`ycsb_servers(app)` -> a started server, shared by the package (MariaDB starts slowly)."""
    started: dict[str, Server] = {}

    def get(app: str) -> Server:
        if app not in started:
            started[app] = apps.get(app)(port=0).start()
        return started[app]

    try:
        yield get
    finally:
        for server in started.values():
            server.stop()
            server.cleanup()


@pytest.fixture
def fresh_server(ycsb_servers) -> Callable[[str], tuple[Server, list[str]]]:
    """`fresh_server(app)` -> (empty server, the -p settings its binding needs)."""

    def get(app: str) -> tuple[Server, list[str]]:
        server = ycsb_servers(app)
        wipe(app, server)
        return server, [f"{k}={v}" for k, v in server_props(app, server).items()]

    return get
