"""SSH hosts: inventory parsing, and the real SSH path (fabric -> sshd in namespaces)."""

from __future__ import annotations

import hashlib
import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from gaia.cluster.host import HostCommandError
from gaia.cluster.nemesis import Nemesis, Node
from gaia.cluster.netns import NetnsCluster
from gaia.cluster.remote import HostSpec, RemoteHost, connect_inventory, load_inventory
from gaia.cluster.sshd import start_sshd
from gaia.errors import ConfigError, GaiaError
from tests.cluster.helpers import probe

TOML = """
[[hosts]]
name = "r1"
address = "192.0.2.10"
key_file = "~/.ssh/id_ed25519"

[[hosts]]
name = "r2"
address = "192.0.2.11"
user = "gaia"
port = 2222
python = "/opt/py/bin/python3"
interface = "ens3"
"""


def test_inventory_toml_and_json(tmp_path: Path):
    toml_path = tmp_path / "hosts.toml"
    toml_path.write_text(TOML)
    specs = load_inventory(toml_path)
    assert specs[0] == HostSpec("r1", "192.0.2.10", key_file="~/.ssh/id_ed25519")
    assert (specs[1].user, specs[1].port, specs[1].python, specs[1].interface) == (
        "gaia",
        2222,
        "/opt/py/bin/python3",
        "ens3",
    )
    json_path = tmp_path / "hosts.json"
    json_path.write_text(json.dumps({"hosts": [{"name": "j", "address": "192.0.2.5"}]}))
    assert load_inventory(json_path) == [HostSpec("j", "192.0.2.5")]
    assert not RemoteHost(specs[0]).network_faults and RemoteHost(specs[1]).network_faults


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[[hosts]]\nname = "a"\n', "missing \\['address'\\]"),
        ('[[hosts]]\nname = "a"\naddress = "x"\npasword = "p"\n', "unknown fields \\['pasword'\\]"),
        ('[[hosts]]\nname = "a"\naddress = "x"\n[[hosts]]\nname = "a"\naddress = "y"\n', "repeats"),
        ("hosts = [", "does not parse"),
        ("", "lists no hosts"),
    ],
)
def test_bad_inventories_are_config_errors(tmp_path: Path, text: str, message: str):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_inventory(path)


def test_missing_inventory_and_unreachable_host(tmp_path: Path):
    with pytest.raises(ConfigError, match="cannot read inventory"):
        load_inventory(tmp_path / "nope.toml")
    pytest.importorskip("fabric")
    # nothing listens on the discard port of loopback: a one-line error, not a traceback
    host = RemoteHost(HostSpec("gone", "127.0.0.1", port=9), connect_timeout=2)
    with pytest.raises(GaiaError, match="cannot reach gone"):
        host.run("true")


@pytest.fixture
def ssh_hosts(netns_ok: None, tmp_path: Path) -> Iterator[tuple[NetnsCluster, list[RemoteHost]]]:
    """Two namespaces running sshd, reached through an inventory file over fabric."""
    pytest.importorskip("fabric")
    with NetnsCluster(2) as cluster:
        servers, entries = [], []
        for host in cluster.hosts:
            server, spec = start_sshd(host, tmp_path / "ssh")
            servers.append(server)
            entries.append({k: v for k, v in vars(spec).items() if v is not None})
        inventory = tmp_path / "inventory.json"
        inventory.write_text(json.dumps({"hosts": entries}))
        remotes = connect_inventory(inventory)
        try:
            yield cluster, remotes
        finally:
            for remote in remotes:
                remote.close()
            for server in servers:
                server.stop()


@pytest.mark.netns
def test_ssh_run_put_get_spawn_kill(
    ssh_hosts: tuple[NetnsCluster, list[RemoteHost]], tmp_path: Path
):
    cluster, (r1, r2) = ssh_hosts
    # commands run inside the namespace that sshd listens in: its address, not the other's
    shown = r1.run(["ip", "-4", "-o", "addr", "show", "eth0"]).stdout
    assert f"{r1.address}/24" in shown and r2.address not in shown
    assert r2.run("cat", input="over ssh").stdout == "over ssh"
    with pytest.raises(HostCommandError, match="exited with 4"):
        r1.run("echo bad >&2; exit 4")

    local = tmp_path / "payload.bin"
    local.write_bytes(bytes(range(256)) * 64)
    r1.put(local, "/tmp/gaia-ssh-payload.bin")
    remote_sum = r1.run(["sha256sum", "/tmp/gaia-ssh-payload.bin"]).stdout.split()[0]
    assert remote_sum == hashlib.sha256(local.read_bytes()).hexdigest()
    back = tmp_path / "back.bin"
    r1.get("/tmp/gaia-ssh-payload.bin", back)
    assert back.read_bytes() == local.read_bytes()
    r1.run(["rm", "-f", "/tmp/gaia-ssh-payload.bin"])

    log = Path(r1.spec.workdir) / "logs" / "sleeper.log"
    sleeper = r1.spawn("sleeper", ["sh", "-c", "echo started; exec sleep 300"], log)
    assert Path(f"{log}.pid").read_text().strip() == str(sleeper.pid)
    assert sleeper.pid in cluster["h1"].pids()  # detached, but inside h1's namespace
    deadline = time.monotonic() + 5
    while "started" not in sleeper.log_tail() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "started" in sleeper.log_tail()
    assert sleeper.alive()
    sleeper.signal(signal.SIGSTOP)
    sleeper.signal(signal.SIGCONT)
    sleeper.kill()
    assert not sleeper.alive()
    assert sleeper.pid not in cluster["h1"].pids()


@pytest.mark.netns
def test_nemesis_over_ssh(ssh_hosts: tuple[NetnsCluster, list[RemoteHost]], tmp_path: Path):
    """Faults applied through SSH: nft rules and signals sent over fabric."""
    _, (r1, r2) = ssh_hosts
    server = r2.spawn(
        "echo", probe("echo-server", r2.address, 7300), Path(r2.spec.workdir) / "echo.log"
    )
    deadline = time.monotonic() + 10
    while "ready" not in server.log_tail() and time.monotonic() < deadline:
        time.sleep(0.05)
    node2 = Node("r2", r2, launch=None, process=server)
    with Nemesis([Node("r1", r1), node2]) as nemesis:
        assert r1.run(probe("tcp-echo", r2.address, 7300), check=False).ok
        nemesis.partition(["r1"])
        assert "gaia_nemesis" in r1.run(["nft", "list", "ruleset"]).stdout
        assert not r1.run(probe("tcp-echo", r2.address, 7300), check=False).ok
        nemesis.heal()
        assert r1.run(probe("tcp-echo", r2.address, 7300), check=False).ok
        pause = nemesis.pause(["r2"])
        assert not r1.run(probe("tcp-echo", r2.address, 7300), check=False).ok  # stopped server
        pause.undo()
        assert r1.run(probe("tcp-echo", r2.address, 7300), check=False).ok
        nemesis.kill(["r2"])
        assert not server.alive()
