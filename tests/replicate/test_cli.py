"""`gaia replicate` from the command line: up in the background, what `gaia status`
shows, a client through the leader's port and the front port, down; and bad input as
one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import redis

from gaia.apus.runtime.status import pid_alive

pytestmark = pytest.mark.timeout(600)


def gaia(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gaia.cli", *args], capture_output=True,
                          text=True, timeout=timeout)


def test_up_status_down(run_dir: Path):
    where = run_dir / "dep"
    up = gaia("replicate", "--app", "redis", "--replicas", "3", "--front-port", "0",
              "--run-dir", str(where))
    try:
        assert up.returncode == 0, up.stderr
        printed_dir, leader_line = up.stdout.strip().splitlines()[-2:]
        assert printed_dir == str(where) and leader_line.startswith("leader r")
        status = gaia("status", "--json", "--run-dir", str(where))
        assert status.returncode == 0, status.stderr
        dep = json.loads(status.stdout)
        assert dep["kind"] == "replicate" and dep["app"] == "redis"
        leader = next(r for r in dep["replicas"] if r["id"] == dep["leader"])
        assert leader["role"] == "leader" and f":{leader['app_port']}" in leader_line
        assert all(r["app_port"] for r in dep["replicas"])
        with redis.Redis(port=leader["app_port"], socket_timeout=30) as client:
            client.set("via", "leader")
        with redis.Redis(port=dep["front_port"], socket_timeout=30) as client:
            assert client.get("via") == b"leader"
        pids = [p for procs in dep["extra"]["processes"].values() for p in procs.values() if p]
        assert len(pids) == 9
    finally:
        down = gaia("replicate", "down", "--run-dir", str(where))
    assert down.returncode == 0, down.stderr
    assert not [p for p in pids if pid_alive(p)], "every process of the deployment stopped"
    after = json.loads((where / "deployment.json").read_text())
    assert after["leader"] is None and {r["role"] for r in after["replicas"]} == {"down"}


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ((), "nothing to replicate"),
        (("--app", "redis", "--", "redis-server", "--port", "{port}"), "both --app and a command"),
        (("--", "redis-server", "--port", "6379"), "no {port} placeholder"),
        (("down", "--run-dir", "/nonexistent/gaia-dep"), "holds no `gaia replicate` deployment"),
    ],
)
def test_bad_input_is_one_line(args, words):
    done = gaia("replicate", *args, timeout=60)
    assert done.returncode == 2
    assert done.stderr.startswith("error: ") and words in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1
