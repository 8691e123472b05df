"""The runner: open loop and coordinated omission, client processes, lost-write checks,
leader-aware failover, and the `invoke ycsb` task end to end."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import apps
from gaia.deployment import Deployment, ReplicaInfo
from workloads.bindings import Endpoint, open_binding
from workloads.writelog import WriteRecorder, check_writes
from workloads.ycsb import YcsbOptions, run_ycsb

REPO = Path(__file__).resolve().parents[2]


def _run(server, **kwargs):
    base = dict(app="redis", port=server.port, records=200, save=False, status=False)
    return run_ycsb(YcsbOptions(**{**base, **kwargs}), out=io.StringIO())


def test_open_loop_charges_queued_requests_for_a_stall(fresh_server):
    """A 0.5 s server stall in an open loop at 500 ops/s: the one request in flight sees
    it in both series, but the ~250 requests scheduled during the stall see it only in
    the intended (coordinated-omission-corrected) series."""
    server, _ = fresh_server("redis")
    _run(server, workload="c", ops=0, run=False)  # load only
    stall = threading.Timer(0.8, lambda: server.client().execute_command("DEBUG", "SLEEP", "0.5"))
    stall.start()
    try:  # 1000 operations at 500/s: 2 s, with the stall in the middle
        outcome = _run(server, workload="c", ops=1000, threads=1, target=500, load=False)
    finally:
        stall.join()
    record = outcome.record
    assert outcome.run.operations == 1000
    op, intended = record.histogram("READ"), record.histogram("Intended-READ")
    slow = 100_000_000  # 100 ms
    assert op.get_total_count() == intended.get_total_count() == 1000
    op_over = sum(
        i.count_at_value_iterated_to
        for i in op.get_recorded_iterator()
        if i.value_iterated_to > slow
    )
    intended_over = sum(
        i.count_at_value_iterated_to
        for i in intended.get_recorded_iterator()
        if i.value_iterated_to > slow
    )
    assert op_over <= 3  # only the request in flight during the stall
    assert intended_over >= 100  # the requests queued behind it
    assert intended.get_mean_value() >= op.get_mean_value()


def test_client_processes_share_the_insert_counter(fresh_server):
    server, _ = fresh_server("redis")
    outcome = _run(
        server,
        workload="d",
        ops=400,
        threads=4,
        procs=2,
        overrides=["insertproportion=0.5", "readproportion=0.5"],
    )
    inserts = outcome.record.metrics["run"]["summary"]["INSERT"]["Return"]["OK"]
    assert outcome.run.operations == 400 and outcome.run.clients == 4
    # every insert got its own key from the shared counter: records + inserts hashes + index
    assert server.client().dbsize() == 200 + inserts + 1
    assert server.client().zcard("_indices") == 200 + inserts


@pytest.mark.parametrize("app", ["redis", "memcached"])
def test_recorded_writes_survive_and_a_lost_one_is_reported(app, fresh_server, tmp_path):
    server, props = fresh_server(app)
    recording = tmp_path / "writes.jsonl"
    _run(
        server, app=app, workload="a", ops=300, threads=2, overrides=props, record_writes=recording
    )
    lines = recording.read_text().splitlines()
    assert len(lines) == 200 + sum('"op":"update"' in line for line in lines)
    report = check_writes(recording, server)
    assert report.ok and report.checked_keys == 200, report.summary()
    first = lines[0].split('"k":"')[1].split('"')[0]
    victim = lines[-1].split('"k":"')[1].split('"')[0]
    if app == "redis":
        server.client().delete(first)
        server.client().hset(victim, "field0", b"not what was written")
        report = check_writes(recording, server)
        assert [m["key"] for m in report.missing] == [first] * len(report.missing)
        assert any(s["key"] == victim for s in report.stale) or victim == first
    else:
        server.client().delete(f"usertable-{first}")
        report = check_writes(recording, server)
        assert [m["key"] for m in report.missing] == [first]
    assert not report.ok


def test_unacknowledged_writes_are_admissible(fresh_server, tmp_path):
    """A write that failed may or may not have been applied: either value passes."""
    server, _ = fresh_server("redis")
    path = tmp_path / "w.jsonl"
    recorder = WriteRecorder(path)
    recorder.record("k1", "insert", {"field0": b"a"}, 10, 20, ok=True, replaces=False)
    recorder.record("k1", "update", {"field0": b"b"}, 30, 40, ok=False, replaces=False)
    recorder.close()
    server.client().hset("k1", "field0", b"b")
    assert check_writes(path, server).ok
    server.client().hset("k1", "field0", b"a")
    assert check_writes(path, server).ok
    server.client().hset("k1", "field0", b"c")
    assert not check_writes(path, server).ok


def test_leader_aware_binding_follows_a_failover(run_dir, tmp_path):
    """deployment.json names A; A dies; the binding waits for the file to name B, retries
    the failed operation there once and reports the failover gap."""
    a = apps.get("redis")(port=0).start()
    b = apps.get("redis")(port=0).start()
    try:
        dep = Deployment(
            kind="replicate",
            run_dir=str(run_dir),
            app="redis",
            leader=0,
            view=1,
            replicas=[
                ReplicaInfo(0, "leader", app_port=a.port),
                ReplicaInfo(1, "backup", app_port=b.port),
            ],
        )
        dep.save()
        db = open_binding(
            "redis",
            Endpoint.from_run_dir(run_dir, failover_timeout=10),
            {},
            WriteRecorder(tmp_path / "w.jsonl"),
        )
        assert db.insert("usertable", "user1", {"field0": b"x"}).ok
        a.stop()

        def promote():
            time.sleep(0.3)
            dep.leader, dep.view = 1, 2
            dep.replicas[0].role, dep.replicas[1].role = "down", "leader"
            dep.save()

        promoter = threading.Thread(target=promote)
        promoter.start()
        status = db.insert("usertable", "user2", {"field0": b"y"})
        promoter.join()
        assert status.ok
        assert b.client().hget("user2", "field0") == b"y"
        assert len(db.failover_gaps) == 1 and db.failover_gaps[0] >= 0.2
        db.cleanup()
    finally:
        a.stop(), a.cleanup(), b.stop(), b.cleanup()


def _invoke(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "invoke", "ycsb", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_invoke_task_starts_the_server_itself_and_saves_a_record(tmp_path, monkeypatch):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "invoke",
            "ycsb",
            "--app",
            "redis",
            "--workload",
            "b",
            "--infra",
            "none",
            "--records",
            "100",
            "--ops",
            "300",
            "--threads",
            "2",
            "--quiet",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
        env={**__import__("os").environ, "GAIA_RESULTS_DIR": str(tmp_path)},
    )
    assert done.returncode == 0, done.stderr
    assert "[OVERALL], Throughput(ops/sec)" in done.stdout
    assert "[READ], 99thPercentileLatency(us)" in done.stdout
    records = list((tmp_path / "ycsb").glob("*.json"))
    assert len(records) == 1
    from analysis.records import ResultRecord

    record = ResultRecord.from_json(records[0].read_text())
    assert record.app == "redis" and record.infra == "none" and record.experiment == "ycsb"
    assert record.histogram("READ").get_total_count() > 0
    assert record.metrics["run"]["operations"] == 300


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["-p", "readproportin=0.5"], "did you mean `readproportion`"),
        (["-p", "readproportion=0.9"], "proportions sum to"),
        (["-p", "requestdistribution=zipf"], "unknown request distribution"),
        (["--port", "1"], "cannot reach 127.0.0.1:1"),
        (["-p", "gaia.infra.r=3"], "--infra none has no option `gaia.infra.r`"),
        (["--infra", "apus", "-p", "gaia.infra.replicas=three"],
         "`gaia.infra.replicas=three` is not a valid value"),
    ],
)
def test_invoke_task_bad_input_exits_non_zero_with_one_line(args, needle):
    done = _invoke("--app", "redis", "--quiet", "--no-save", *args)
    assert done.returncode != 0
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and needle in lines[0] and "Traceback" not in done.stderr


def test_gaia_infra_properties_reach_the_provider_converted(fresh_server):
    """`-p gaia.infra.<name>=<value>` is the provider's option, typed by what it declares."""
    from contextlib import contextmanager

    from workloads import infra
    from workloads.bindings.endpoint import Endpoint

    server, _ = fresh_server("redis")
    seen = {}

    @contextmanager
    def probe(app, options):
        seen.update(options.take("probe", {"r": (int, 3), "hosts": (str, "netns"),
                                           "keep": (infra.flag, False)}))
        yield infra.Target(Endpoint("127.0.0.1", server.port), app, "probe")

    infra.register("probe", probe)
    try:
        run_ycsb(YcsbOptions(app="redis", workload="c", infra="probe", records=10, ops=10,
                             save=False, status=False,
                             overrides=["gaia.infra.r=1", "gaia.infra.keep=yes"]),
                 out=io.StringIO())
    finally:
        infra.PROVIDERS.pop("probe")
    assert seen == {"r": 1, "hosts": "netns", "keep": True}


def test_seeded_runs_repeat_their_key_sequence():
    from workloads import properties as P
    from workloads.ackcounter import SharedState
    from workloads.core import CoreWorkload

    config = P.validate({"recordcount": "100", "operationcount": "10", "gaia.seed": "7"})
    keys = []
    for _ in range(2):
        shared = SharedState.create(1, 0, 100)
        w = CoreWorkload(config, shared.counters, shared.window, 0)
        keys.append([w.plan(load=False).key for _ in range(20)])
    assert keys[0] == keys[1]
    assert np.unique(keys[0]).size > 5


def test_run_through_a_deployment_run_dir_and_exportfile(fresh_server, run_dir, tmp_path):
    server, _ = fresh_server("redis")
    Deployment(
        kind="replicate",
        run_dir=str(run_dir),
        app="redis",
        leader=0,
        replicas=[ReplicaInfo(0, "leader", app_port=server.port)],
    ).save()
    export = tmp_path / "report.txt"
    outcome = run_ycsb(
        YcsbOptions(
            app="redis",
            workload="b",
            run_dir=run_dir,
            records=50,
            ops=100,
            save=False,
            status=False,
            overrides=[f"exportfile={export}"],
        ),
        out=io.StringIO(),
    )
    assert outcome.record.config["infra_details"] == {"run_dir": str(run_dir)}
    assert export.read_text() == outcome.run_text
    assert Path(f"{export}.load").read_text() == outcome.load_text


def test_ycsb_style_command_line(fresh_server):
    server, _ = fresh_server("memcached")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "workloads",
            "load",
            "memcached",
            "-P",
            "workloads/files/workloadc",
            "-p",
            f"memcached.hosts=127.0.0.1:{server.port}",
            "-p",
            "recordcount=50",
            "-threads",
            "2",
            "-p",
            f"exportfile={server.data_dir}/out.txt",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "GAIA_RESULTS_DIR": str(server.data_dir)},
    )
    assert done.returncode == 0, done.stderr
    assert "[INSERT], Return=OK, 50" in done.stdout
    assert server.client().get("usertable-user6284781860667377211") is not None


def test_fixed_endpoint_reports_the_broken_call_and_reconnects():
    """memcached: the call on the dead socket is ERROR (not retried), the next one works.
    (redis-py checks a pooled socket before sending and reconnects on its own.)"""
    server = apps.get("memcached")(port=0).start()
    try:
        db = open_binding("memcached", Endpoint(server.host, server.port), {})
        assert db.insert("usertable", "user1", {"field0": b"x"}).ok
        server.restart()  # same port: the binding's socket is now dead
        assert db.insert("usertable", "user2", {"field0": b"y"}).name == "ERROR"  # no retry
        assert db.insert("usertable", "user3", {"field0": b"z"}).ok  # reconnected
        assert db.failover_gaps == [] and db.errors
        db.cleanup()
    finally:
        server.stop()
        server.cleanup()
