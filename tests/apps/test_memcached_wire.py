"""The pure parts of the memcached protocol helpers: parsing, hashing, the dump format."""

from __future__ import annotations

from urllib.parse import quote_from_bytes

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apps.memcached_wire import (
    Item,
    decode_dump,
    digest_items,
    encode_dump,
    parse_metadump_key,
    parse_value_header,
    set_command,
)
from gaia.errors import GaiaError

# Text-protocol keys: 1..250 bytes without spaces or control characters.
keys = st.binary(min_size=1, max_size=250).filter(
    lambda k: all(33 <= b < 127 or b >= 128 for b in k)
)
items = st.builds(
    Item,
    key=keys,
    flags=st.integers(0, 2**32 - 1),
    ttl=st.integers(-1, 10**9),
    value=st.binary(max_size=300),
)
unique_items = st.lists(items, max_size=20, unique_by=lambda i: i.key)


@given(keys)
def test_metadump_keys_are_percent_decoded(key):
    line = b"key=" + quote_from_bytes(key).encode() + b" exp=-1 la=1 cas=2 fetch=no cls=1 size=65"
    assert parse_metadump_key(line) == key


def test_a_line_that_is_not_metadump_is_rejected():
    with pytest.raises(ValueError):
        parse_metadump_key(b"END")


def test_value_header_reads_size_flags_and_ttl():
    assert parse_value_header(b"VA 12 f7 t-1") == (12, 7, -1)
    assert parse_value_header(b"VA 0 t30 f0") == (0, 0, 30)
    with pytest.raises(ValueError):
        parse_value_header(b"EN")


@given(unique_items)
def test_dump_round_trips(entries):
    assert decode_dump(encode_dump(entries)) == entries


@given(unique_items)
def test_truncated_dump_is_refused(entries):
    data = encode_dump(entries)
    if len(entries) and len(data) > 30:
        with pytest.raises(GaiaError):
            decode_dump(data[:-1])


def test_foreign_file_is_refused():
    with pytest.raises(GaiaError):
        decode_dump(b"REDIS0009...")


@given(unique_items, st.randoms())
def test_digest_ignores_order_and_ttl(entries, rnd):
    shuffled = [item._replace(ttl=rnd.randint(-1, 100)) for item in entries]
    rnd.shuffle(shuffled)
    assert digest_items(shuffled) == digest_items(entries)


@given(unique_items.filter(bool), st.data())
def test_digest_changes_with_any_key_flag_or_value(entries, data):
    index = data.draw(st.integers(0, len(entries) - 1))
    field = data.draw(st.sampled_from(["key", "flags", "value"]))
    item = entries[index]
    if field == "key":
        changed = item._replace(key=item.key + b"x")
        if any(e.key == changed.key for e in entries):
            return
    elif field == "flags":
        changed = item._replace(flags=(item.flags + 1) % 2**32)
    else:
        changed = item._replace(value=item.value + b"x")
    mutated = [*entries[:index], changed, *entries[index + 1 :]]
    assert digest_items(mutated) != digest_items(entries)


def test_digest_separates_key_and_value_boundaries():
    assert digest_items([Item(b"ab", 0, -1, b"c")]) != digest_items([Item(b"a", 0, -1, b"bc")])


def test_set_command_keeps_the_remaining_ttl():
    now = 1_700_000_000.0
    assert set_command(Item(b"k", 3, -1, b"v"), now) == b"set k 3 0 1\r\nv\r\n"
    assert set_command(Item(b"k", 0, 30, b"v"), now).startswith(b"set k 0 30 1\r\n")
    assert set_command(Item(b"k", 0, 0, b"v"), now).startswith(b"set k 0 1 1\r\n")
    long_ttl = 40 * 24 * 3600  # beyond 30 days memcached reads an absolute time
    assert set_command(Item(b"k", 0, long_ttl, b"v"), now).startswith(
        b"set k 0 %d 1\r\n" % (int(now) + long_ttl)
    )


def test_set_command_never_wraps_past_the_largest_exptime():
    # YCSB stores items with exptime 2^31-1; memcached's clock lags ours, so the remaining
    # TTL it reports plus our `now` can pass 2^31-1, which memcached would read as expired
    now = 1_700_000_000.0
    ttl = 2**31 - 1 - int(now) + 2
    assert set_command(Item(b"k", 0, ttl, b"v"), now).startswith(b"set k 0 2147483647 1\r\n")
