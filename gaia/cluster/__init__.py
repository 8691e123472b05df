"""Hosts and faults: where replicas run, and how a campaign breaks them.

- `host`: the Host interface, and LocalHost (this machine's root namespace);
- `netns`: network namespaces on a bridge as hosts (NetnsCluster), removed on every exit;
- `remote`: SSH hosts from an inventory file (fabric); `sshd`: sshd inside a namespace;
- `nemesis`: kill / pause / restart / partition / one-way / loss / rate / delay, with undo;
- `relay`: the user-space TCP relay behind the delay fault;
- `schedule`: seeded fault schedules and the loop that plays them.
"""

from gaia.cluster.host import Host, HostCommandError, HostProcess, LocalHost, RunResult
from gaia.cluster.nemesis import Fault, Nemesis, NetworkFaultUnsupportedError, Node
from gaia.cluster.netns import NetnsCluster, NetnsHost, cleanup_stale
from gaia.cluster.relay import DelayRelay

__all__ = [
    "DelayRelay",
    "Fault",
    "Host",
    "HostCommandError",
    "HostProcess",
    "LocalHost",
    "Nemesis",
    "NetnsCluster",
    "NetnsHost",
    "NetworkFaultUnsupportedError",
    "Node",
    "RunResult",
    "cleanup_stale",
]
