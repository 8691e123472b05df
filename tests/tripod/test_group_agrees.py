"""`group_agrees`: the campaign's "healthy" for a TRIPOD task. Only a group whose three
APUS replicas live as one leader and two backups of one view tolerates the next fault;
the controller's "running" alone lags a dead host and a replica still recovering."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from gaia.apus.runtime.status import STATUS_FILE
from gaia.replicate.spec import ReplicateSpec
from gaia.tripod.group_replica import GROUP_DIR
from gaia.tripod.launch import replica_dir
from gaia.tripod.replicas import PlacedReplica, group_agrees
from gaia.tripod.state import apus_member_id


def placed(work_dir: Path, index: int, role: str, view: int = 3,
           pid: int | None = None) -> PlacedReplica:
    rep = PlacedReplica("kv", index, 0, f"agent-h{index}", "10.0.0.1", 7000 + index,
                        "placed", "running", work_dir, apus_member_id(index, 0, 3))
    status = ReplicateSpec.apus_dir(replica_dir(work_dir, rep.key) / GROUP_DIR) / \
        f"r{rep.member}" / STATUS_FILE
    status.parent.mkdir(parents=True)
    status.write_text(json.dumps({
        "id": rep.member, "pid": pid or os.getpid(), "role": role, "view": view,
        "leader": 0, "commit": 10, "last": 10, "incarnation": 1}))
    return rep


def dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_one_leader_and_backups_of_one_view_agree(tmp_path: Path):
    reps = [placed(tmp_path, 0, "backup"), placed(tmp_path, 1, "leader"),
            placed(tmp_path, 2, "backup")]
    assert group_agrees(reps)


@pytest.mark.parametrize("third", [
    {"role": "recovering"},  # restarted in place, not caught up yet
    {"role": "learner"},  # re-placed, not promoted yet
    {"role": "leader"},  # two leaders: a view change under way
    {"role": "backup", "view": 2},  # lags a view
    {"role": "backup", "pid": "dead"},  # its host just died
])
def test_a_member_that_cannot_vote_yet_means_not_healthy(tmp_path: Path, third: dict):
    pid = dead_pid() if third.get("pid") == "dead" else None
    reps = [placed(tmp_path, 0, "leader"), placed(tmp_path, 1, "backup"),
            placed(tmp_path, 2, third["role"], third.get("view", 3), pid)]
    assert not group_agrees(reps)


def test_a_replica_without_a_status_means_not_healthy(tmp_path: Path):
    reps = [placed(tmp_path, 0, "leader"), placed(tmp_path, 1, "backup")]
    missing = PlacedReplica("kv", 2, 1, "agent-h5", "10.0.0.5", 7005, "placed", "running",
                            tmp_path, apus_member_id(2, 1, 3))
    assert not group_agrees([*reps, missing])
