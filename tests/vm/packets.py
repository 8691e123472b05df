"""Hand-built Ethernet/IPv4 frames for the switch and gate tests."""

from __future__ import annotations

import socket
import struct

GUEST_MAC = bytes.fromhex("5254009a0002")
CLIENT_MAC = bytes.fromhex("02000000aa01")


def _ip_checksum(header: bytes) -> int:
    total = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4(src: str, dst: str, proto: int, body: bytes, src_mac=CLIENT_MAC, dst_mac=GUEST_MAC) -> bytes:
    header = struct.pack(
        "!BBHHHBBH4s4s", 0x45, 0, 20 + len(body), 0, 0, 64, proto, 0,
        socket.inet_aton(src), socket.inet_aton(dst),
    )
    header = header[:10] + struct.pack("!H", _ip_checksum(header)) + header[12:]
    return dst_mac + src_mac + b"\x08\x00" + header + body


def tcp(src: str, dst: str, sport: int, dport: int, seq: int, ack: int, flags: int,
        payload: bytes = b"", **macs) -> bytes:
    body = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0)
    return ipv4(src, dst, 6, body + payload, **macs)


def udp(src: str, dst: str, sport: int, dport: int, payload: bytes, **macs) -> bytes:
    body = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload
    return ipv4(src, dst, 17, body, **macs)
