"""The few protobuf wire-format pieces the etcd gRPC client needs.

Why by hand: etcd's messages used here (PutRequest, RangeRequest/Response) have a handful
of fields, and generated stubs would drag in protobuf, whose C implementation the
`etcd3` client cannot use here. Encoding: tag = field << 3 | wire type; varints; length-
delimited bytes.
"""

from __future__ import annotations

VARINT = 0
FIXED64 = 1
LENGTH = 2
FIXED32 = 5


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def bytes_field(number: int, data: bytes) -> bytes:
    return varint(number << 3 | LENGTH) + varint(len(data)) + data


def _read_varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, pos
        shift += 7


def fields(data: bytes) -> list[tuple[int, int | bytes]]:
    """(field number, value) pairs of one message: ints for varints/fixed, bytes for
    length-delimited fields (nested messages are parsed by calling this again)."""
    out: list[tuple[int, int | bytes]] = []
    pos = 0
    while pos < len(data):
        tag, pos = _read_varint(data, pos)
        number, kind = tag >> 3, tag & 7
        if kind == VARINT:
            value, pos = _read_varint(data, pos)
            out.append((number, value))
        elif kind == LENGTH:
            size, pos = _read_varint(data, pos)
            out.append((number, data[pos : pos + size]))
            pos += size
        elif kind == FIXED64:
            out.append((number, int.from_bytes(data[pos : pos + 8], "little")))
            pos += 8
        elif kind == FIXED32:
            out.append((number, int.from_bytes(data[pos : pos + 4], "little")))
            pos += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {kind}")
    return out


def first(message: bytes, number: int, default: int | bytes | None = None):
    """The first value of field `number` in `message`."""
    return next((v for n, v in fields(message) if n == number), default)
