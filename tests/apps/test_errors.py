"""Bad input gives one line naming the cause and the fix, and starts nothing."""

from __future__ import annotations

import os
import socket
import subprocess

import pytest

import apps
from apps.mariadb import MariaDB
from apps.mongodb import MongoDB
from gaia import proc
from gaia.errors import (
    ConfigError,
    GaiaError,
    MissingBinaryError,
    PortInUseError,
    UnwritableDirectoryError,
)
from gaia.paths import REPO
from tests.apps.conftest import SERVER_APPS


def assert_one_line(exc: GaiaError, *words: str) -> None:
    line = exc.one_line()
    assert "\n" not in line and " — fix: " in line
    for word in words:
        assert word in line


def test_unknown_app_names_the_valid_ones():
    with pytest.raises(ConfigError) as info:
        apps.get("nosuch")
    assert_one_line(info.value, "nosuch", *apps.names())


def test_registry_lists_the_six_apps_and_resolves_each_written_one():
    assert apps.names() == ["redis", "memcached", "mariadb", "mongodb", "etcd", "zookeeper"]
    for name in apps.names():
        try:
            cls = apps.get(name)
        except apps.AppNotAvailableError as exc:
            assert name in ("etcd", "zookeeper")  # written by another part, maybe not yet
            assert_one_line(exc, "not available yet")
        else:
            assert cls.name == name


def test_an_app_whose_module_is_missing_is_not_available_yet(monkeypatch):
    monkeypatch.setitem(apps.REGISTRY, "ghost", "apps.ghost_module_not_written:Ghost")
    with pytest.raises(apps.AppNotAvailableError) as info:
        apps.get("ghost")
    assert_one_line(info.value, "ghost", "not available yet")
    assert "ghost" not in apps.available()


@pytest.fixture
def taken_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.mark.parametrize("app", SERVER_APPS)
def test_port_in_use_is_refused_before_starting(start_server, app, taken_port):
    before = set(proc.owned_pids())
    with pytest.raises(PortInUseError) as info:
        start_server(app, port=taken_port)
    assert_one_line(info.value, str(taken_port))
    assert set(proc.owned_pids()) <= before


@pytest.mark.parametrize(
    ("app", "package"), [("redis", "redis-server"), ("memcached", "memcached")]
)
def test_missing_binary_names_the_debian_package(start_server, monkeypatch, tmp_path, app, package):
    monkeypatch.setenv("PATH", str(tmp_path))  # nothing on PATH
    with pytest.raises(MissingBinaryError) as info:
        start_server(app)
    assert_one_line(info.value, package, "apt-get install")


def test_missing_mariadb_binary_names_its_package(start_server, monkeypatch):
    monkeypatch.setattr(MariaDB, "binary", ("mariadbd-not-installed", "mariadb-server"))
    with pytest.raises(MissingBinaryError) as info:
        start_server("mariadb")
    assert_one_line(info.value, "mariadbd-not-installed", "mariadb-server")


def test_missing_mongod_says_how_to_get_a_server(start_server, monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(GaiaError) as info:
        start_server("mongodb", implementation="mongod")
    assert_one_line(info.value, "mongod", "tasks.py setup")


@pytest.mark.parametrize("app", SERVER_APPS)
def test_unwritable_data_dir_is_refused_before_starting(start_server, app, tmp_path):
    before = set(proc.owned_pids())
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(UnwritableDirectoryError) as info:
        start_server(app, data_dir=blocker / "data")
    assert_one_line(info.value, str(blocker / "data"))
    assert set(proc.owned_pids()) <= before


def test_server_dying_at_start_reports_its_log_tail(start_server):
    with pytest.raises(GaiaError) as info:
        start_server("redis", extra_args=["--no-such-directive", "1"])
    assert_one_line(info.value, "exited with code", "no-such-directive")


def test_bad_option_values_are_config_errors():
    with pytest.raises(ConfigError):
        MariaDB(snapshot_method="rsync")
    with pytest.raises(ConfigError):
        MongoDB(implementation="couchdb")


def invoke(*args: str, run_root) -> subprocess.CompletedProcess:
    # GAIA_OWNER is inherited: the session's leak check sees the servers it starts.
    env = {**os.environ, "GAIA_RUN_ROOT": str(run_root), proc.OWNER_VAR: proc.owner_token()}
    return subprocess.run(
        [str(REPO / ".venv" / "bin" / "invoke"), *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_one_line_failure(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode != 0
    output = (result.stdout + result.stderr).strip()
    assert "Traceback" not in output
    assert len(output.splitlines()) == 1, output
    assert output.startswith("error: ")
    for word in words:
        assert word in output


def test_cli_unknown_app_is_one_line_without_traceback(tmp_path):
    assert_one_line_failure(invoke("apps.start", "--app", "nosuch", run_root=tmp_path), "nosuch")


def test_cli_port_in_use_is_one_line_without_traceback(tmp_path, taken_port):
    result = invoke("apps.start", "--app", "redis", "--port", str(taken_port), run_root=tmp_path)
    assert_one_line_failure(result, str(taken_port))


def test_cli_stop_without_a_target_is_one_line(tmp_path):
    assert_one_line_failure(invoke("apps.stop", run_root=tmp_path), "--all")


def test_cli_start_list_stop_round_trip(tmp_path):
    before = set(proc.owned_pids())
    started = invoke("apps.start", "--app", "memcached", "--deterministic", run_root=tmp_path)
    try:
        assert started.returncode == 0, started.stderr
        assert "memcached (memcached) running at 127.0.0.1:" in started.stdout
        listed = invoke("apps.list", run_root=tmp_path)
        assert listed.returncode == 0
        row = next(line for line in listed.stdout.splitlines() if "memcached" in line)
        assert "127.0.0.1:" in row and "pid" in row
        again = invoke("apps.start", "--app", "memcached", run_root=tmp_path)
        assert_one_line_failure(again, "already running")
    finally:
        stopped = invoke("apps.stop", "--all", run_root=tmp_path)
    assert stopped.returncode == 0 and "stopped memcached" in stopped.stdout
    assert set(proc.owned_pids()) <= before
    assert_one_line_failure(
        invoke("apps.stop", "--app", "memcached", run_root=tmp_path), "not running"
    )


def test_a_port_taken_between_picking_and_binding_is_retried(start_server, monkeypatch, taken_port):
    """Port 0: the server dies on a port someone took after it was picked; a fresh one
    is picked and the start succeeds."""
    from apps import spawned
    from gaia import net

    picks = iter([taken_port])
    monkeypatch.setattr(
        spawned, "resolve_port", lambda port, what: next(picks, None) or net.free_port()
    )
    server = start_server("redis")
    assert server.alive() and server.port != taken_port


def test_an_explicit_port_taken_while_starting_is_port_in_use(
    start_server, monkeypatch, taken_port
):
    from apps import spawned

    monkeypatch.setattr(spawned, "resolve_port", lambda port, what: port)  # skip the pre-check
    with pytest.raises(PortInUseError):
        start_server("memcached", port=taken_port)
