"""Two real processes exchange one-sided writes (stream one way, acks the other)."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from gaia import proc
from gaia.apus.transport import make
from gaia.net import free_ports
from tests.apus_transport import harness

ENTRY = 1024
N = 5000
REPO = Path(__file__).resolve().parents[2]


def wait_for(path: Path, child: proc.Process, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert child.alive(), f"the child replica died: {child.log_tail()}"
        assert time.monotonic() < deadline, f"no {path.name} from the child: {child.log_tail()}"
        time.sleep(0.02)


@pytest.mark.parametrize("kind", ["shm", "tcp"])
def test_two_processes_stream_whole_entries_and_acks(group, kind, tmp_path):
    if kind == "tcp":
        ports = free_ports(2)
        peers = {0: f"127.0.0.1:{ports[0]}", 1: f"127.0.0.1:{ports[1]}"}
        child_peers: object = peers
    else:
        peers, child_peers = [1], [0]
    out = tmp_path / "result"
    child = proc.spawn("checker", [sys.executable, "-m", "tests.apus_transport.harness", kind,
                                   group, str(1 << 16), json.dumps(child_peers), str(N),
                                   str(ENTRY), str(out)], tmp_path / "child.log", cwd=REPO)
    a = make(kind, group, 0, 1 << 16, peers)
    try:
        wait_for(out.with_suffix(".ready"), child, 120)
        assert a.wait_connected(30)
        retries = harness.stream_writer(a.numba_handle(), 1, N, ENTRY, a.local.view(np.uint64))
        wait_for(out, child, 120)
        assert child.popen.wait(30) == 0, child.log_tail()
    finally:
        child.stop()
        a.close()
    assert retries != harness.TIMED_OUT
    assert int(out.read_text()) == 0  # every entry whole
    assert int(a.local.view(np.uint64)[0]) == N  # the child's last ack arrived
