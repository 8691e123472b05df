"""The rdma transport: RC queue pairs and RDMA WRITE into peers' registered regions.

UNVERIFIED: no machine of this project has an RDMA device (no InfiniBand in the kernel,
so no SoftRoCE either). The code follows pyverbs' API (Debian's python3-pyverbs) and
runs only where `get_device_list()` finds a device; elsewhere `make("rdma", ...)` raises
GaiaError "no RDMA device (unverified path)" and the tests skip with that reason.

Per pair of replicas one RC QP on each side. QP numbers, LID/GID, rkey and the region's
address travel once over a small TCP side channel (JSON lines); the lower replica id
dials. A write copies into a registered staging buffer and posts two RDMA WRITEs on the
same QP — body, then the last 8 bytes — and waits for the second's completion. Python
path only: `numba_handle()` raises.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from gaia.apus.transport.base import RegionTransport, as_bytes_array
from gaia.apus.transport.frames import group_hash, parse_address
from gaia.apus.transport.handle import NumbaHandle, new_handle
from gaia.apus.transport.memory import CANARY_BYTES, write_is_valid
from gaia.apus.transport.segments import map_segment, segment_path
from gaia.errors import ConfigError, GaiaError

PYVERBS_PATH = "/usr/lib/python3/dist-packages"
NO_DEVICE = "no RDMA device (unverified path)"
KIND_RDMA = 3
IB_PORT = 1
GID_INDEX = 0


def load_pyverbs() -> Any:
    """Import pyverbs and return the first device; GaiaError when there is none."""
    if PYVERBS_PATH not in sys.path:
        sys.path.append(PYVERBS_PATH)
    try:
        from pyverbs import device
    except ImportError:
        raise GaiaError(
            f"{NO_DEVICE}: pyverbs is not installed",
            "install python3-pyverbs, or use the shm or tcp transport",
        ) from None
    try:
        devices = device.get_device_list()
    except Exception:  # pyverbs raises PyverbsRDMAError when no driver is loaded
        devices = []
    if not devices:
        raise GaiaError(
            f"{NO_DEVICE}: pyverbs finds no InfiniBand/RoCE device",
            "run on a host with an RDMA NIC, or use the shm or tcp transport",
        )
    return devices[0]


def rdma_available() -> tuple[bool, str]:
    """(True, device) where the transport can run, else (False, why) for a test skip."""
    try:
        dev = load_pyverbs()
    except GaiaError as exc:
        return False, exc.problem
    return True, dev.name.decode() if isinstance(dev.name, bytes) else str(dev.name)


@dataclass(frozen=True)
class Endpoint:
    """What a peer needs to RDMA WRITE into us: our QP for it, our address, our key."""

    group: int
    replica: int
    qp_num: int
    lid: int
    gid: str
    psn: int
    rkey: int
    address: int
    region_size: int

    def encode(self) -> bytes:
        return json.dumps(asdict(self)).encode() + b"\n"

    @classmethod
    def decode(cls, line: bytes) -> Endpoint:
        return cls(**json.loads(line))


class RdmaTransport(RegionTransport):
    kind = "rdma"

    def __init__(
        self,
        group_id: str,
        replica_id: int,
        region_size: int,
        peers: Mapping[int, str],
        *,
        listen: str | None = None,
        reset: bool = True,
        max_replicas: int = 16,
    ) -> None:
        device = load_pyverbs()
        from pyverbs import enums
        from pyverbs.cq import CQ
        from pyverbs.device import Context
        from pyverbs.mr import MR
        from pyverbs.pd import PD

        addresses = {int(k): str(v) for k, v in dict(peers).items()}
        super().__init__(
            group_id,
            replica_id,
            region_size,
            addresses,
            max_replicas,
            new_handle(KIND_RDMA, replica_id, region_size, max_replicas),
        )
        listen = listen or addresses.get(self.replica_id)
        if listen is None:
            raise ConfigError(
                f"rdma replica {replica_id} has no side-channel address",
                "pass listen='host:port' or include its own id in peers",
            )
        self._enums = enums
        self._addresses = {p: parse_address(addresses[p]) for p in self.peers}
        self._group = group_hash(group_id)
        self._own = map_segment(segment_path(group_id, self.replica_id), region_size, reset)
        self._ctx = Context(name=device.name.decode())
        self._pd = PD(self._ctx)
        self._cq = CQ(self._ctx, 256)
        access = (
            enums.IBV_ACCESS_LOCAL_WRITE
            | enums.IBV_ACCESS_REMOTE_WRITE
            | enums.IBV_ACCESS_REMOTE_READ
        )
        self._mr = MR(self._pd, region_size, access, address=self._own.address)
        self._staging = MR(self._pd, region_size, enums.IBV_ACCESS_LOCAL_WRITE)
        self._port = self._ctx.query_port(IB_PORT)
        self._gid = self._ctx.query_gid(IB_PORT, GID_INDEX)
        self._qps: dict[int, Any] = {}
        self._remote: dict[int, Endpoint] = {}
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()  # one staging buffer, one completion at a time
        self._stop = threading.Event()
        self._listener = socket.create_server(parse_address(listen), reuse_port=False)
        self._listener.settimeout(0.2)
        threading.Thread(target=self._accept_loop, daemon=True).start()
        threading.Thread(target=self._dial_loop, daemon=True).start()

    @property
    def local(self) -> np.ndarray:
        return self._own.array

    def numba_handle(self) -> NumbaHandle:
        raise GaiaError(
            "the rdma transport has no numba path (pyverbs is Python-only)",
            "use transport.write() from Python, or the shm/tcp transport",
        )

    # ---- queue pairs ------------------------------------------------------------------

    def _new_qp(self) -> Any:
        from pyverbs.qp import QP, QPAttr, QPCap, QPInitAttr

        init = QPInitAttr(
            qp_type=self._enums.IBV_QPT_RC,
            scq=self._cq,
            rcq=self._cq,
            cap=QPCap(max_send_wr=64, max_recv_wr=1),
        )
        attr = QPAttr(port_num=IB_PORT)
        attr.qp_access_flags = self._enums.IBV_ACCESS_REMOTE_WRITE
        return QP(self._pd, init, attr)

    def _endpoint(self, qp: Any) -> Endpoint:
        return Endpoint(
            self._group,
            self.replica_id,
            qp.qp_num,
            self._port.lid,
            str(self._gid),
            0,
            self._mr.rkey,
            self._own.address,
            self.region_size,
        )

    def _connect_qp(self, qp: Any, remote: Endpoint) -> None:
        from pyverbs.addr import GID, AHAttr, GlobalRoute
        from pyverbs.qp import QPAttr

        gid = GID()
        gid.gid = remote.gid
        attr = QPAttr(port_num=IB_PORT)
        attr.path_mtu = self._enums.IBV_MTU_1024
        attr.dest_qp_num = remote.qp_num
        attr.rq_psn = remote.psn
        attr.sq_psn = 0
        attr.max_dest_rd_atomic = 1
        attr.max_rd_atomic = 1
        attr.min_rnr_timer = 12
        attr.timeout = 14
        attr.retry_cnt = 7
        attr.rnr_retry = 7
        attr.ah_attr = AHAttr(
            port_num=IB_PORT,
            dlid=remote.lid,
            is_global=1,
            gr=GlobalRoute(dgid=gid, sgid_index=GID_INDEX),
        )
        qp.to_rts(attr)

    def _exchange(self, sock: socket.socket, qp: Any) -> Endpoint | None:
        sock.sendall(self._endpoint(qp).encode())
        remote = Endpoint.decode(sock.makefile("rb").readline())
        if remote.group != self._group or remote.region_size != self.region_size:
            return None
        self._connect_qp(qp, remote)
        with self._lock:
            self._qps[remote.replica] = qp
            self._remote[remote.replica] = remote
        return remote

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            with sock:
                try:
                    self._exchange(sock, self._new_qp())
                except Exception:  # a peer that vanished mid-exchange: it redials
                    continue

    def _dial_loop(self) -> None:
        while not self._stop.wait(0.05):
            for peer, address in list(self._addresses.items()):
                if peer < self.replica_id or peer in self._qps:
                    continue  # the lower id dials
                try:
                    with socket.create_connection(address, timeout=0.5) as sock:
                        self._exchange(sock, self._new_qp())
                except Exception:
                    continue

    def wait_connected(self, timeout: float = 5.0, peers=None) -> bool:
        import time

        deadline = time.monotonic() + timeout
        wanted = set(self._addresses if peers is None else peers)
        while time.monotonic() < deadline and not wanted <= set(self._qps):
            time.sleep(0.01)
        return wanted <= set(self._qps)

    # ---- writes -----------------------------------------------------------------------

    def write(self, peer: int, offset: int, data: Any) -> bool:
        src = as_bytes_array(data)
        if not write_is_valid(self.region_size, offset, src.size):
            raise ValueError(f"write of {src.size} bytes at offset {offset} breaks the rules")
        if peer == self.replica_id:
            self.local[offset : offset + src.size - CANARY_BYTES] = src[:-CANARY_BYTES]
            self.local[offset + src.size - CANARY_BYTES : offset + src.size] = src[-CANARY_BYTES:]
            return True
        with self._lock:
            qp, remote = self._qps.get(peer), self._remote.get(peer)
        if qp is None:
            return False
        with self._write_lock:
            return self._post(qp, remote, peer, offset, src)

    def _post(self, qp: Any, remote: Endpoint, peer: int, offset: int, src: np.ndarray) -> bool:
        from pyverbs.wr import SGE, SendWR

        self._staging.write(src.tobytes(), src.size, 0)
        body = src.size - CANARY_BYTES
        wrs = []
        for start, length, flags in (
            (0, body, 0),
            (body, CANARY_BYTES, self._enums.IBV_SEND_SIGNALED),
        ):
            if length == 0:
                continue
            sge = SGE(self._staging.buf + start, length, self._staging.lkey)
            wr = SendWR(opcode=self._enums.IBV_WR_RDMA_WRITE, num_sge=1, sg=[sge], send_flags=flags)
            wr.set_wr_rdma(remote.rkey, remote.address + offset + start)
            wrs.append(wr)
        for wr in wrs:
            qp.post_send(wr)
        while True:
            polled, wcs = self._cq.poll()
            if polled:
                break
        if wcs[0].status != self._enums.IBV_WC_SUCCESS:
            with self._lock:  # the peer went away: redial later
                self._qps.pop(peer, None)
            return False
        return True

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self._stop.set()
        self._listener.close()
        for qp in self._qps.values():
            qp.close()
        for resource in (self._staging, self._mr, self._cq, self._pd, self._ctx):
            resource.close()
        self._own.close()
