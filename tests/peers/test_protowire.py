"""The hand-written protobuf pieces round-trip (property) and read etcd's field layout."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gaia.peers.protowire import bytes_field, fields, first, varint


@given(st.lists(st.tuples(st.integers(1, 2000), st.binary(max_size=300)), max_size=8))
def test_length_delimited_fields_round_trip(pairs):
    message = b"".join(bytes_field(n, data) for n, data in pairs)
    assert fields(message) == pairs


@given(st.integers(0, 2**63 - 1))
def test_varint_fields_round_trip(value):
    assert fields(varint(3 << 3) + varint(value)) == [(3, value)]


def test_range_response_value_is_read_from_its_keyvalue():
    kv = bytes_field(1, b"key") + varint(2 << 3) + varint(7) + bytes_field(5, b"value")
    response = bytes_field(1, b"header") + bytes_field(2, kv)
    kvs = [v for n, v in fields(response) if n == 2]
    assert first(kvs[0], 5) == b"value" and first(kvs[0], 9, b"") == b""
