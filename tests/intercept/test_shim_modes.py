"""The shim outside a replicated group: passive without a ring, closed with a bad one."""

from __future__ import annotations

import socket

import pytest
import redis

import apps
from gaia.intercept import ring_layout as L
from gaia.intercept.build import preload_env
from gaia.intercept.ring import wait_until


def _redis(env: dict[str, str]):
    return apps.get("redis")(port=0, env=env, deterministic=True)


def test_without_gaia_ring_the_shim_passes_everything_through(shim):
    server = _redis({"LD_PRELOAD": shim})
    try:
        server.start()
        with redis.Redis(port=server.port) as client:
            client.set("k", "v")
            assert client.get("k") == b"v"
    finally:
        server.stop()
        server.cleanup()


def test_a_missing_ring_refuses_clients_and_says_why():
    server = _redis(preload_env("/gaia-no-such-ring-segment"))
    try:
        server.start()  # the admin unix socket is not replicated, so it starts
        client = redis.Redis(port=server.port, socket_timeout=10)
        with pytest.raises(redis.exceptions.ConnectionError):
            client.ping()
        client.close()
        assert "cannot map ring /gaia-no-such-ring-segment" in server.process.log_tail(50)
    finally:
        server.stop()
        server.cleanup()


def test_a_killed_servers_connection_entries_are_reclaimed(shm):
    ring = shm.ring("backup", 1, state=L.REPLICA_BACKUP)  # no committer needed
    server = _redis(preload_env(ring.name))
    try:
        server.start()
        sockets = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(3)]
        wait_until(lambda: len(ring.conns()) == 3, 30, "three registered connections")
        assert ring.reclaim() == 0, "live connections are not reclaimed"
        server.process.kill()
        for sock in sockets:
            sock.close()
        assert ring.reclaim() == 3
        assert ring.conns() == []
    finally:
        server.stop()
        server.cleanup()
