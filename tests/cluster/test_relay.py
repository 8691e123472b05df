"""The delay relay on loopback: delays both directions, keeps bytes and order, half-closes."""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gaia import proc
from gaia.cluster.relay import DelayRelay
from gaia.net import free_port, wait_listening


@pytest.fixture
def echo_server() -> Iterator[tuple[str, int]]:
    server = socket.create_server(("127.0.0.1", 0))

    def serve(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()
    server.close()


def round_trip(conn: socket.socket, payload: bytes) -> tuple[bytes, float]:
    started = time.monotonic()
    conn.sendall(payload)
    got = b""
    while len(got) < len(payload):
        got += conn.recv(1 << 20)
    return got, time.monotonic() - started


def test_delay_applies_each_way_and_can_change_live(echo_server: tuple[str, int]):
    with DelayRelay(("127.0.0.1", 0), echo_server, delay_s=0.1) as relay:
        assert relay.address is not None
        with socket.create_connection(relay.address) as conn:
            got, rtt = round_trip(conn, b"ping")
            assert got == b"ping" and rtt >= 0.2
            relay.delay_s = 0.25
            got, rtt = round_trip(conn, b"pong")
            assert got == b"pong" and rtt >= 0.5


def test_bulk_data_arrives_whole_and_in_order(echo_server: tuple[str, int]):
    payload = bytes(i % 251 for i in range(3_000_000))
    with DelayRelay(("127.0.0.1", 0), echo_server, delay_s=0.01) as relay:
        assert relay.address is not None
        with socket.create_connection(relay.address) as conn:
            reader = threading.Thread(target=lambda: result.append(round_trip(conn, payload)))
            result: list[tuple[bytes, float]] = []
            reader.start()
            reader.join(60)
            assert result and result[0][0] == payload


def test_half_close_is_forwarded(echo_server: tuple[str, int]):
    with DelayRelay(("127.0.0.1", 0), echo_server) as relay:
        assert relay.address is not None
        with socket.create_connection(relay.address) as conn:
            conn.sendall(b"last words")
            conn.shutdown(socket.SHUT_WR)
            got = b""
            conn.settimeout(10)
            while data := conn.recv(100):
                got += data
            assert got == b"last words"  # then EOF: the server saw our FIN and closed


def test_unreachable_target_closes_the_client_and_bad_listen_raises():
    dead = socket.create_server(("127.0.0.1", 0))
    target = dead.getsockname()
    dead.close()
    with DelayRelay(("127.0.0.1", 0), target) as relay:
        assert relay.address is not None
        with socket.create_connection(relay.address, timeout=10) as conn:
            assert conn.recv(10) == b""
    with DelayRelay(("127.0.0.1", 0), target) as first:
        assert first.address is not None
        with pytest.raises(OSError):
            DelayRelay(first.address, target).start()


def test_relay_runs_as_a_process(echo_server: tuple[str, int], tmp_path: Path):
    port = free_port()
    target = f"{echo_server[0]}:{echo_server[1]}"
    argv = [
        sys.executable,
        "-m",
        "gaia.cluster.relay",
        f"127.0.0.1:{port}",
        target,
        "--delay-ms",
        "100",
    ]
    relay = proc.spawn("relay", argv, tmp_path / "relay.log")
    try:
        assert wait_listening(port, 15)
        with socket.create_connection(("127.0.0.1", port)) as conn:
            got, rtt = round_trip(conn, b"ping")
        assert got == b"ping" and rtt >= 0.2
        assert "relaying" in relay.log_tail()
    finally:
        relay.stop()
