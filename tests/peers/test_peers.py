"""External peers on loopback: each starts with 3 members, keeps acknowledged writes
readable after its leader is killed, and elects a new leader. 9 members: marked peers9."""

from __future__ import annotations

import pytest

from gaia.baselines.cluster import BaselineCluster
from gaia.peers.base import PeerCluster
from gaia.peers.etcd import EtcdCluster, EtcdJsonClient
from gaia.peers.zookeeper import ZooKeeperEnsemble

SERVERS = {"etcd": EtcdCluster, "zookeeper": ZooKeeperEnsemble}


def survive_leader_kill(cluster: PeerCluster) -> None:
    first = cluster.leader()
    client = cluster.client()
    try:
        for i in range(20):
            client.put(f"before-{i}", f"value-{i}".encode())
    finally:
        client.close()
    cluster.kill(first)
    survivors = [m for m in range(cluster.members) if m != first]
    second = cluster.wait_ready(120, survivors)
    assert second != first
    for member in survivors:  # every survivor serves the acknowledged writes
        reader = cluster.client(member)
        try:
            assert [reader.get(f"before-{i}") for i in range(20)] == \
                [f"value-{i}".encode() for i in range(20)]
        finally:
            reader.close()
    writer = cluster.client()
    try:
        writer.put("after", b"new leader")
        assert writer.get("after") == b"new leader"
    finally:
        writer.close()
    cluster.restart(first)  # the killed member rejoins from its data directory
    rejoined = cluster.client(first)
    try:
        assert rejoined.get("before-7") == b"value-7"
    finally:
        rejoined.close()


@pytest.mark.parametrize("name", ["etcd", "zookeeper"])
def test_three_members_survive_a_leader_kill(name, run_dir):
    cluster = SERVERS[name](3, run_dir)
    with cluster:
        survive_leader_kill(cluster)


@pytest.mark.peers9
@pytest.mark.parametrize("name", ["etcd", "zookeeper"])
def test_nine_members_survive_a_leader_kill(name, run_dir):
    with SERVERS[name](9, run_dir) as cluster:
        survive_leader_kill(cluster)


def test_etcd_clients_agree_grpc_and_json(run_dir):
    with EtcdCluster(3, run_dir) as cluster:
        grpc_client = cluster.client()
        json_client = EtcdJsonClient(cluster.endpoint(0))
        try:
            grpc_client.put("k", b"\x00binary\xff")
            assert json_client.get("k") == b"\x00binary\xff"
            json_client.put("j", b"json")
            assert grpc_client.get("j") == b"json"
            assert grpc_client.get("missing") is None
        finally:
            grpc_client.close()
            json_client.close()


def pysyncobj_leader_kill(members: int, run_dir) -> None:
    cluster = BaselineCluster("pysyncobj", members, run_dir).start()
    try:
        first = cluster.leader()
        assert cluster.run(100, window=2).committed == 100
        cluster.kill(first)
        second = cluster.wait_leader(120)
        assert second != first
        assert cluster.run(50).committed == 50
        states = cluster.stop()
    finally:
        cluster.close()
    survivors = set(range(members)) - {first}
    assert set(states) == survivors
    # every survivor holds the 100 writes from before the kill and the 50 after it
    assert {s["keys"] for s in states.values()} == {150}
    assert len({s["digest"] for s in states.values()}) == 1


def test_pysyncobj_three_members_survive_a_leader_kill(run_dir):
    pysyncobj_leader_kill(3, run_dir)


@pytest.mark.peers9
def test_pysyncobj_nine_members_survive_a_leader_kill(run_dir):
    pysyncobj_leader_kill(9, run_dir)
