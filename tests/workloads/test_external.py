"""The external-YCSB wrapper: command lines and the missing-launcher error.

Neither a `ycsb` launcher nor a Docker engine exists on GAIA's machines, so the launch
itself is unverified; what can be checked here is what would be run and that its output
format is the one the parser reads (test_report.py parses YCSB's documented format).
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from gaia.errors import GaiaError
from workloads import external
from workloads.bindings import Endpoint
from workloads.ycsb import YcsbOptions, run_ycsb


def test_command_for_a_ycsb_launcher(tmp_path):
    wl = tmp_path / "workload.properties"
    argv = external.command("ycsb", "run", "redis", wl, Endpoint("10.0.0.5", 6380), {}, 4, 1000)
    assert argv[:4] == ["ycsb", "run", "redis", "-P"]
    assert argv[4] == str(wl)
    assert argv[5:9] == ["-threads", "4", "-target", "1000"]
    assert "redis.host=10.0.0.5" in argv and "redis.port=6380" in argv


def test_command_for_docker_mounts_the_workload_and_uses_the_host_network(tmp_path):
    wl = tmp_path / "w.properties"
    props = {"db.user": "bench", "db.url": "jdbc:mysql://x:1/ycsb"}
    argv = external.command(
        "docker",
        "load",
        "mariadb",
        wl,
        Endpoint("127.0.0.1", 3307),
        props,
        2,
        None,
        image="example/ycsb:0.17",
    )
    assert argv[:5] == ["docker", "run", "--rm", "--network", "host"]
    assert f"{tmp_path}:/gaia-workload:ro" in argv and "example/ycsb:0.17" in argv
    assert argv[argv.index("example/ycsb:0.17") + 1 :][:3] == ["load", "jdbc", "-P"]
    assert "/gaia-workload/w.properties" in argv and "-target" not in argv
    assert "db.url=jdbc:mysql://127.0.0.1:3307/ycsb" in argv and "db.user=bench" in argv


@pytest.mark.parametrize(
    ("app", "setting"),
    [
        ("memcached", "memcached.hosts=h:11"),
        ("mongodb", "mongodb.url=mongodb://h:11/ycsb?w=1"),
    ],
)
def test_binding_properties(app, setting):
    assert setting in external.binding_properties(app, Endpoint("h", 11), {})


def test_external_run_without_a_launcher_is_one_clear_error(fresh_server):
    if shutil.which("ycsb") or external.docker_available():
        pytest.skip("a real YCSB launcher exists here")
    server, _ = fresh_server("redis")
    with pytest.raises(GaiaError) as info:
        run_ycsb(
            YcsbOptions(
                app="redis",
                port=server.port,
                records=10,
                ops=10,
                external=True,
                save=False,
                status=False,
            ),
            out=io.StringIO(),
        )
    assert "no Java YCSB here" in info.value.one_line()
    assert Path(external.__file__).read_text().count("UNVERIFIED") == 1
