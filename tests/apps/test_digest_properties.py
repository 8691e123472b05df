"""Property: two servers fed the same random command sequence digest equal, and any
further write that changes the data makes them differ (redis and memcached, the fast
ones; MariaDB and MongoDB are covered with fixed scripts in test_servers.py)."""

from __future__ import annotations

from contextlib import closing

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import apps

key = st.sampled_from([f"k{i}" for i in range(8)])
value = st.binary(min_size=1, max_size=16).filter(lambda v: b"\r\n" not in v)
operation = st.one_of(
    st.tuples(st.just("set"), key, value),
    st.tuples(st.just("delete"), key, st.just(b"")),
    st.tuples(st.just("append"), key, value),
)


def apply(server, ops):
    """redis-py and pymemcache clients both name these operations set/append/delete."""
    with closing(server.client()) as client:
        for op, k, v in ops:
            if op == "delete":
                client.delete(k)
            else:
                getattr(client, op)(k, v)


def reset(server):
    with closing(server.client()) as client:
        if server.name == "redis":
            client.flushall()
        else:
            client.flush_all()


@pytest.fixture(scope="module", params=["redis", "memcached"])
def pair(request):
    servers = []
    try:
        for _ in range(2):
            servers.append(apps.get(request.param)(deterministic=True).start())
        yield servers
    finally:
        for server in servers:
            server.stop()
            server.cleanup()


@settings(max_examples=25, deadline=None)
@given(ops=st.lists(operation, max_size=30), extra_key=key, extra=value)
def test_same_commands_equal_digests_then_a_write_differs(pair, ops, extra_key, extra):
    first, second = pair
    for server in (first, second):
        reset(server)
        apply(server, ops)
    assert first.digest() == second.digest()
    before = first.get(extra_key)
    apply(first, [("set", extra_key, extra)])
    if before != extra:
        assert first.digest() != second.digest()
    else:
        assert first.digest() == second.digest()
