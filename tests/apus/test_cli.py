"""`gaia apus up | propose | log | restart | down` and `gaia status`, with real replicas;
bad input gets one clear line: an oversized entry, another group's log, a corrupt log."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

from gaia.apus.client import Client
from gaia.apus.runtime.group import spawn_replica, stop_group, wait_leader
from gaia.apus.runtime.spec import GroupSpec
from gaia.apus.storage import FILE_HEADER, LOG_FILE, FileStorage
from gaia.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture
def group_dir(run_dir: Path):
    path = run_dir / "apus"
    assert main(["apus", "up", "--replicas", "3", "--durability", "fsync",
                 "--run-dir", str(path), "--election-ms", "200"]) == 0
    yield path
    if (path / "group.json").exists():
        stop_group(path)


def test_up_propose_status_log_down(group_dir: Path, capsys):
    capsys.readouterr()
    assert main(["apus", "propose", "hello apus", "--run-dir", str(group_dir)]) == 0
    index = int(capsys.readouterr().out.strip())
    assert index >= 2  # after the leader's NOOP
    assert main(["status", "--json", "--run-dir", str(group_dir)]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["kind"] == "apus" and status["leader"] in (0, 1, 2)
    assert sorted(r["role"] for r in status["replicas"]) == ["backup", "backup", "leader"]
    assert main(["apus", "log", "--json", "--run-dir", str(group_dir)]) == 0
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines()]
    assert {"index": index, "data": ["hello apus"]}.items() <= lines[-1].items()
    assert main(["apus", "down", "--run-dir", str(group_dir)]) == 0
    assert "stopped 3 replica(s)" in capsys.readouterr().out
    assert not list(Path("/dev/shm").glob(f"gaia-{status['group_id']}-*"))


def test_an_oversized_entry_is_refused_with_one_line(group_dir: Path, capsys):
    capsys.readouterr()
    assert main(["apus", "propose", "x" * 20_000, "--run-dir", str(group_dir)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: entry of 20000 bytes exceeds the maximum")
    assert "fix:" in err and "\n" not in err


def test_a_replica_started_on_another_groups_log_refuses_to_join(group_dir: Path):
    spec = GroupSpec.load(group_dir)
    stop_group(group_dir)
    foreign = FileStorage(spec.replica_dir(group_dir, 2), "ff" * 16, 2)
    (foreign.dir / "hardstate.json").unlink()
    (foreign.dir / LOG_FILE).unlink()
    foreign.load(1024)  # writes a fresh log file of group ff...ff
    foreign.close()
    proc = spawn_replica(group_dir, 2)
    assert proc.popen.wait(120) == 2
    tail = proc.log_tail(3)
    assert "belongs to APUS group ffffffff" in tail and "fix:" in tail


def test_a_corrupt_log_is_cut_to_its_valid_prefix_and_the_replica_rejoins(group_dir: Path,
                                                                           capsys):
    for i in range(5):
        assert main(["apus", "propose", f"entry {i}", "--run-dir", str(group_dir)]) == 0
    spec = GroupSpec.load(group_dir)
    dep = wait_leader(group_dir, 30)
    victim = next(r for r in spec.replicas if r != dep.leader)
    capsys.readouterr()
    main(["status", "--json", "--run-dir", str(group_dir)])
    pid = next(r["pid"] for r in json.loads(capsys.readouterr().out)["replicas"]
               if r["id"] == victim)
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)
    path = spec.replica_dir(group_dir, victim) / LOG_FILE
    raw = bytearray(path.read_bytes())
    raw[FILE_HEADER + 200] ^= 0xFF  # inside the second or third record
    path.write_bytes(bytes(raw))
    assert main(["apus", "restart", str(victim), "--run-dir", str(group_dir)]) == 0
    log = spec.replica_dir(group_dir, victim) / "replica.log"
    deadline = time.monotonic() + 120
    while "recovered at index" not in log.read_text():
        assert time.monotonic() < deadline, log.read_text()[-2000:]
        time.sleep(0.1)
    text = log.read_text()
    assert "is corrupt (valid records follow it); kept the" in text
    assert main(["apus", "propose", "after", "--run-dir", str(group_dir)]) == 0
    index = int(capsys.readouterr().out.strip().splitlines()[-1])
    with Client(group_dir) as client:
        deadline = time.monotonic() + 60
        # every replica, not just the victim: the commit needs only a majority, so the
        # third replica may persist "after" a moment later
        while any(len(client.entries(replica=r)) < index for r in spec.replicas):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        logs = [[(e.index, e.view, e.payload) for e in client.entries(1, index, replica=r)]
                for r in spec.replicas]
    assert logs[0] == logs[1] == logs[2]
