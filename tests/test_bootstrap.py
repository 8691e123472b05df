"""The first-run installer and the user-error path of the command line."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gaia import bootstrap
from gaia.errors import GaiaError, MissingBinaryError


def test_bootstrap_is_idempotent_when_everything_is_installed(monkeypatch):
    # `python3 tasks.py test` ran the bootstrap before this session, so a second setup must
    # find every package and an up-to-date stamp and run no installer at all.
    if bootstrap.STAMP.read_text() != bootstrap.install_stamp():
        pytest.skip("pyproject.toml changed since the last `python3 tasks.py setup`")

    def no_install(cmd, env=None):
        raise AssertionError(f"a second setup ran an installer: {cmd}")

    monkeypatch.setattr(bootstrap, "run", no_install)
    bootstrap.setup()


def test_one_line_error_names_the_fix():
    error = MissingBinaryError("redis-server", "redis-server")
    line = error.one_line()
    assert "\n" not in line
    assert "redis-server" in line and "apt-get install" in line


def test_cli_prints_one_line_for_a_gaia_error(monkeypatch, capsys):
    from gaia import cli

    def broken(_args):
        raise GaiaError("the sky fell", "hold it up")

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    sub = next(a for a in parser._actions if a.dest == "command")
    sub.add_parser("broken").set_defaults(handler=broken)
    assert cli.main(["broken"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "error: the sky fell — fix: hold it up"


def test_invoke_lists_the_fixed_task_names():
    out = subprocess.run(
        [sys.executable, "-m", "invoke", "--list"], capture_output=True, text=True, check=True
    ).stdout
    for name in ("setup", "test", "reproduce", "figures"):
        assert name in out
