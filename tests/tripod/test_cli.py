"""`gaia tripod up|submit|status|kill|down` end to end (namespaces as hosts), and its
one-line errors for bad input."""

from __future__ import annotations

import json

import pytest

from gaia.cli import main
from gaia.tripod import ops

from .conftest import netns_skip_reason

pytestmark = pytest.mark.netns


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["tripod", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_up_submit_status_down(tmp_path, monkeypatch, capsys):
    if reason := netns_skip_reason():
        pytest.skip(reason)
    monkeypatch.setenv("GAIA_RUN_ROOT", str(tmp_path))
    code, out, err = run(capsys, "up", "--agents", "2", "--cpus", "1", "--mem", "1024")
    assert code == 0, err
    run_dir = ops.resolve_run_dir(None)
    try:
        code, out, err = run(capsys, "submit", "--app", "redis", "--R", "2", "--id", "kv")
        assert code == 0, err
        assert out.count(": running on agent-h") == 2

        # bad input: one line naming the problem and the fix, exit code 2, no traceback
        for argv, problem in [
            (("--app", "redis", "--R", "3"), "needs 3 distinct hosts but only 2"),
            (("--app", "redis", "--R", "4"), "R=4 is not possible with 3 controllers"),
            (("--app", "nosuch"), "unknown app 'nosuch'"),
            (("--R", "1"), "give either --app NAME or a command"),
        ]:
            code, out, err = run(capsys, "submit", *argv)
            assert code == 2 and problem in err and "fix:" in err, (argv, err)
            assert len(err.strip().splitlines()) == 1 and "Traceback" not in err

        code, out, err = run(capsys, "submit", "--id", "sleeper", "--", "sleep", "600")
        assert code == 0, err
        code, out, err = run(capsys, "status", "--json")
        view = json.loads(out)
        tasks = {t["task_id"]: t for t in view["tasks"]}
        assert set(tasks) == {"kv", "sleeper"}
        assert len({r["host"] for r in tasks["kv"]["replicas"]}) == 2
        assert run(capsys, "status")[0] == 0
        assert run(capsys, "kill", "sleeper")[0] == 0
    finally:
        code, out, err = run(capsys, "down")
    assert code == 0, err
    assert not ops.running_deployment()
    layout = ops.load_layout(run_dir)
    import subprocess

    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert layout["netns_run"] not in namespaces
