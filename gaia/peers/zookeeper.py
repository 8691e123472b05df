"""ZooKeeper (Debian's zookeeper 3.8) ensembles and standalone servers, kazoo client.

Launched as `java -cp zookeeper.jar:slf4j-simple.jar QuorumPeerMain zoo.cfg` (enough
for 3.8) with `admin.enableServer=false` (otherwise every member binds 8080). Members'
roles come from the `srvr` four-letter command ("Mode: leader|follower|standalone").
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

from gaia.errors import GaiaError, MissingBinaryError
from gaia.net import free_ports
from gaia.peers.base import PeerCluster

JARS = ("/usr/share/java/zookeeper.jar", "/usr/share/java/slf4j-simple.jar")
PACKAGE = "zookeeper"
MAIN = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
TICK_MS = 500  # sessions time out after 2-20 ticks; 2 cores shared by 9 JVMs need slack
KV_ROOT = "/gaia"


def check_installed() -> str:
    """The java binary, once java and ZooKeeper's jars are known to be there."""
    java = shutil.which("java")
    if java is None:
        raise MissingBinaryError("java", "default-jre-headless")
    for jar in JARS:
        if not Path(jar).exists():
            raise MissingBinaryError(jar, PACKAGE)
    return java


def java_argv(config: Path, log_dir: Path) -> list[str]:
    """The JVM command line for one server reading `config`."""
    return [check_installed(), "-Xms32m", "-Xmx256m", f"-Dzookeeper.log.dir={log_dir}",
            "-cp", ":".join(JARS), MAIN, str(config)]


def write_config(path: Path, data_dir: Path, client_port: int,
                 servers: list[tuple[int, int]] | None = None, myid: int = 1) -> Path:
    """zoo.cfg for one server: standalone when `servers` (peer, election ports) is None."""
    data_dir.mkdir(parents=True, exist_ok=True)
    lines = [f"tickTime={TICK_MS}", "initLimit=20", "syncLimit=10",
             f"dataDir={data_dir}", f"clientPort={client_port}",
             "clientPortAddress=127.0.0.1", "admin.enableServer=false",
             "4lw.commands.whitelist=srvr,ruok", "maxClientCnxns=0"]
    if servers is not None:
        (data_dir / "myid").write_text(f"{myid}\n")
        lines += [f"server.{i + 1}=127.0.0.1:{peer}:{election}"
                  for i, (peer, election) in enumerate(servers)]
    path.write_text("\n".join(lines) + "\n")
    return path


def four_letters(port: int, command: str = "srvr", timeout: float = 2.0) -> str:
    """Send a four-letter command to a server; '' when it does not answer."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
            sock.sendall(command.encode())
            chunks = []
            while chunk := sock.recv(4096):
                chunks.append(chunk)
            return b"".join(chunks).decode(errors="replace")
    except OSError:
        return ""


def server_mode(port: int) -> str:
    """leader / follower / standalone, or '' while not serving."""
    for line in four_letters(port).splitlines():
        if line.startswith("Mode:"):
            return line.split(":", 1)[1].strip()
    return ""


class KazooKV:
    """put/get on znodes under /gaia through kazoo (what measurements use)."""

    def __init__(self, hosts: str, timeout: float = 15.0) -> None:
        from kazoo.client import KazooClient
        from kazoo.exceptions import NodeExistsError, NoNodeError

        self._exists_error, self._no_node = NodeExistsError, NoNodeError
        self.client = KazooClient(hosts=hosts, timeout=timeout)
        try:
            self.client.start(timeout=timeout)
        except Exception as exc:
            self.client.close()
            raise GaiaError(f"cannot connect to ZooKeeper at {hosts} ({exc})",
                            "check that the ensemble has a quorum") from None
        self.client.ensure_path(KV_ROOT)

    def put(self, key: str, value: bytes) -> None:
        path = f"{KV_ROOT}/{key}"
        try:
            self.client.set(path, value)
        except self._no_node:
            try:
                self.client.create(path, value)
            except self._exists_error:
                self.client.set(path, value)

    def get(self, key: str) -> bytes | None:
        try:
            return self.client.get(f"{KV_ROOT}/{key}")[0]
        except self._no_node:
            return None

    def close(self) -> None:
        self.client.stop()
        self.client.close()


class ZooKeeperEnsemble(PeerCluster):
    name = "zookeeper"

    def prepare(self) -> None:
        ports = free_ports(3 * self.members)
        self.client_ports = ports[: self.members]
        servers = list(zip(ports[self.members : 2 * self.members], ports[2 * self.members :],
                           strict=True))
        self.configs = [
            write_config(self.root / f"zoo-{i}.cfg", self.root / f"m{i}",
                         self.client_ports[i], servers if self.members > 1 else None, i + 1)
            for i in range(self.members)
        ]

    def argv(self, member: int) -> list[str]:
        return java_argv(self.configs[member], self.run_dir)

    def member_ready(self, member: int) -> bool:
        return server_mode(self.client_ports[member]) in ("leader", "follower", "standalone")

    def leader(self) -> int | None:
        for member, process in self.processes.items():
            if process.alive() and server_mode(self.client_ports[member]) in ("leader",
                                                                               "standalone"):
                return member
        return None

    def client(self, member: int | None = None) -> KazooKV:
        if member is None:
            member = self.leader()
        if member is None:
            member = next(m for m, p in self.processes.items() if p.alive())
        return KazooKV(f"127.0.0.1:{self.client_ports[member]}")
