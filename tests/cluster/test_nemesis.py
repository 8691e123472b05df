"""The nemesis on real namespaces, real nftables, tc and processes: each fault and its undo."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from gaia.cluster.host import Host, HostProcess, LocalHost
from gaia.cluster.nemesis import Nemesis, NetworkFaultUnsupportedError, Node
from gaia.cluster.netns import NetnsCluster
from gaia.cluster.relay import DelayRelay
from gaia.errors import ConfigError
from tests.cluster.helpers import echo_works, probe, wait_for_log

pytestmark = pytest.mark.netns
PORT = 7000


def nodes_of(cluster: NetnsCluster) -> list[Node]:
    return [Node(host.name, host) for host in cluster.hosts]


def start_echo(host: Host, tmp_path: Path) -> HostProcess:
    server = host.spawn(
        f"echo-{host.name}",
        probe("echo-server", host.address, PORT),
        tmp_path / f"echo-{host.name}.log",
    )
    wait_for_log(server, "ready")
    return server


def udp_received(sender: Host, receiver: Host, count: int, tmp_path: Path) -> int:
    """Datagrams `receiver` got of `count` sent by `sender`."""
    counter = receiver.spawn(
        "udp",
        probe("udp-count", receiver.address, 7100),
        tmp_path / f"udp-{time.monotonic_ns()}.log",
    )
    wait_for_log(counter, "ready")
    sender.run(probe("udp-send", receiver.address, 7100, count))
    time.sleep(0.3)  # let the receiver read what is queued
    counter.stop()
    return int(wait_for_log(counter, "count").split("count ")[-1].split()[0])


def nft_rules(host: Host) -> str:
    return host.run(["nft", "list", "ruleset"]).stdout


def test_partition_blocks_tcp_and_heal_restores_it(cluster: NetnsCluster, tmp_path: Path):
    h1, h2, h3 = cluster.hosts
    server = start_echo(h2, tmp_path)
    assert echo_works(h1, h2.address, PORT)
    with Nemesis(nodes_of(cluster)) as nemesis:
        fault = nemesis.partition(["h1"])  # h1 | h2 h3
        assert fault.targets == ("h1",) and "h2" in fault.detail
        assert not echo_works(h1, h2.address, PORT)
        assert echo_works(h3, h2.address, PORT)  # the majority side still talks
        nemesis.heal()
        assert not fault.active
        assert echo_works(h1, h2.address, PORT)
        assert "gaia_nemesis" not in nft_rules(h1)
    server.stop()


def test_one_way_partition_blocks_one_direction_only(cluster: NetnsCluster, tmp_path: Path):
    h1, h2, _ = cluster.hosts
    with Nemesis(nodes_of(cluster)) as nemesis:
        nemesis.one_way(["h1"], ["h2"])
        assert udp_received(h1, h2, 200, tmp_path) == 0
        assert udp_received(h2, h1, 200, tmp_path) == 200
    assert udp_received(h1, h2, 200, tmp_path) == 200  # healed on leaving the block


def test_loss_drops_about_the_share_asked(cluster: NetnsCluster, tmp_path: Path):
    h1, h2, _ = cluster.hosts
    with Nemesis(nodes_of(cluster)) as nemesis:
        nemesis.loss(["h2"], 30)
        received = udp_received(h1, h2, 2000, tmp_path)
    lost = 1 - received / 2000
    assert 0.15 < lost < 0.45, f"lost {lost:.1%} with 30% loss"
    assert udp_received(h1, h2, 500, tmp_path) == 500


def test_rate_limit_slows_a_bulk_transfer(cluster: NetnsCluster, tmp_path: Path):
    h1, h2, _ = cluster.hosts
    with Nemesis(nodes_of(cluster)) as nemesis:
        nemesis.rate_limit(["h1"], 1000)  # 1 Mbit/s: 500 KB need ~4 s
        assert "tbf" in h1.run(["tc", "qdisc", "show", "dev", "eth0"]).stdout
        sink = h2.spawn("sink", probe("sink", h2.address, 7200), tmp_path / "sink.log")
        wait_for_log(sink, "ready")
        elapsed = float(h1.run(probe("send", h2.address, 7200, 500_000)).stdout)
        assert "bytes 500000" in wait_for_log(sink, "bytes")
        assert elapsed > 2.0, f"500 KB at 1 Mbit/s took only {elapsed:.2f} s"
    assert "tbf" not in h1.run(["tc", "qdisc", "show", "dev", "eth0"]).stdout


def test_relay_delay_adds_at_least_the_configured_delay(cluster: NetnsCluster, tmp_path: Path):
    h1, h2, _ = cluster.hosts
    server = start_echo(h2, tmp_path)
    with DelayRelay((cluster.gateway, 0), (h2.address, PORT)) as relay:
        assert relay.address is not None
        host, port = relay.address
        with Nemesis(nodes_of(cluster), relays={"h2": relay}) as nemesis:
            nemesis.delay(["h2"], 0.15)
            rtt = float(h1.run(probe("tcp-echo", host, port)).stdout)
            assert rtt >= 0.3, f"round trip {rtt:.3f} s through a 150 ms/way relay"
        assert relay.delay_s == 0.0
        assert echo_works(h1, host, port)
    server.stop()


def heartbeat_node(host: Host, tmp_path: Path) -> tuple[Node, Path]:
    """Node "h1": a process writing a growing counter to a file, relaunchable."""
    beat = tmp_path / "beat"
    node = Node(
        "h1",
        host,
        launch=lambda: host.spawn("beat", probe("heartbeat", beat), tmp_path / "beat.log"),
    )
    node.start()
    return node, beat


def beats(path: Path) -> int:
    for _ in range(100):
        text = path.read_text() if path.exists() else ""
        if text:
            return int(text)
        time.sleep(0.01)
    return 0


def advances(path: Path, timeout: float = 10.0) -> bool:
    first = beats(path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if beats(path) > first:
            return True
        time.sleep(0.05)
    return False


def reaches_state(pid: int, state: str, timeout: float = 5.0) -> bool:
    """Whether /proc shows the process in `state` (signals take effect asynchronously)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0] == state:
            return True
        time.sleep(0.01)
    return False


@pytest.mark.parametrize("where", ["netns", "local"])
def test_kill_pause_restart_a_real_process(
    request: pytest.FixtureRequest, tmp_path: Path, where: str
):
    host = request.getfixturevalue("cluster")["h1"] if where == "netns" else LocalHost()
    node, beat = heartbeat_node(host, tmp_path)
    first = node.process
    assert first is not None and advances(beat)
    with Nemesis([node], transport="tcp" if where == "netns" else "shm") as nemesis:
        paused = nemesis.pause(["h1"])
        assert reaches_state(first.pid, "T")
        frozen = beats(beat)
        time.sleep(0.3)
        assert beats(beat) == frozen
        paused.undo()
        assert advances(beat)

        killed = nemesis.kill(["h1"])
        assert not first.alive()
        killed.undo()  # relaunches
        second = node.process
        assert second is not None and second.pid != first.pid and second.alive()
        assert advances(beat)

        nemesis.restart(["h1"])
        third = node.process
        assert third is not None and third.pid != second.pid and not second.alive()
        assert advances(beat)
        assert [f.kind for f in nemesis.log] == ["pause", "kill", "restart"]
    assert third.alive()
    third.stop()


def test_heal_resumes_a_paused_process(cluster: NetnsCluster, tmp_path: Path):
    node, beat = heartbeat_node(cluster["h1"], tmp_path)
    assert node.process is not None
    with Nemesis([node]) as nemesis:
        nemesis.pause(["h1"])
    assert advances(beat)
    node.process.stop()


def test_network_faults_are_refused_on_shm_and_on_local_hosts(tmp_path: Path):
    local = [Node("a", LocalHost("a")), Node("b", LocalHost("b"))]
    with pytest.raises(NetworkFaultUnsupportedError, match="shm transport"):
        Nemesis(local, transport="shm").partition(["a"])
    with pytest.raises(NetworkFaultUnsupportedError, match="no network interface"):
        Nemesis(local, transport="tcp").loss(["a"], 10)
    with pytest.raises(NetworkFaultUnsupportedError, match="shm"):
        Nemesis(local, transport="shm", relays={}).delay(["a"], 0.1)


def test_bad_fault_requests_are_config_errors(cluster: NetnsCluster, tmp_path: Path):
    nemesis = Nemesis(nodes_of(cluster))
    with pytest.raises(ConfigError, match="unknown or no nodes"):
        nemesis.partition(["h9"])
    with pytest.raises(ConfigError, match="both sides"):
        nemesis.partition(["h1"], ["h1", "h2"])
    with pytest.raises(ConfigError, match="no running process"):
        nemesis.kill(["h1"])
    sleeper = cluster["h1"].spawn("sleeper", ["sleep", "300"], tmp_path / "sleep.log")
    nemesis.nodes["h1"].process = sleeper
    with pytest.raises(ConfigError, match="cannot be restarted"):
        nemesis.restart(["h1"])
    assert sleeper.alive()  # refused before anything was killed
    sleeper.stop()
    with pytest.raises(ConfigError, match="unknown fault kind"):
        nemesis.apply("meteor", ["h1"])
    with pytest.raises(ValueError, match="1-100"):
        nemesis.loss(["h1"], 0)
    assert nemesis.heal() == []


def test_apply_by_name_and_heal_all(cluster: NetnsCluster, tmp_path: Path):
    h1, h2, _ = cluster.hosts
    server = start_echo(h2, tmp_path)
    nemesis = Nemesis(nodes_of(cluster))
    nemesis.apply("partition", ["h1"], other=["h2"])
    nemesis.apply("loss", ["h3"], percent=50)
    nemesis.apply("rate", ["h3"], kbit=512)
    assert not echo_works(h1, h2.address, PORT)
    assert len(nemesis.active) == 3
    healed = nemesis.heal()
    assert [f.kind for f in healed] == ["rate", "loss", "partition"]
    assert echo_works(h1, h2.address, PORT)
    for host in cluster.hosts:
        assert "gaia_nemesis" not in nft_rules(host)
    server.stop()
