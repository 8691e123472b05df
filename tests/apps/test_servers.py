"""Each real server: write and read through its client, snapshot/restore, digests that are
equal iff the data is equal."""

from __future__ import annotations

from pathlib import Path

import pytest
from bson import ObjectId

from tests.apps.conftest import SERVER_APPS
from tests.apps.scripts import CHECK, FEED


@pytest.mark.parametrize("app", SERVER_APPS)
def test_write_through_the_client_and_read_back(start_server, app):
    server = start_server(app)
    assert server.alive() and server.start_seconds is not None
    FEED[app](server, "v1")
    CHECK[app](server, "v1")
    server.put("plain", b"\x00bytes\xff")
    assert server.get("plain") == b"\x00bytes\xff"
    assert server.get("never-written") is None


@pytest.mark.parametrize("app", SERVER_APPS)
def test_restore_brings_back_the_snapshot_state(start_server, app, tmp_path):
    server = start_server(app)
    FEED[app](server, "v1")
    before = server.digest()
    snapshot = server.snapshot(tmp_path / "snap")
    FEED[app](server, "v2")
    assert server.digest() != before
    server.restore(snapshot)
    assert server.alive()
    CHECK[app](server, "v1")
    assert server.digest() == before


@pytest.mark.parametrize("app", SERVER_APPS)
def test_same_commands_give_equal_digests_and_one_more_write_differs(start_server, app):
    first, second = start_server(app, deterministic=True), start_server(app, deterministic=True)
    assert first.digest() == second.digest()  # both empty
    for server in (first, second):
        FEED[app](server, "v1")
        FEED[app](server, "v2")
    assert first.digest() == second.digest()
    first.put("extra", b"1")
    assert first.digest() != second.digest()
    second.put("extra", b"1")
    assert first.digest() == second.digest()
    second.put("extra", b"2")  # same key, other value
    assert first.digest() != second.digest()


@pytest.mark.parametrize("app", SERVER_APPS)
def test_stop_ends_the_process_and_is_idempotent(start_server, app):
    server = start_server(app)
    process = server.process
    server.stop()
    server.stop()
    assert not server.alive() and server.pid is None
    assert process.popen.poll() is not None


def test_restart_keeps_the_port(start_server):
    server = start_server("memcached")
    port = server.port
    server.restart()
    assert server.alive() and server.port == port


def test_memcached_digest_covers_flags(start_server):
    first, second = start_server("memcached"), start_server("memcached")
    first.client().set("k", b"v", flags=1)
    second.client().set("k", b"v", flags=2)
    assert first.digest() != second.digest()


def test_mariadb_online_backup_snapshot_restores(start_server, tmp_path):
    server = start_server("mariadb", snapshot_method="backup")
    FEED["mariadb"](server, "v1")
    before = server.digest()
    snapshot = server.snapshot(tmp_path / "backup")
    assert server.alive()  # mariadb-backup copies while the server runs
    FEED["mariadb"](server, "v2")
    server.restore(snapshot)
    CHECK["mariadb"](server, "v1")
    assert server.digest() == before


def test_mongodb_says_which_implementation_runs(start_server):
    server = start_server("mongodb")
    kind = server.server_kind
    assert kind.split()[0] in ("mongod", "secantusdb", "nx-27017")
    assert f"implementation = {kind}" in server.log_path.read_text()


def test_mongodb_digest_ignores_insertion_order_and_implementation(start_server):
    """Equal documents digest equal whatever order they were inserted in and whichever
    server stores them (raw BSON, ordered by the encoded _id). Updates are left out:
    SecantusDB applies $set fields in name order as mongod >= 5.0 does, nx-27017 in
    the order given, and field order is part of a MongoDB document."""
    docs = [
        {"_id": 7, "n": 1},
        {"_id": "seven", "tags": ["a", "b"], "blob": b"\x00\x01"},
        {"_id": ObjectId("64b7f0c2a1b2c3d4e5f60718"), "nested": {"z": 1, "a": 2}},
        {"_id": 2.5, "f": 1.25},
    ]
    preferred = start_server("mongodb", implementation="secantusdb")
    fallback = start_server("mongodb", implementation="nx-27017")
    with preferred.client() as client:
        client.ycsb.mixed.insert_many([dict(d) for d in docs])
    with fallback.client() as client:
        client.ycsb.mixed.insert_many([dict(d) for d in reversed(docs)])
    assert preferred.digest() == fallback.digest()
    fallback.put("extra", b"1")
    assert preferred.digest() != fallback.digest()


def test_extra_environment_reaches_the_server(start_server):
    # memcached, not redis: redis overwrites its environ block with its process title.
    server = start_server("memcached", env={"GAIA_APPS_TEST_MARK": "present"})
    environ = Path(f"/proc/{server.pid}/environ").read_bytes().split(b"\0")
    assert b"GAIA_APPS_TEST_MARK=present" in environ
