"""The tcp transport's wire format: one hello per connection, then framed writes.

Why a hello: a receiver must refuse a sender from another group, aimed at another replica,
or sized for another region before it lets it write into memory. Why frames: the stream
carries `write(offset, bytes)` operations that the receiver applies in order.

Frame (little-endian, 16-byte header): u64 offset | u32 length | u32 op, then `length`
bytes (op WRITE). op WAKE has no body: the receiver futex-wakes the 32-bit word at offset.
"""

from __future__ import annotations

import hashlib
import struct
from dataclasses import dataclass

HEADER_BYTES = 16
OP_WRITE = 1
OP_WAKE = 2

HELLO_MAGIC = 0x3147455241494147  # "GAIAREG1" little-endian
HELLO = struct.Struct("<QQIIQ")  # magic, group hash, sender id, receiver id, region size

ACCEPTED = 0
REFUSED_MAGIC = 1
REFUSED_GROUP = 2
REFUSED_RECEIVER = 3
REFUSED_SIZE = 4

REFUSAL_TEXT = {
    REFUSED_MAGIC: "the peer does not speak the GAIA region protocol",
    REFUSED_GROUP: "the peer belongs to another group",
    REFUSED_RECEIVER: "the peer has another replica id than the address book says",
    REFUSED_SIZE: "the peer's region has another size",
}


def group_hash(group_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(group_id.encode(), digest_size=8).digest(), "little")


@dataclass(frozen=True)
class Hello:
    group_hash: int
    sender: int
    receiver: int
    region_size: int
    magic: int = HELLO_MAGIC

    def pack(self) -> bytes:
        return HELLO.pack(self.magic, self.group_hash, self.sender, self.receiver, self.region_size)

    @classmethod
    def unpack(cls, data: bytes) -> Hello:
        magic, ghash, sender, receiver, size = HELLO.unpack(data)
        return cls(ghash, sender, receiver, size, magic)

    def verdict(self, expected: Hello) -> int:
        """ACCEPTED, or why a receiver that expects `expected` (sender ignored) refuses."""
        if self.magic != HELLO_MAGIC:
            return REFUSED_MAGIC
        if self.group_hash != expected.group_hash:
            return REFUSED_GROUP
        if self.receiver != expected.receiver:
            return REFUSED_RECEIVER
        if self.region_size != expected.region_size:
            return REFUSED_SIZE
        return ACCEPTED


def parse_address(text: str) -> tuple[str, int]:
    """'host:port' -> (host, port); ValueError if malformed."""
    host, sep, port = str(text).rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) < 65536:
        raise ValueError(f"{text!r} is not host:port")
    return host.strip("[]"), int(port)
