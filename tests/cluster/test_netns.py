"""Namespace hosts: addressing, running and spawning inside, and removal on every exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from gaia import proc
from gaia.cluster.host import HostCommandError
from gaia.cluster.netns import NetnsCluster, cleanup_stale
from gaia.errors import GaiaError
from tests.cluster.helpers import echo_works, leftovers, probe, wait_for_log

pytestmark = pytest.mark.netns


def test_hosts_have_their_own_addresses_and_reach_each_other(cluster: NetnsCluster, tmp_path: Path):
    h1, h2, h3 = cluster.hosts
    assert [h.namespace for h in cluster.hosts] == [f"gaia-{cluster.run}-h{i}" for i in (1, 2, 3)]
    shown = h2.run(["ip", "-4", "-o", "addr", "show"]).stdout
    assert f"{h2.address}/24" in shown and "127.0.0.1" in shown
    assert h1.address not in shown
    server = h2.spawn("echo", probe("echo-server", h2.address, 7000), tmp_path / "echo.log")
    wait_for_log(server, "ready")
    assert server.pid in h2.pids() and server.pid not in h1.pids()
    assert echo_works(h1, h2.address, 7000) and echo_works(h3, h2.address, 7000)
    # the root namespace (the harness) reaches hosts through the bridge
    assert subprocess.run(probe("tcp-echo", h2.address, 7000), capture_output=True).returncode == 0
    server.stop()


def test_run_reports_failures_and_passes_input(cluster: NetnsCluster):
    host = cluster["h1"]
    assert host.run("cat", input="abc").stdout == "abc"
    assert host.run("exit 3", check=False).returncode == 3
    with pytest.raises(HostCommandError, match="exited with 3"):
        host.run("echo oops >&2; exit 3")


def test_everything_is_removed_when_the_body_fails(netns_ok: None, tmp_path: Path):
    with pytest.raises(RuntimeError, match="mid-way"), NetnsCluster(2) as created:
        sleeper = created["h1"].spawn("sleeper", ["sleep", "300"], tmp_path / "sleep.log")
        assert leftovers(created.run)
        raise RuntimeError("test failed mid-way")
    assert leftovers(created.run) == []
    sleeper.popen.wait(5)  # killed with its namespace
    assert not sleeper.alive()


def test_bad_host_names_are_refused():
    with pytest.raises(GaiaError, match="bad namespace host names"):
        NetnsCluster(["h1", "H 2"])
    with pytest.raises(GaiaError):
        NetnsCluster(["a", "a"])


OWNER_SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from gaia.cluster.netns import NetnsCluster
    cluster = NetnsCluster(2).create()
    sleeper = cluster["h1"].spawn("sleeper", ["sleep", "300"], Path(sys.argv[1]))
    print(cluster.run, sleeper.pid, flush=True)
    if sys.argv[2] == "wait":
        time.sleep(300)
    """
)


def _owner(tmp_path: Path, then: str = "wait") -> tuple[subprocess.Popen[str], str, int]:
    """A separate process that creates a cluster with a process inside, then waits
    (`then="wait"`) or exits without removing it (`then="exit"`)."""
    owner = subprocess.Popen(
        [sys.executable, "-c", OWNER_SCRIPT, str(tmp_path / "sleep.log"), then],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, proc.OWNER_VAR: proc.owner_token()},
    )
    assert owner.stdout is not None
    run, pid = owner.stdout.readline().split()
    return owner, run, int(pid)


def _gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pid not in proc.owned_pids():
            return True
        time.sleep(0.05)
    return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_handlers_remove_the_cluster(netns_ok: None, tmp_path: Path, sig: int):
    owner, run, sleeper = _owner(tmp_path)
    assert len(leftovers(run)) >= 4  # 2 namespaces, bridge, record
    owner.send_signal(sig)
    owner.wait(20)
    assert leftovers(run) == []
    assert _gone(sleeper)


def test_exit_without_destroy_removes_the_cluster(netns_ok: None, tmp_path: Path):
    owner, run, sleeper = _owner(tmp_path, then="exit")
    assert owner.wait(20) == 0
    assert leftovers(run) == []  # the atexit hook ran
    assert _gone(sleeper)


def test_cleanup_stale_removes_a_crashed_run_but_not_live_ones(netns_ok: None, tmp_path: Path):
    with NetnsCluster(1) as live:
        owner, run, sleeper = _owner(tmp_path)
        owner.kill()  # SIGKILL: no handler runs, everything leaks
        owner.wait(10)
        leaked = leftovers(run)
        assert f"gaia-{run}-h1" in leaked and f"gaia-{run}" in leaked
        assert sleeper in proc.owned_pids()
        removed = cleanup_stale()
        assert {f"gaia-{run}-h1", f"gaia-{run}-h2", f"gaia-{run}"} <= set(removed)
        assert leftovers(run) == []
        assert _gone(sleeper)
        assert leftovers(live.run)  # its owner (this process) is alive: kept
    assert leftovers(live.run) == []
