"""The sync pipeline over real process memory (process_vm_readv/writev) of forked clones."""

from __future__ import annotations

import numpy as np
import pytest

from gaia.errors import GaiaError
from gaia.vm.forkclone import ForkedPair
from gaia.vm.pagesync import IncompleteSyncError, SyncState, copy_pages, sync_pages
from gaia.vm.process_backend import ProcessStore, Region, common_regions, paused

N_PAGES = 512


@pytest.fixture
def pair(run_dir):
    forked = ForkedPair(run_dir, N_PAGES)
    yield forked
    forked.stop()


def _feed(pair: ForkedPair, seed: int, writes: int = 60) -> None:
    rng = np.random.default_rng(seed)
    for _ in range(writes):
        page = int(rng.integers(0, N_PAGES))
        pair.both(f"write {page} {int(rng.integers(0, 4000))} 64 {int(rng.integers(1 << 30))}")


def test_clones_start_identical_and_stay_identical_under_same_inputs(pair) -> None:
    leader, backup = pair.store("leader"), pair.store("backup")
    with paused(*pair.pids.values()):
        state = SyncState.after_clone(leader)
        np.testing.assert_array_equal(backup.hash_all(), state.leader_synced)
    _feed(pair, 1)
    with paused(*pair.pids.values()):
        out = sync_pages(leader, backup, state)
    assert out.counts.dirty_leader > 0
    assert out.counts.dirty_leader == out.counts.dirty_backup == out.counts.dirty_union
    assert out.counts.divergent == 0


def test_divergent_pages_are_found_copied_and_verified(pair) -> None:
    leader, backup = pair.store("leader"), pair.store("backup")
    with paused(*pair.pids.values()):
        state = SyncState.after_clone(leader)
    for round_ in range(3):
        _feed(pair, 10 + round_)
        pair.send("leader", "noise 5")
        pair.send("backup", "noise 7")
        with paused(*pair.pids.values()):
            before_l, before_b = leader.snapshot(), backup.snapshot()
            differ = np.flatnonzero(
                np.any(before_l.reshape(-1, 4096) != before_b.reshape(-1, 4096), axis=1)
            )
            out = sync_pages(leader, backup, state)
            np.testing.assert_array_equal(out.divergent_pages, differ)
            np.testing.assert_array_equal(leader.snapshot(), backup.snapshot())
        assert 0 < out.counts.divergent <= 12
        assert out.counts.divergent < out.counts.dirty_union


def test_skipped_page_is_detected_in_process_memory(pair) -> None:
    leader, backup = pair.store("leader"), pair.store("backup")
    with paused(*pair.pids.values()):
        state = SyncState.after_clone(leader)
    pair.send("backup", "noise 20")
    with (
        paused(*pair.pids.values()),
        pytest.raises(IncompleteSyncError),
    ):
        sync_pages(leader, backup, state, copier=lambda a, b, p: copy_pages(a, b, p[:-1]))


def test_common_regions_of_clones_include_the_image(pair) -> None:
    regions = common_regions(pair.pids["leader"], pair.pids["backup"])
    assert pair.region is not None
    assert any(r.start <= pair.region.start < r.end for r in regions)


def test_reading_a_dead_process_is_a_clear_error() -> None:
    store = ProcessStore(2**22 + 12345, [Region(0x10000, 4096)])
    with pytest.raises(GaiaError, match="process_vm_readv"):
        store.hash_all()
