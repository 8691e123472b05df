"""`python -m gaia.checker`: verdicts, exit codes, one-line errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gaia.checker.__main__ import main
from gaia.checker.history import Operation, save_history

DATA = Path(__file__).parent / "data"


def test_verdicts_and_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main([str(DATA / "kv" / "c01-ok.txt"), str(DATA / "jepsen-etcd" / "etcd_002.log")]) == 0
    out = capsys.readouterr().out
    assert "c01-ok.txt\t58 ops\tkv\tok" in out and "etcd_002.log" in out and "total\t2" in out
    assert main(["--witness", str(DATA / "kv" / "c01-bad.txt")]) == 1
    assert "cannot linearize" in capsys.readouterr().out
    ours = save_history([Operation(0, "write", "k", 1, None, 0, 1, "ok")], tmp_path / "h.jsonl")
    assert main([str(ours)]) == 0
    assert "register\tok" in capsys.readouterr().out


def test_user_errors_are_one_line():
    done = subprocess.run(
        [sys.executable, "-m", "gaia.checker", "/nonexistent/history.jsonl"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 2
    assert done.stderr.strip().startswith("error: history file /nonexistent/history.jsonl")
    assert "Traceback" not in done.stderr and "fix:" in done.stderr
