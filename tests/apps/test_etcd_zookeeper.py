"""etcd and ZooKeeper as single servers through apps.Server: write/read, digests equal
iff the data is equal, snapshot/restore, clear errors."""

from __future__ import annotations

import pytest

import apps
from apps.zookeeper import ZooKeeper
from gaia.errors import MissingBinaryError

NAMES = ["etcd", "zookeeper"]


@pytest.mark.parametrize("name", NAMES)
def test_write_read_digest_snapshot_restore(start_server, name, tmp_path):
    server = start_server(name)
    assert server.alive() and server.pid and server.start_seconds is not None
    empty = server.digest()
    server.put_many([("a", b"1"), ("b", b"\x00\xff")])
    assert server.get("b") == b"\x00\xff" and server.get("never") is None
    written = server.digest()
    assert written != empty
    snapshot = server.snapshot(tmp_path / "snap")
    server.put("a", b"changed")
    assert server.digest() != written
    server.restore(snapshot)
    assert server.get("a") == b"1" and server.digest() == written


@pytest.mark.parametrize("name", NAMES)
def test_two_servers_with_the_same_writes_digest_equal(start_server, name):
    first, second = start_server(name), start_server(name)
    for server in (first, second):
        server.put_many([("x", b"1"), ("y", b"2")])
    assert first.digest() == second.digest()
    second.put("y", b"3")
    assert first.digest() != second.digest()


@pytest.mark.parametrize("name", NAMES)
def test_command_names_the_binary_and_stop_is_idempotent(start_server, name):
    server = start_server(name)
    argv = server.command()
    assert ("etcd" in argv[0]) if name == "etcd" else any("QuorumPeerMain" in a for a in argv)
    server.stop()
    server.stop()
    assert not server.alive()


def test_a_missing_zookeeper_jar_names_the_package(monkeypatch):
    monkeypatch.setattr("gaia.peers.zookeeper.JARS", ("/nonexistent/zookeeper.jar",))
    with pytest.raises(MissingBinaryError, match="zookeeper"):
        ZooKeeper().start()


def test_the_registry_resolves_both():
    assert apps.get("etcd").name == "etcd" and apps.get("zookeeper").name == "zookeeper"
