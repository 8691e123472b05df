"""The frame switch with two fake VMs (unix stream clients) on a real tap: identical
inbound frames in agreed order to both, hold/release for syncs, leader out / backup
dropped, failover promotion. Needs root and /dev/net/tun (skipped otherwise)."""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import time
from pathlib import Path

import pytest

from gaia.errors import GaiaError
from gaia.vm.ordering import LocalOrderer
from gaia.vm.switch import GUEST_MAC, FrameSwitch

from .packets import udp

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not Path("/dev/net/tun").exists(), reason="needs root and TUN/TAP"
)


class FakeVm:
    """Connects like QEMU's stream netdev; reads/writes length-prefixed frames."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(str(path))
        self.sock.settimeout(0.05)
        self.buf = b""

    def frames(self, wait: float = 0.5) -> list[bytes]:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                chunk = self.sock.recv(1 << 16)
            except TimeoutError:
                continue
            if not chunk:
                break
            self.buf += chunk
        out = []
        while len(self.buf) >= 4:
            (n,) = struct.unpack_from("!I", self.buf)
            if len(self.buf) < 4 + n:
                break
            out.append(self.buf[4 : 4 + n])
            self.buf = self.buf[4 + n :]
        return out

    def send(self, frame: bytes) -> None:
        self.sock.sendall(struct.pack("!I", len(frame)) + frame)


class RefusingOrderer(LocalOrderer):
    """Fails to agree on frames that carry b"refuse" (APUS without a majority, say)."""

    def order(self, frame: bytes) -> int:
        if b"refuse" in frame:
            raise GaiaError("proposal not committed", "")
        return super().order(frame)


@pytest.fixture
def rig():
    orderer = RefusingOrderer()
    switch = FrameSwitch(orderer)
    subprocess.run(
        ["ip", "neigh", "replace", switch.guest_ip, "lladdr", GUEST_MAC, "dev", switch.tap_name],
        check=True,
    )
    vms = {}
    for role in ("leader", "backup"):
        vms[role] = FakeVm(switch.listen(role))
        switch.attach(role, role)
    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.bind((switch.host_ip, 0))
    yield switch, orderer, vms, client
    client.close()
    for vm in vms.values():
        vm.sock.close()
    switch.close()


def _payloads(frames: list[bytes]) -> list[bytes]:
    return [f[42:] for f in frames if f[12:14] == b"\x08\x00" and f[23] == 17]


def test_both_vms_get_identical_frames_in_agreed_order(rig) -> None:
    switch, orderer, vms, client = rig
    sent = [f"msg-{i}".encode() for i in range(30)]
    for payload in sent:
        client.sendto(payload, (switch.guest_ip, 9999))
    got = {role: vm.frames() for role, vm in vms.items()}
    got["leader"] += vms["leader"].frames(0.2)  # the host may add IPv6 chatter meanwhile
    n = min(len(got["leader"]), len(got["backup"]))
    assert got["leader"][:n] == got["backup"][:n]
    assert _payloads(got["leader"][:n]) == sent
    assert orderer.agreed >= len(sent)
    assert orderer.frames_since(0)[-len(sent):] == got["leader"][-len(sent):]


def test_hold_queues_agreed_frames_until_release(rig) -> None:
    switch, _, vms, client = rig
    switch.hold()
    client.sendto(b"during-sync", (switch.guest_ip, 9999))
    time.sleep(0.2)
    for vm in vms.values():  # reading also empties their sockets, so drain() can finish
        assert _payloads(vm.frames(0.2)) == []
    switch.drain()
    switch.release()
    assert _payloads(vms["leader"].frames()) == [b"during-sync"]
    assert _payloads(vms["backup"].frames()) == [b"during-sync"]


def test_leader_frames_reach_the_client_backup_frames_do_not(rig) -> None:
    switch, _, vms, client = rig
    client.settimeout(2)
    port = client.getsockname()[1]
    tap_mac = bytes.fromhex(Path(f"/sys/class/net/{switch.tap_name}/address").read_text().strip().replace(":", ""))
    guest_mac = bytes.fromhex(GUEST_MAC.replace(":", ""))

    def reply(text: bytes) -> bytes:
        return udp(switch.guest_ip, switch.host_ip, 7, port, text, src_mac=guest_mac, dst_mac=tap_mac)

    vms["backup"].send(reply(b"from-backup"))
    vms["leader"].send(reply(b"from-leader"))
    assert client.recvfrom(100)[0] == b"from-leader"
    client.settimeout(0.3)
    with pytest.raises(TimeoutError):
        client.recvfrom(100)
    assert switch.stats.from_backup == 1

    switch.promote_backup()  # failover: the backup's frames now reach the client
    vms["backup"].send(reply(b"new-leader"))
    client.settimeout(2)
    assert client.recvfrom(100)[0] == b"new-leader"


def test_a_frame_the_orderer_refuses_reaches_no_vm_and_switching_goes_on(rig) -> None:
    switch, _, vms, client = rig
    for payload in (b"refuse-1", b"after"):
        client.sendto(payload, (switch.guest_ip, 9999))
    for vm in vms.values():
        assert _payloads(vm.frames()) == [b"after"]
    assert switch.stats.unordered == 1 and "not committed" in switch.stats.last_order_error


def test_a_link_forgotten_while_the_switch_reads_it_does_not_stop_switching(rig) -> None:
    """forget() (a sync dropping a dead VM) may close a link between the switch thread's
    select() and its read; the thread must shrug that off, not die (every client would
    then see "no route to host" for the rest of the run)."""
    switch, _, vms, client = rig
    spare = FakeVm(switch.listen("spare"))
    deadline = time.monotonic() + 5
    while switch.links["spare"].sock is None:
        assert time.monotonic() < deadline, "the switch never accepted the spare's link"
        time.sleep(0.01)
    link = switch.links["spare"]
    sock = link.sock
    switch.forget("spare")
    switch._on_link(link, sock)  # what the switch thread does next with its select() result
    spare.sock.close()
    client.sendto(b"after", (switch.guest_ip, 9999))
    for vm in vms.values():
        assert _payloads(vm.frames()) == [b"after"]
