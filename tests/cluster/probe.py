"""Tiny network probes the cluster tests run inside namespaces (`python probe.py CMD ...`).

echo-server ADDR PORT          TCP echo server (forever)
tcp-echo ADDR PORT             one round trip; exit 0 and print the RTT in s, or exit 1
udp-count ADDR PORT            count datagrams until SIGTERM; print the count
udp-send ADDR PORT N           send N numbered datagrams
sink ADDR PORT                 accept one TCP connection, read to EOF, print bytes read
send ADDR PORT NBYTES          send NBYTES and wait for the close; print the seconds taken
heartbeat FILE                 write an increasing counter to FILE every 10 ms (forever)
"""

from __future__ import annotations

import signal
import socket
import sys
import threading
import time
from pathlib import Path


def echo_server(addr: str, port: int) -> None:
    server = socket.create_server((addr, port), reuse_port=False)
    print("ready", flush=True)

    def serve(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    while True:
        conn, _ = server.accept()
        threading.Thread(target=serve, args=(conn,), daemon=True).start()


def tcp_echo(addr: str, port: int) -> int:
    started = time.monotonic()
    try:
        with socket.create_connection((addr, port), timeout=1.5) as conn:
            conn.sendall(b"ping")
            reply = conn.recv(4)
    except OSError as exc:
        print(f"failed: {exc}")
        return 1
    print(f"{time.monotonic() - started:.6f}")
    return 0 if reply == b"ping" else 1


def udp_count(addr: str, port: int) -> None:
    """Count until SIGTERM, then drain what is queued and print the count."""
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind((addr, port))
    print("ready", flush=True)
    sock.settimeout(0.05)
    count = 0
    while not stopping.is_set():
        try:
            sock.recv(2048)
            count += 1
        except TimeoutError:
            pass
    sock.setblocking(False)
    try:
        while True:
            sock.recv(2048)
            count += 1
    except BlockingIOError:
        pass
    print(f"count {count}", flush=True)


def udp_send(addr: str, port: int, count: int) -> None:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(count):
        sock.sendto(str(i).encode(), (addr, port))
        if i % 50 == 49:
            time.sleep(0.002)  # stay far below any queue limit: only the nemesis drops


def sink(addr: str, port: int) -> None:
    server = socket.create_server((addr, port))
    print("ready", flush=True)
    conn, _ = server.accept()
    total = 0
    with conn:
        while data := conn.recv(65536):
            total += len(data)
    print(f"bytes {total}", flush=True)


def send(addr: str, port: int, nbytes: int) -> None:
    started = time.monotonic()
    with socket.create_connection((addr, port), timeout=60) as conn:
        conn.sendall(b"x" * nbytes)
        conn.shutdown(socket.SHUT_WR)
        conn.recv(1)  # the sink closes after reading everything
    print(f"{time.monotonic() - started:.6f}")


def heartbeat(path: str) -> None:
    target = Path(path)
    beat = 0
    while True:
        beat += 1
        target.write_text(str(beat))
        time.sleep(0.01)


def main(argv: list[str]) -> int:
    cmd, *args = argv
    if cmd == "echo-server":
        echo_server(args[0], int(args[1]))
    elif cmd == "tcp-echo":
        return tcp_echo(args[0], int(args[1]))
    elif cmd == "udp-count":
        udp_count(args[0], int(args[1]))
    elif cmd == "udp-send":
        udp_send(args[0], int(args[1]), int(args[2]))
    elif cmd == "sink":
        sink(args[0], int(args[1]))
    elif cmd == "send":
        send(args[0], int(args[1]), int(args[2]))
    elif cmd == "heartbeat":
        heartbeat(args[0])
    else:
        print(__doc__)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
