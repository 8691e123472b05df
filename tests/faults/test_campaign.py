"""Fault campaigns against the real replicated Redis (gaia.replicate: three APUS replicas,
three redis-servers under the shim, three agents).

Default suite: a small seeded campaign on shm with kill, pause and restart must lose no
acknowledged write, stay linearizable and end with equal digests (its stored record
renders the failover-timeline figure); a campaign on tcp
interrupted with SIGINT must leave no process, namespace or shared-memory segment.
Marked `campaign`: the long campaign (200 runs), run by hand (`invoke test -m campaign`
or `invoke faults --runs 200`).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from analysis.store import load_records, save_record
from gaia import proc
from gaia.cluster.netns import netns_unavailable_reason
from gaia.faults import campaign as campaign_module
from gaia.faults.campaign import run_campaign, totals
from gaia.faults.options import CampaignOptions
from gaia.faults.report import to_record
from gaia.paths import REPO
from paper_figures.failover_timeline import FIGURE

pytestmark = pytest.mark.timeout(1200)


def shm_segments(group_id: str) -> list[str]:
    return sorted(p.name for p in Path("/dev/shm").iterdir() if group_id in p.name)


def namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def assert_clean(done) -> None:
    bad = [r.line() + "\n" + r.witness for r in done.results if not r.clean]
    assert not bad, "\n".join(bad)
    t = totals(done.results)
    assert t["lost_acknowledged_writes"] == 0 and t["violations"] == 0
    assert all(len(r.digests) == 3 for r in done.results), "every replica was compared"


def test_a_small_campaign_loses_nothing(tmp_path, monkeypatch):
    """Also: its result record is stored, and the failover-timeline figure renders from
    the stored record alone."""
    monkeypatch.setattr(campaign_module, "RESULTS_DIR", tmp_path)
    options = CampaignOptions(runs=10, seed=20261125, app="redis", infra="apus",
                              transport="shm", nemesis=("kill", "pause", "restart"),
                              run_s=2.0, tail_s=0.5, fault_s=(0.4, 1.0), gap_s=(0.3, 1.0),
                              keys=16, clients=3, experiment=FIGURE.experiment)
    done = run_campaign(options)
    assert len(done.results) == 10
    assert_clean(done)
    faults = [f for r in done.results for f in r.faults]
    assert {f["kind"] for f in faults} == {"kill", "pause", "restart"}
    assert any(f["hit_leader"] for f in faults) and any(r.failovers for r in done.results)
    assert all(r.ops["ok"] > 0 for r in done.results)
    assert not done.run_dir.exists(), "clean deployments are removed"

    save_record(to_record(done), tmp_path / "records")
    [stored] = load_records([tmp_path / "records"], experiment=FIGURE.experiment)
    assert stored.metrics["runs"] == 10 and stored.metrics["lost_acknowledged_writes"] == 0
    recovered = stored.metrics["leader_faults"] - stored.metrics["failover_unrecovered"]
    assert stored.histogram("failover").get_total_count() == recovered > 0
    paths = FIGURE.render([stored], tmp_path / "figures")
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    assert "shm: failover p50" in FIGURE.measured([stored])


def _wait_for(predicate, child: subprocess.Popen, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        if child.poll() is not None:
            raise AssertionError(f"the campaign exited ({child.returncode}) before {what}: "
                                 f"{child.communicate()[0][-3000:]}")
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def _serving(run_root: Path) -> Path | None:
    """The group dir of the campaign's deployment once a leader serves."""
    for group in run_root.glob("fc-*/d*/group"):
        try:
            dep = json.loads((group / "deployment.json").read_text())
            spec = json.loads((group / "replicate.json").read_text())
        except (OSError, ValueError):
            continue
        if dep.get("leader") is not None and spec.get("namespaces"):
            return group
    return None


@pytest.mark.skipif(netns_unavailable_reason() is not None,
                    reason=f"no network namespaces: {netns_unavailable_reason()}")
def test_ctrl_c_leaves_nothing_behind():
    """SIGINT in the middle of a tcp campaign (namespaces, nft rules, processes, shared
    memory): the campaign stops with exit code 130 and every trace of it is gone."""
    token = f"gaia-faults-{uuid.uuid4().hex[:8]}"
    # short: the agents' unix sockets live in the run dir (108-byte path limit)
    root = Path(tempfile.mkdtemp(prefix="gf-", dir="/tmp"))
    env = dict(os.environ, GAIA_OWNER=token, GAIA_RUN_ROOT=str(root / "runs"),
               GAIA_RESULTS_DIR=str(root / "results"))
    argv = [sys.executable, "-m", "gaia.faults", "--runs", "20", "--seed", "3",
            "--transport", "tcp", "--nemesis", "partition,kill", "--run-s", "3"]
    child = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    try:
        group = _wait_for(lambda: _serving(root / "runs"), child, 300, "a serving leader")
        spec = json.loads((group / "replicate.json").read_text())
        ours = set(spec["namespaces"].values())
        assert ours <= namespaces() and proc.owned_pids(token)
        assert shm_segments(spec["group_id"])
        time.sleep(2.5)  # into the run: clients busy, the first fault due
        child.send_signal(signal.SIGINT)
        output, _ = child.communicate(timeout=180)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        shutil.rmtree(root, ignore_errors=True)
    assert child.returncode == 130, output
    assert "interrupted" in output
    assert not ours & namespaces(), f"namespaces left: {ours & namespaces()}"
    assert proc.owned_pids(token) == [], "processes left behind"
    assert shm_segments(spec["group_id"]) == []


@pytest.mark.campaign
@pytest.mark.timeout(3 * 3600)
def test_a_long_campaign_loses_nothing(tmp_path, monkeypatch):
    """200 runs (about 30 minutes here); `invoke faults --runs 200 --seed 1 --publish`
    runs the same campaign and publishes its record."""
    monkeypatch.setattr(campaign_module, "RESULTS_DIR", tmp_path)
    done = run_campaign(CampaignOptions(runs=200, seed=1))
    assert_clean(done)


@pytest.mark.vm
@pytest.mark.timeout(1800)
def test_leader_vm_kills_lose_nothing(tmp_path, monkeypatch):
    """`invoke faults --infra vm`: runs of two or three leader-VM kills each (the standby
    promoted and synced in between, APUS members replaced), then the values read on the
    leader and, after one more kill, on the backup that took over."""
    monkeypatch.setattr(campaign_module, "RESULTS_DIR", tmp_path)
    done = run_campaign(CampaignOptions(runs=3, seed=2, infra="vm", nemesis=("kill",),
                                        run_s=6.0))
    bad = [r.line() + "\n" + r.witness for r in done.results if not r.clean]
    assert not bad, "\n".join(bad)
    assert sum(len(r.failovers) for r in done.results) >= 3
