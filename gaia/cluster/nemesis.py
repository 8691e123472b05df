"""The nemesis: faults injected into a running deployment, each with an explicit undo.

Process faults (any deployment): `kill` (SIGKILL; undo relaunches), `pause` (SIGSTOP;
undo SIGCONT), `restart` (SIGKILL then relaunch at once). Network faults act on traffic
between hosts, so they need hosts with their own network (namespaces or SSH hosts) and a
deployment whose replicas talk over it (the tcp transport): `partition` (symmetric),
`one_way`, `loss` (random drops), `rate_limit` (tc tbf), and `delay` through DelayRelays.
A shm deployment has no packets to drop: asking for a network fault there is an error
that says so, not a silent no-op.

`heal()` undoes every active fault (newest first); `with Nemesis(...)` always heals, and
every fault stays in `log` with its start and heal times for a campaign's timeline.
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gaia.cluster import netrules
from gaia.cluster.host import Host, HostProcess
from gaia.cluster.relay import DelayRelay
from gaia.errors import ConfigError, GaiaError

PROCESS_FAULTS = ("kill", "pause", "restart")
NETWORK_FAULTS = ("partition", "one-way", "loss", "rate", "delay")
FAULT_KINDS = PROCESS_FAULTS + NETWORK_FAULTS


class NetworkFaultUnsupportedError(GaiaError):
    def __init__(self, kind: str, why: str) -> None:
        super().__init__(
            f"network fault `{kind}` cannot act here: {why}",
            "use kill, pause or restart, or deploy over the tcp transport on namespace or"
            " SSH hosts for network faults",
        )


@dataclass
class Node:
    """A replica the nemesis can crash: where it runs and how to (re)launch it."""

    name: str
    host: Host
    launch: Callable[[], HostProcess] | None = None
    process: HostProcess | None = None

    def start(self) -> HostProcess:
        if self.launch is None:
            raise ConfigError(f"node {self.name} has no launch callback", "pass launch= to Node")
        self.process = self.launch()
        return self.process


@dataclass
class Fault:
    """One injected fault. `undo()` is idempotent; times are time.monotonic_ns()."""

    kind: str
    targets: tuple[str, ...]
    detail: str
    started_ns: int
    undo_action: Callable[[], None] = field(repr=False)
    healed_ns: int | None = None

    @property
    def active(self) -> bool:
        return self.healed_ns is None

    def undo(self) -> None:
        if self.healed_ns is None:
            self.undo_action()
            self.healed_ns = time.monotonic_ns()


def _nothing() -> None:
    return None


class Nemesis:
    """Inject and heal faults on `nodes` (of a deployment using `transport`)."""

    def __init__(
        self,
        nodes: Sequence[Node],
        transport: str = "tcp",
        relays: Mapping[str, DelayRelay] | None = None,
    ) -> None:
        self.nodes = {node.name: node for node in nodes}
        self.transport = transport
        self.relays = dict(relays or {})
        self.log: list[Fault] = []
        self._lock = threading.RLock()
        self._tables: dict[str, Host] = {}  # hosts holding our nft table
        self._shaped: dict[str, Host] = {}  # hosts with a tbf qdisc

    # --- bookkeeping -------------------------------------------------------------------

    def _select(self, names: Iterable[str]) -> list[Node]:
        names = list(names)
        unknown = [n for n in names if n not in self.nodes]
        if unknown or not names:
            raise ConfigError(
                f"unknown or no nodes {unknown or names} for a fault",
                f"choose among {sorted(self.nodes)}",
            )
        return [self.nodes[n] for n in names]

    def _record(
        self, kind: str, nodes: Iterable[str], detail: str, undo: Callable[[], None]
    ) -> Fault:
        fault = Fault(kind, tuple(nodes), detail, time.monotonic_ns(), undo)
        with self._lock:
            self.log.append(fault)
        return fault

    @property
    def active(self) -> list[Fault]:
        with self._lock:
            return [f for f in self.log if f.active]

    # --- process faults ----------------------------------------------------------------

    def _processes(self, names: Iterable[str]) -> list[tuple[Node, HostProcess]]:
        pairs = []
        for node in self._select(names):
            if node.process is None:
                raise ConfigError(f"node {node.name} has no running process", "start it first")
            pairs.append((node, node.process))
        return pairs

    def kill(self, names: Iterable[str]) -> Fault:
        """SIGKILL the nodes' processes; undo relaunches those that have a launcher (a node
        without one stays down: campaigns that want it back give every Node a launch=)."""
        pairs = self._processes(names)
        for _, process in pairs:
            process.kill()

        def relaunch() -> None:
            for node, _ in pairs:
                if node.launch is not None:
                    node.start()

        return self._record("kill", [n.name for n, _ in pairs], "SIGKILL", relaunch)

    def pause(self, names: Iterable[str]) -> Fault:
        """SIGSTOP the processes (a GC pause, a stalled VM); undo SIGCONTs them."""
        pairs = self._processes(names)
        for _, process in pairs:
            process.signal(signal.SIGSTOP)

        def resume() -> None:
            for _, process in pairs:
                process.signal(signal.SIGCONT)

        return self._record("pause", [n.name for n, _ in pairs], "SIGSTOP", resume)

    def restart(self, names: Iterable[str]) -> Fault:
        """Crash and relaunch at once (the launcher decides how: e.g. with recovery)."""
        pairs = self._processes(names)
        lacking = [node.name for node, _ in pairs if node.launch is None]
        if lacking:
            raise ConfigError(f"nodes {lacking} cannot be restarted", "give each Node a launch=")
        for node, process in pairs:
            process.kill()
            node.start()
        return self._record("restart", [n.name for n, _ in pairs], "SIGKILL + relaunch", _nothing)

    # --- network faults ----------------------------------------------------------------

    def _network_hosts(self, kind: str, nodes: Iterable[Node]) -> list[Host]:
        if self.transport == "shm":
            raise NetworkFaultUnsupportedError(
                kind,
                "this deployment uses the shm transport: replicas share memory, no"
                " packets cross a network",
            )
        hosts = []
        for node in nodes:
            if not node.host.network_faults:
                raise NetworkFaultUnsupportedError(
                    kind,
                    f"node {node.name} runs on {node.host!r}, which has no network interface to"
                    " fault (a LocalHost shares loopback; for an SSH host set `interface` in the"
                    " inventory)",
                )
            if node.host not in hosts:
                hosts.append(node.host)
        return hosts

    def _add_rule(self, host: Host, argv: list[str]) -> Callable[[], None]:
        with self._lock:
            self._tables[host.name] = host
        handle = netrules.parse_handle(host.run(argv).stdout)

        def remove() -> None:
            host.run(netrules.delete_rule(handle), check=False)

        return remove

    def _network_fault(
        self, kind: str, names: Iterable[str], detail: str, rules: list[tuple[Host, list[str]]]
    ) -> Fault:
        removers: list[Callable[[], None]] = []
        try:
            for host, argv in rules:
                removers.append(self._add_rule(host, argv))
        except BaseException:
            for remove in removers:
                remove()
            raise

        def undo() -> None:
            for remove in reversed(removers):
                remove()

        return self._record(kind, names, detail, undo)

    def partition(self, side: Iterable[str], other: Iterable[str] | None = None) -> Fault:
        """Cut all traffic between `side` and `other` (default: every other node)."""
        a, b = self._sides(side, other)
        a_hosts, b_hosts = self._network_hosts("partition", a), self._network_hosts("partition", b)
        rules = [(h, netrules.drop_from(x.address for x in b_hosts)) for h in a_hosts]
        rules += [(h, netrules.drop_from(x.address for x in a_hosts)) for h in b_hosts]
        names = [n.name for n in a]
        detail = f"{names} | {[n.name for n in b]}"
        return self._network_fault("partition", names, detail, rules)

    def one_way(self, senders: Iterable[str], receivers: Iterable[str] | None = None) -> Fault:
        """Drop what `senders` send to `receivers`; the reverse direction still flows."""
        a, b = self._sides(senders, receivers)
        a_hosts, b_hosts = self._network_hosts("one-way", a), self._network_hosts("one-way", b)
        rules = [(h, netrules.drop_from(x.address for x in a_hosts)) for h in b_hosts]
        names = [n.name for n in a]
        detail = f"{names} -/-> {[n.name for n in b]}"
        return self._network_fault("one-way", names, detail, rules)

    def _sides(
        self, side: Iterable[str], other: Iterable[str] | None
    ) -> tuple[list[Node], list[Node]]:
        a = self._select(side)
        rest = [n for n in self.nodes if n not in {x.name for x in a}]
        b = self._select(rest if other is None else other)
        if {n.name for n in a} & {n.name for n in b}:
            raise ConfigError("a node cannot be on both sides of a partition", "split the nodes")
        return a, b

    def loss(self, names: Iterable[str], percent: int) -> Fault:
        """Drop `percent`% of the packets arriving at the nodes' hosts."""
        nodes = self._select(names)
        rules = [(h, netrules.drop_random(percent)) for h in self._network_hosts("loss", nodes)]
        node_names = [n.name for n in nodes]
        return self._network_fault("loss", node_names, f"{percent}% in", rules)

    def rate_limit(self, names: Iterable[str], kbit: int) -> Fault:
        """Limit what the nodes' hosts send to `kbit` kbit/s (tc tbf on their interface)."""
        nodes = self._select(names)
        hosts = self._network_hosts("rate", nodes)
        for host in hosts:
            host.run(netrules.tbf(str(host.interface), kbit))
            with self._lock:
                self._shaped[host.name] = host

        def undo() -> None:
            for host in hosts:
                host.run(netrules.tbf_remove(str(host.interface)), check=False)
                with self._lock:
                    self._shaped.pop(host.name, None)

        return self._record("rate", [n.name for n in nodes], f"{kbit} kbit/s out", undo)

    def delay(self, relay_names: Iterable[str], delay_s: float) -> Fault:
        """Delay traffic through the named relays by `delay_s` each way."""
        if self.transport == "shm":
            raise NetworkFaultUnsupportedError("delay", "this deployment uses shm")
        names = list(relay_names)
        missing = [n for n in names if n not in self.relays]
        if missing or not names:
            raise ConfigError(
                f"unknown relays {missing or names}", f"choose among {sorted(self.relays)}"
            )
        before = {name: self.relays[name].delay_s for name in names}
        for name in names:
            self.relays[name].delay_s = delay_s

        def undo() -> None:
            for name, previous in before.items():
                self.relays[name].delay_s = previous

        return self._record("delay", names, f"+{delay_s * 1000:.0f} ms each way", undo)

    # --- generic entry point and healing ------------------------------------------------

    def apply(self, kind: str, targets: Sequence[str], **params: Any) -> Fault:
        """Inject a fault by name (what a schedule calls); params as the methods take."""
        if kind == "partition":
            return self.partition(targets, params.get("other"))
        if kind == "one-way":
            return self.one_way(targets, params.get("other"))
        actions: dict[str, Callable[[], Fault]] = {
            "kill": lambda: self.kill(targets),
            "pause": lambda: self.pause(targets),
            "restart": lambda: self.restart(targets),
            "loss": lambda: self.loss(targets, int(params.get("percent", 30))),
            "rate": lambda: self.rate_limit(targets, int(params.get("kbit", 1024))),
            "delay": lambda: self.delay(targets, float(params.get("delay_s", 0.05))),
        }
        if kind not in actions:
            raise ConfigError(
                f"unknown fault kind {kind!r}", f"choose among {', '.join(FAULT_KINDS)}"
            )
        return actions[kind]()

    def heal(self) -> list[Fault]:
        """Undo every active fault, newest first, then drop leftover rules and qdiscs."""
        errors = []
        healed = []
        for fault in reversed(self.active):
            try:
                fault.undo()
                healed.append(fault)
            except Exception as exc:
                errors.append(f"{fault.kind} {fault.targets}: {exc}")
        with self._lock:
            tables, self._tables = list(self._tables.values()), {}
            shaped, self._shaped = list(self._shaped.values()), {}
        for host in tables:
            host.run(netrules.delete_table(), check=False)
        for host in shaped:
            host.run(netrules.tbf_remove(str(host.interface)), check=False)
        if errors:
            raise GaiaError("healing failed for " + "; ".join(errors), "see the host logs")
        return healed

    def __enter__(self) -> Nemesis:
        return self

    def __exit__(self, *exc: object) -> None:
        self.heal()
