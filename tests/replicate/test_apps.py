"""Memcached, MariaDB and MongoDB replicated by APUS + the shim: YCSB workload A against
the leader plus each server's own standard client (memcslap; sysbench oltp_read_write
with the passwordless bench user; MongoDB: YCSB only), then every replica's state digest
is equal and the output checker finds no unexpected divergence. The kill -9 of the
leader during YCSB runs for each of them too, the old leader coming back through the
guard (marked campaign: ~1-2 min each; so are the MariaDB and MongoDB steady-state runs:
`pytest -m campaign tests/replicate`).

sysbench runs one thread: MariaDB transactions that wait on each other's row locks
execute on the leader in an order the log does not record (the shim's serialize gate
lets a blocked input be overtaken after its hold time), so concurrent conflicting
transactions cannot be replayed in log order — see the report.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from gaia.replicate.group import ReplicatedGroup
from tests.replicate.helpers import (
    YcsbRun,
    assert_replicas_agree,
    wait_for_progress,
    writes_on,
)

pytestmark = pytest.mark.timeout(600)


def _memcslap(host: str, port: int) -> list[str]:
    return ["memcslap", f"--servers={host}:{port}", "--test=set", "--concurrency=4",
            "--execute-number=300"]


def _sysbench(host: str, port: int) -> list[str]:
    base = (f"sysbench oltp_read_write --db-driver=mysql --mysql-host={host} "
            f"--mysql-port={port} --mysql-user=bench --mysql-password= --mysql-db=ycsb "
            "--tables=1 --table-size=200")
    return ["bash", "-c", f"{base} prepare && {base} --threads=1 --events=60 --time=0 run"]


STANDARD_CLIENTS = {"memcached": _memcslap, "mariadb": _sysbench, "mongodb": None}


@pytest.fixture
def group(request, run_dir: Path):
    with ReplicatedGroup.of(request.param, 3, run_dir=run_dir / request.param) as g:
        yield g
        if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
            print(g.describe())


# memcached in the default suite; MariaDB and MongoDB (~1 min each on 2 cores) as campaigns
@pytest.mark.parametrize("group", ["memcached",
                                   pytest.param("mariadb", marks=pytest.mark.campaign),
                                   pytest.param("mongodb", marks=pytest.mark.campaign)],
                         indirect=True)
def test_ycsb_a_and_the_standard_client_leave_every_replica_equal(group, run_dir):
    app = group.spec.app
    recording = run_dir / "writes.jsonl"
    outcome = YcsbRun(group, records=200, ops=600, threads=4, recording=recording).run()
    assert outcome.run is not None and not outcome.run.errors
    client = STANDARD_CLIENTS[app]
    if client is not None:
        host, port = group.current.leader_endpoint()
        done = subprocess.run(client(host, port), capture_output=True, text=True, timeout=400)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    report = group.check_outputs()  # before the digests: a digest query is input too
    assert report.compared > 600 and report.unexpected == [], report.summary()
    assert_replicas_agree(group, expect=3)
    for r in group.live_replicas():
        check = writes_on(group, r, recording)
        assert check.acknowledged > 0 and check.ok, f"r{r}: {check.summary()}"


@pytest.mark.campaign
@pytest.mark.parametrize("group", ["memcached", "mariadb", "mongodb"], indirect=True)
def test_kill_the_leader_during_ycsb(group, run_dir):
    recording = run_dir / "writes.jsonl"
    YcsbRun(group, records=150, phases=(True, False), recording=recording).run()
    run = YcsbRun(group, records=150, ops=3000, phases=(False, True),
                  recording=recording).start()
    wait_for_progress(group, 300, run)
    victim = group.current.leader
    group.kill_replica(victim)
    outcome = run.join()
    assert outcome.run is not None and outcome.run.failover_gaps_s
    digests = assert_replicas_agree(group, expect=2)
    for r in digests:
        check = writes_on(group, r, recording)
        assert check.ok, f"r{r}: {check.summary()}"
    group.checkpoint(next(r for r in digests if r != group.current.leader))
    group.restart_replica(victim, from_checkpoint=True)
    assert group.wait_backup(victim).recovered_from.startswith("checkpoint")
    assert_replicas_agree(group, expect=3)
