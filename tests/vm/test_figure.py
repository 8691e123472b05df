"""The vm_divergent_pages figure renders from stored records alone (synthetic here)."""

from __future__ import annotations

from analysis.records import ResultRecord
from paper_figures.vm_divergent_pages import FIGURE, per_sync_frame

STEP_KEYS = ("stop", "hash", "hash_backup", "tree", "traversal", "copy", "verify", "migrate", "cont")


def _record(app: str, reconnect: bool = False, ordering: str = "local") -> ResultRecord:
    syncs = []
    for i in range(3):
        m = {"reason": "periodic", "index": i, "dirty_leader": 500 + i, "dirty_backup": 510,
             "dirty_union": 520, "divergent": 50 + i, "ours_bytes": 400_000,
             "primary_backup_bytes": 2_200_000, "plover_bytes": 390_000, "state_bytes": 200_000,
             "leader_pause_ms": 70.0}
        m.update({f"{s}_ms": 1.0 for s in STEP_KEYS})
        syncs.append(m)
    syncs.append({**syncs[0], "reason": "syn"})  # not a periodic sync: not plotted
    return ResultRecord(experiment="vm_sync", infra="vm", app=app,
                        config={"reconnect": reconnect, "ordering": ordering}, metrics={"syncs": syncs})


def test_render_and_measured(tmp_path) -> None:
    records = [_record("redis"), _record("memcached"), _record("redis", reconnect=True),
               _record("redis", ordering="apus")]
    frame = per_sync_frame(records)
    assert len(frame) == 9 and set(frame["app"]) == {"redis", "memcached", "redis (APUS)"}
    paths = FIGURE.render(records, tmp_path)
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    assert all(p.stat().st_size > 1000 for p in paths)
    text = FIGURE.measured(records)
    assert "redis: 51 divergent of 501 dirty pages" in text
    assert "fewer pages" in text


def test_no_records_no_figure(tmp_path) -> None:
    assert FIGURE.render([], tmp_path) == []
    assert FIGURE.measured([]) == "no periodic syncs recorded"
