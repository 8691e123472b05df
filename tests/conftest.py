"""Session-wide guards shared by every test.

Every process the harness spawns carries this session's GAIA_OWNER token (gaia.proc). At
the end of the session any such process still alive is killed, listed, and fails the run:
no server may outlive the tests, even when a test fails.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

from gaia import proc

SESSION_TOKEN = f"gaia-test-{uuid.uuid4().hex[:10]}"
os.environ[proc.OWNER_VAR] = SESSION_TOKEN


def _describe(pid: int) -> str:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        cmd = "?"
    return f"{pid}: {cmd.strip()}"


def _own_resource_tracker(pid: int) -> bool:
    """multiprocessing's resource tracker started by this pytest process (shared-memory
    users start it): it is ours, not a test's, and exits with us."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return int(stat[1]) == os.getpid() and b"multiprocessing.resource_tracker" in cmd


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    leftovers = [pid for pid in proc.owned_pids(SESSION_TOKEN)
                 if not _own_resource_tracker(pid)]
    if not leftovers:
        return
    described = [_describe(pid) for pid in leftovers]
    proc.kill_owned(SESSION_TOKEN)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    message = "processes outlived the test session (killed now):\n  " + "\n  ".join(described)
    if reporter is not None:
        reporter.write_line(message, red=True)
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A per-test run directory (deployments, logs, data dirs)."""
    path = tmp_path / "run"
    path.mkdir()
    return path
