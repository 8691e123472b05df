"""Remote memory regions for APUS: one interface, three transports (shm, tcp, rdma).

`make()` builds the transport a replica uses; `remote_write` / `remote_wake` are the njit
calls for hot loops (see `RegionTransport.numba_handle`). Design: DESIGN.md, "Remote
memory regions"; the APUS runtime is the main user.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from gaia.apus.transport.backoff import (
    SHARED_CORES,
    SPIN_ONLY,
    BackoffPolicy,
    backoff_idle,
    backoff_reset,
    backoff_state,
    policy_for,
)
from gaia.apus.transport.base import RegionTransport
from gaia.apus.transport.handle import NumbaHandle, remote_read_word, remote_wake, remote_write
from gaia.apus.transport.memory import CANARY_BYTES, load_word
from gaia.apus.transport.pinning import cpu_for, pin_thread
from gaia.apus.transport.segments import check_group_id, check_region_size, unlink_group
from gaia.errors import ConfigError

KINDS = ("shm", "tcp", "rdma")


def make(
    kind: str,
    group_id: str,
    replica_id: int,
    region_size: int,
    peers: Iterable[int] | Mapping[int, str],
    *,
    reset: bool = True,
    listen: str | None = None,
    max_replicas: int = 16,
    **options: Any,
) -> RegionTransport:
    """The transport of replica `replica_id` in group `group_id`.

    peers: shm -> the other replicas' ids; tcp/rdma -> {replica_id: "host:port"} (may
    include our own id as the listen address). reset=False keeps the region's bytes of a
    previous incarnation (re-initialisation is always in place)."""
    check_group_id(group_id)
    check_region_size(region_size)
    if kind == "shm":
        from gaia.apus.transport.shm import ShmTransport

        return ShmTransport(
            group_id, replica_id, region_size, peers, reset=reset, max_replicas=max_replicas
        )
    if kind in ("tcp", "rdma"):
        if not isinstance(peers, Mapping):
            raise ConfigError(
                f"the {kind} transport needs peer addresses",
                "pass peers as {replica_id: 'host:port'}",
            )
        from gaia.apus.transport.rdma import RdmaTransport
        from gaia.apus.transport.tcp import TcpTransport

        cls = TcpTransport if kind == "tcp" else RdmaTransport
        return cls(group_id, replica_id, region_size, peers, listen=listen, reset=reset,
                   max_replicas=max_replicas, **options)
    raise ConfigError(f"unknown transport {kind!r}", f"choose one of {', '.join(KINDS)}")


__all__ = [
    "CANARY_BYTES",
    "KINDS",
    "SHARED_CORES",
    "SPIN_ONLY",
    "BackoffPolicy",
    "NumbaHandle",
    "RegionTransport",
    "backoff_idle",
    "backoff_reset",
    "backoff_state",
    "cpu_for",
    "load_word",
    "make",
    "pin_thread",
    "policy_for",
    "remote_read_word",
    "remote_wake",
    "remote_write",
    "unlink_group",
]
