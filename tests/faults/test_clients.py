"""The campaign's register clients against the real servers (alone, no replication):
read / write / cas mean the same thing on every app, a refused connection is
`NotApplied` (nothing sent), and a server that dies mid-call is not mistaken for it."""

from __future__ import annotations

import pytest

import apps
from gaia.faults.clients import APPS, NotApplied, connector
from gaia.net import free_port


@pytest.fixture(scope="module", params=APPS)
def server(request, tmp_path_factory):
    """One server per app for this module (the last test kills it)."""
    srv = apps.get(request.param)(data_dir=tmp_path_factory.mktemp(request.param) / "data")
    srv.start()
    yield srv
    srv.stop()
    srv.cleanup()


def test_register_semantics(server):
    client = connector(server.name, timeout=10.0)(server.host, server.port)
    try:
        client.setup()
        client.setup()  # idempotent: every campaign run calls it on the same deployment
        client.write("k", "z")
        client.write("k2", "z")
        assert client.read("k") == "z"
        assert client.read("fresh") is None
        assert client.cas("fresh", "x", "a") is False  # compare fails on an absent key
        assert client.cas("fresh", None, "a") is True  # absent -> set
        assert client.cas("fresh", None, "b") is False  # no longer absent
        assert client.read("fresh") == "a"
        client.write("k", "b")
        assert client.cas("k", "a", "c") is False
        assert client.read("k") == "b"
        assert client.cas("k", "b", "c") is True
        assert client.read("k") == "c"
        assert client.read("k2") == "z"
    finally:
        client.close()


def test_a_dead_server_is_not_taken_for_an_unsent_request(server):
    client = connector(server.name, timeout=2.0)(server.host, server.port)
    client.setup()
    client.write("k", "a")
    server.process.kill()
    with pytest.raises(Exception) as raised:
        client.write("k", "b")
    assert not isinstance(raised.value, NotApplied)  # it may have run: unknown
    client.close()


@pytest.mark.parametrize("app", APPS)
def test_a_refused_connection_is_not_applied(app):
    with pytest.raises(NotApplied, match="cannot connect"):
        connector(app, timeout=1.0)("127.0.0.1", free_port())
