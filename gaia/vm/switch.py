"""The frame switch between clients and the replicated VMs (the proposal's tap_send).

Clients reach the guests through a tap device on the host (the host side has .1 of a
private /24, every replica VM the same .2 and MAC). Each VM's NIC is a QEMU stream
netdev on a unix socket the switch listens on (frames as 4-byte length + bytes). A
stream, not datagrams: a backup that falls behind must not lose frames (a lost frame
stalls its TCP until the next sync); the socket's backpressure queues them instead, and
"every delivered frame was read" is observable (SIOCOUTQ) before a sync stops the VMs.
The switch:
- agrees every inbound client frame through the InputOrderer, then delivers it to the
  leader and the major backup in that order (the standby keeps the orderer's log);
- forwards the leader's outbound frames to the tap; feeds the backup's to the output
  checker and drops them;
- can hold inbound delivery (a sync in progress: frames are agreed and queued, then
  delivered to the leader and the NEW backup QEMU once both run);
- with `sync_on_syn`, holds inbound frames as soon as the leader answers a connection
  request (SYN-ACK) and asks for a sync, so the backup gets the new connection's state
  (its own guest picked another initial sequence number) before the client's next frame.
Frame-level delivery is what keeps the backup's guest TCP state valid across syncs; a
byte-stream proxy over QEMU user networking breaks every connection at every sync.
"""

from __future__ import annotations

import fcntl
import ipaddress
import os
import random
import selectors
import shutil
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from gaia.errors import GaiaError
from gaia.vm.frames import BackupGate, OutputChecker, OutputCommit, is_syn_ack, parse_tcp
from gaia.vm.ordering import InputOrderer

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
GUEST_MAC = "52:54:00:9a:00:02"


def open_tap(name: str) -> int:
    """A non-persistent tap: it vanishes when the fd closes (nothing to clean up)."""
    try:
        fd = os.open("/dev/net/tun", os.O_RDWR)
    except OSError as exc:
        raise GaiaError(
            f"cannot open /dev/net/tun ({exc.strerror})",
            "run as root on a kernel with TUN/TAP support",
        ) from None
    try:
        fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI))
    except OSError as exc:
        os.close(fd)
        raise GaiaError(f"cannot create tap {name} ({exc.strerror})", "run as root") from None
    return fd


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if done.returncode:
        raise GaiaError(f"`ip {' '.join(args)}` failed: {done.stderr.strip()}", "run as root")


def free_subnet() -> ipaddress.IPv4Network:
    """A /24 in 10.200-250.x.0 that no host interface uses."""
    used = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True).stdout
    for _ in range(200):
        net = ipaddress.IPv4Network(f"10.{random.randint(200, 250)}.{random.randint(0, 255)}.0/24")
        if f" {net.network_address + 1}/" not in used and str(net)[:-5] not in used:
            return net
    raise GaiaError("no free 10.200-250.x.0/24 subnet for the VM network", "remove stale taps")


SIOCOUTQ = 0x5411


def unread_bytes(sock: socket.socket) -> int:
    """Bytes written to a unix stream socket that its peer has not read yet."""
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), SIOCOUTQ, b"\0" * 4))[0]


@dataclass
class SwitchStats:
    inbound: int = 0
    to_client: int = 0
    from_backup: int = 0
    held_max: int = 0
    syn_syncs: int = 0
    catchup_timeouts: int = 0
    replies_dropped: int = 0  # held replies of a leader that died (never sent)
    unordered: int = 0  # inbound frames the orderer failed to agree on (dropped)
    last_order_error: str = ""


class _VmLink:
    """One VM's NIC: a unix stream connection carrying 4-byte big-endian length + frame."""

    def __init__(self, name: str, listener: socket.socket) -> None:
        self.name = name
        self.listener = listener
        self.sock: socket.socket | None = None
        self.rbuf = bytearray()
        self.wbuf = bytearray()

    def frames(self, data: bytes) -> list[bytes]:
        self.rbuf += data
        out = []
        while len(self.rbuf) >= 4:
            (n,) = struct.unpack_from("!I", self.rbuf)
            if len(self.rbuf) < 4 + n:
                break
            out.append(bytes(self.rbuf[4 : 4 + n]))
            del self.rbuf[: 4 + n]
        return out

    def flush(self) -> None:
        if self.sock is None or not self.wbuf:
            return
        try:
            sent = self.sock.send(self.wbuf)
        except BlockingIOError:
            return
        except OSError:
            self.wbuf.clear()  # the VM is gone
            return
        del self.wbuf[:sent]

    def pending(self) -> int:
        if self.sock is None:
            return 0
        try:
            return len(self.wbuf) + unread_bytes(self.sock)
        except OSError:
            return 0

    def close(self) -> None:
        for sock in (self.sock, self.listener):
            if sock is not None:
                sock.close()


class FrameSwitch:
    """See the module docstring. Thread-safe; runs its own I/O thread."""

    def __init__(
        self,
        orderer: InputOrderer,
        sync_on_syn: bool = False,
        on_sync_request: Callable[[], None] | None = None,
        socket_dir: Path | None = None,
    ) -> None:
        self.orderer = orderer
        self.sync_on_syn = sync_on_syn
        self.on_sync_request = on_sync_request
        self.socket_dir = socket_dir or Path(tempfile.mkdtemp(prefix="gaia-switch-"))
        self.subnet = free_subnet()
        self.host_ip = str(self.subnet.network_address + 1)
        self.guest_ip = str(self.subnet.network_address + 2)
        self.tap_name = f"gaiat{random.getrandbits(24):06x}"
        self.tap = open_tap(self.tap_name)
        self.links: dict[str, _VmLink] = {}  # VM name -> link
        self.targets: dict[str, str] = {}  # role -> VM name
        self.checker = OutputChecker()
        self.gate = BackupGate()
        self.commit = OutputCommit()  # the leader's replies wait for the backup's
        self.stats = SwitchStats()
        self._held: list[bytes] | None = None
        self._gate_leader: str | None = None  # a promoted backup still draining its gate
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self._sel = selectors.DefaultSelector()
        self._sel.register(self.tap, selectors.EVENT_READ, None)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        try:
            _ip("addr", "add", f"{self.host_ip}/{self.subnet.prefixlen}", "dev", self.tap_name)
            _ip("link", "set", self.tap_name, "up")
        except GaiaError:
            self.close()
            raise
        self._thread = threading.Thread(target=self._loop, name="gaia-frame-switch", daemon=True)
        self._thread.start()

    @property
    def guest_cidr(self) -> str:
        return f"{self.guest_ip}/{self.subnet.prefixlen}"

    # -- VM links ----------------------------------------------------------------------
    def listen(self, vm_name: str) -> Path:
        """A unix socket path for VM `vm_name`'s NIC (QEMU connects as the client)."""
        path = self.socket_dir / f"{vm_name}.net"
        path.unlink(missing_ok=True)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(path))
        listener.listen(1)
        listener.setblocking(False)
        link = _VmLink(vm_name, listener)
        with self._lock:
            self.links[vm_name] = link
            self._sel.register(listener, selectors.EVENT_READ, link)
        self._wake()
        return path

    def attach(self, role: str, vm_name: str) -> None:
        """Deliver inbound frames to / take outbound frames from VM `vm_name` as `role`."""
        with self._lock:
            self.targets[role] = vm_name

    def detach(self, role: str) -> None:
        with self._lock:
            self.targets.pop(role, None)

    def forget(self, vm_name: str) -> None:
        """Drop a dead VM's link."""
        with self._lock:
            link = self.links.pop(vm_name, None)
            if link is not None:
                for sock in (link.sock, link.listener):
                    if sock is not None:
                        try:
                            self._sel.unregister(sock)
                        except (KeyError, ValueError):
                            pass
                link.close()

    def promote_backup(self) -> None:
        """Failover: the major backup's frames now go to the client."""
        with self._lock:
            name = self.targets.pop("backup", None)
            old = self.targets.pop("leader", None)
            self.stats.replies_dropped += self.commit.drop_all()
            if name is not None:
                self.targets["leader"] = name
                # Frames still gated for it are agreed inputs it has not taken yet: it
                # keeps taking them through the gate, then everything flows directly.
                self._gate_leader = name if self.gate.queue else None
        if old is not None:
            self.forget(old)

    def send_to(self, vm_name: str, frame: bytes) -> None:
        """Deliver one frame to one VM (a promoted standby's replay)."""
        with self._lock:
            self._queue(self.links[vm_name], frame)

    # -- holding for a sync --------------------------------------------------------
    def hold(self) -> None:
        with self._lock:
            if self._held is None:
                self._held = []

    def drain(self, timeout: float = 10.0) -> None:
        """Wait until every attached VM has read every frame delivered to it."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                self._feed_backup()
                links = [self.links[n] for n in self.targets.values() if n in self.links]
                busy = [link.name for link in links if link.pending()]
                if self.gate.queue and self._gated_vm() is not None:
                    busy.append(f"{self._gated_vm()} (gated)")
            if not busy:
                return
            if time.monotonic() > deadline:
                raise GaiaError(f"VM(s) {busy} did not read their inbound frames", "paused?")
            self._wake()
            time.sleep(0.0005)

    def catch_up(self, timeout: float = 5.0) -> bool:
        """Wait (inputs held) until the backup has sent every byte the leader sent on
        their shared connections, i.e. it has executed every input the leader executed.
        A sync taken earlier would count the backup's unexecuted inputs as divergence.
        False if it did not within `timeout` (the sync then repairs it anyway)."""
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                behind = self.gate.backup_behind() if self._link("backup") else []
            if not behind:
                return True
            if time.monotonic() > deadline:
                self.stats.catchup_timeouts += 1
                return False
            time.sleep(0.001)

    def release(self) -> None:
        """Deliver the frames agreed while held, in order, to the current targets."""
        with self._lock:
            held, self._held = self._held or [], None
            for frame in held:
                self._deliver(frame)
        self._wake()

    def commit_outputs(self) -> None:
        """A sync made the backup the leader's copy: every reply held for it may go."""
        with self._lock:
            out = self.commit.release_all()
        self._to_client(out)

    def _to_client(self, frames: list[bytes]) -> None:
        for frame in frames:
            os.write(self.tap, frame)

    def _committing(self) -> bool:
        """Whether replies wait for the backup (there is one to wait for)."""
        return self._link("backup") is not None

    # -- the I/O loop --------------------------------------------------------------
    def _wake(self) -> None:
        try:
            os.write(self._wake_w, b"x")
        except OSError:
            pass

    def _queue(self, link: _VmLink, frame: bytes) -> None:
        link.wbuf += struct.pack("!I", len(frame)) + frame
        link.flush()

    def _link(self, role: str) -> _VmLink | None:
        name = self.targets.get(role)
        return self.links.get(name) if name else None

    def _gated_vm(self) -> str | None:
        """The VM fed through the backup gate: the major backup, or a just-promoted
        leader until the frames gated for it are delivered."""
        return self._gate_leader or self.targets.get("backup")

    def _deliver(self, frame: bytes) -> None:
        gated = self._gated_vm()
        leader = self._link("leader")
        if leader is not None and leader.name != gated:
            self._queue(leader, frame)
        if gated is not None and gated in self.links:
            self.gate.push(frame, time.monotonic())
            self._feed_backup()

    def _feed_backup(self) -> None:
        gated = self._gated_vm()
        link = self.links.get(gated) if gated else None
        if link is not None:
            for frame in self.gate.pop_ready(time.monotonic()):
                self._queue(link, frame)
        if self._gate_leader is not None and not self.gate.queue:
            self._gate_leader = None

    def _inbound(self, frame: bytes) -> None:
        try:
            self.orderer.order(frame)
        except GaiaError as exc:  # not agreed: deliver it to no VM (the client's TCP
            with self._lock:     # retransmits), and keep switching the other frames
                self.stats.unordered += 1
                self.stats.last_order_error = exc.one_line()
            return
        seg = parse_tcp(frame)
        with self._lock:
            if seg is not None:
                self.gate.inbound(seg)
            self.stats.inbound += 1
            if self._held is not None:
                self._held.append(frame)
                self.stats.held_max = max(self.stats.held_max, len(self._held))
            else:
                self._deliver(frame)

    def _role_of(self, vm_name: str) -> str | None:
        return next((r for r, n in self.targets.items() if n == vm_name), None)

    def _outbound(self, frame: bytes, vm_name: str) -> None:
        request_sync = False
        out: list[bytes] = []
        seg = parse_tcp(frame)
        with self._lock:
            role = self._role_of(vm_name)
            if seg is not None and role is not None:
                self.gate.outbound("backup" if vm_name == self._gated_vm() else role, seg)
            if role == "leader":
                # no backup (after a failover, until a promotion): nothing to sync with
                if self.sync_on_syn and is_syn_ack(seg) and "backup" in self.targets:
                    if self._held is None:
                        self._held = []
                    self.stats.syn_syncs += 1
                    request_sync = True
                self.checker.feed("leader", frame)
                self.stats.to_client += 1
                if self._committing():
                    out = self.commit.offer(frame, seg, self.gate, time.monotonic())
                else:
                    out = [*self.commit.release_all(), frame]
            elif role == "backup":
                self.checker.feed("backup", frame)
                self.stats.from_backup += 1
                self._feed_backup()
                out = self.commit.ready(self.gate)
        self._to_client(out)
        if request_sync and self.on_sync_request is not None:
            self.on_sync_request()

    def _on_link(self, link: _VmLink, sock: socket.socket) -> None:
        if sock is link.listener:
            conn, _ = link.listener.accept()
            conn.setblocking(False)
            with self._lock:
                link.sock = conn
                self._sel.register(conn, selectors.EVENT_READ, link)
                link.flush()
            return
        try:
            data = sock.recv(1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the VM exited, or forget() closed its link since select()
            with self._lock:
                try:
                    self._sel.unregister(sock)
                except (KeyError, ValueError):
                    pass  # forget() unregistered it already (its fd may be -1 now)
                if link.sock is sock:
                    link.sock = None
            sock.close()
            return
        for frame in link.frames(data):
            self._outbound(frame, link.name)

    def _loop(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                waiting = (bool(self.gate.queue) or bool(self.commit.held)
                           or any(link.wbuf for link in self.links.values()))
            for key, _ in self._sel.select(timeout=0.001 if waiting else 0.1):
                try:
                    if key.fileobj == self.tap:
                        self._inbound(os.read(self.tap, 65536))
                    elif key.fileobj == self._wake_r:
                        os.read(self._wake_r, 4096)
                    else:
                        self._on_link(key.data, key.fileobj)
                except OSError:
                    if self._stop.is_set():
                        return
            with self._lock:
                self._feed_backup()
                for link in self.links.values():
                    link.flush()
                overdue = self.commit.overdue(time.monotonic())
            if overdue and self.on_sync_request is not None:
                self.on_sync_request()  # the backup did not answer in time: make it a copy

    def close(self) -> None:
        self._stop.set()
        self._wake()
        thread = getattr(self, "_thread", None)
        if thread is not None:
            thread.join(2.0)
        for name in list(self.links):
            self.forget(name)
        for fd in (self.tap, self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.socket_dir, ignore_errors=True)
