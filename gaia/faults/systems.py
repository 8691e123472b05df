"""The systems a campaign can torture, as one interface, and the `--infra` registry.

A `System` is a running replicated deployment of one app: the nemesis gets its replicas
as `gaia.cluster.Node`s; the workload asks it where the leader serves; after the faults
it is healed (`recover`) and asked for every replica's endpoint and state digest.

Infrastructures register a factory by name; the module behind a name is imported only
when a campaign asks for it, so `--infra vm` does not load QEMU code for an APUS run.
Other parts plug in with `register("name", "package.module:factory")`.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from gaia.cluster.nemesis import FAULT_KINDS, Node
from gaia.errors import ConfigError
from gaia.faults.clients import Connector
from gaia.faults.options import CampaignOptions
from gaia.faults.workload import read_at


class System(ABC):
    """One deployment under test. Replica names are what the nemesis and reports use."""

    #: fault kinds this system can be given (the options are checked against it)
    kinds: tuple[str, ...] = FAULT_KINDS
    transport: str = "shm"
    #: clients wait at least this long for a reply (a VM sync holds inputs ~1 s)
    min_op_timeout: float = 0.0
    #: False once a run's checks broke the deployment: the next run gets a fresh one
    reusable: bool = True

    @classmethod  # noqa: B027 - an optional hook, most infrastructures accept everything
    def refuse(cls, options: CampaignOptions) -> None:
        """Raise a ConfigError if this infrastructure cannot run `options` here (called
        before anything is started)."""

    @abstractmethod
    def start(self) -> None: ...

    @abstractmethod
    def nodes(self) -> list[Node]: ...

    @abstractmethod
    def leader(self) -> str | None:
        """The replica serving clients now (None during a failover)."""

    @abstractmethod
    def leader_endpoint(self) -> tuple[str, int] | None: ...

    @abstractmethod
    def endpoints(self) -> dict[str, tuple[str, int]]:
        """Every live replica's server (for reading the state back after healing)."""

    @abstractmethod
    def leader_changes(self) -> list[tuple[int, str | None]]:
        """(monotonic ns, new leader or None) for every change seen so far."""

    def healthy(self) -> bool:
        """Every replica up and a leader serving: the only state in which a campaign
        injects its next fault (one failure at a time, what f=1 of 3 promises)."""
        return True

    def replica_at(self, host: str, port: int) -> str | None:
        """The replica whose server listens at host:port (None: unknown)."""
        return None

    def supervise(self, busy: set[str]) -> None:  # noqa: B027 - optional hook
        """Bring back replicas that went down on their own (not those in `busy`, which a
        fault holds): the process supervisor a real deployment would run."""

    @abstractmethod
    def recover(self, timeout: float = 240.0) -> list[str]:
        """Every replica up again and caught up; returns the replicas restarted."""

    def reading(self, name: str) -> AbstractContextManager[tuple[str, int]]:
        """Where to read replica `name`'s own server directly (a context: a backup's shim
        runs input only from connections trusted while inside it)."""
        return nullcontext(self.endpoints()[name])

    def replica_reads(self, keys: list[str], connect: Connector) -> dict[str, dict[str, Any]]:
        """Every key's value on every live replica's own server, after `recover`."""
        finals = {}
        for name in sorted(self.endpoints()):
            with self.reading(name) as where:
                finals[name] = read_at(connect, where, keys)
        return finals

    @abstractmethod
    def digests(self) -> dict[str, str]:
        """The app's state digest on every live replica (after `recover`)."""

    @abstractmethod
    def stop(self) -> None:
        """Stop everything, remove namespaces and shared memory (idempotent)."""

    def remove(self) -> None:  # noqa: B027 - optional hook
        """Delete the stopped deployment's files (data dirs, logs)."""

    def describe(self) -> str:
        return repr(self)


Factory = Callable[[CampaignOptions, Path], System]
_INFRAS: dict[str, Factory | str] = {
    "apus": "gaia.faults.replicated:ReplicatedSystem",
    "vm": "gaia.faults.vm_system:VmSystem",
    "tripod": "gaia.faults.tripod_system:TripodSystem",
}


def register(name: str, factory: Factory | str) -> None:
    """Add an infrastructure: a factory (options, run_dir) -> System, or its import path
    as "module:attribute"."""
    _INFRAS[name] = factory


def names() -> tuple[str, ...]:
    return tuple(_INFRAS)


def factory(name: str) -> Factory:
    found = _INFRAS.get(name)
    if found is None:
        raise ConfigError(f"unknown infrastructure {name!r}",
                          f"choose one of {', '.join(_INFRAS)}")
    if isinstance(found, str):
        module, _, attr = found.partition(":")
        found = getattr(importlib.import_module(module), attr)
        _INFRAS[name] = found
    return found
