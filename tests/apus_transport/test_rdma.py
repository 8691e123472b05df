"""rdma transport: runs only where pyverbs finds a device; here it must refuse clearly."""

from __future__ import annotations

import pytest

from gaia.apus.transport import make
from gaia.apus.transport.rdma import NO_DEVICE, Endpoint, rdma_available
from gaia.errors import GaiaError

AVAILABLE, WHY = rdma_available()


@pytest.mark.skipif(AVAILABLE, reason="an RDMA device exists: the refusal path is moot")
def test_without_a_device_make_rdma_is_a_clear_error(group):
    with pytest.raises(GaiaError, match=r"no RDMA device \(unverified path\)") as info:
        make("rdma", group, 0, 4096, {0: "127.0.0.1:0", 1: "127.0.0.1:1"})
    assert "shm or tcp" in info.value.fix


def test_the_side_channel_message_round_trips():
    ep = Endpoint(group=7, replica=2, qp_num=0x1234, lid=3, gid="fe80::1", psn=0,
                  rkey=0xBEEF, address=0x7F0000001000, region_size=1 << 20)
    assert Endpoint.decode(ep.encode()) == ep


@pytest.mark.rdma
@pytest.mark.skipif(not AVAILABLE, reason=WHY if not AVAILABLE else "")
def test_rdma_write_lands_whole_in_the_peers_region(group, book):
    peers = {0: book[0], 1: book[1]}
    a, b = make("rdma", group, 0, 4096, peers), make("rdma", group, 1, 4096, peers)
    try:
        assert a.wait_connected(10)
        assert a.write(1, 0, b"rdma-body-canary")
        assert bytes(b.local[:16]) == b"rdma-body-canary"
    finally:
        a.close()
        b.close()


def test_the_skip_reason_names_the_unverified_path():
    if not AVAILABLE:
        assert NO_DEVICE in WHY
