"""A whole sync over synthetic memory images: after it the backup equals the leader byte
for byte; an incomplete copy is detected and refused."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gaia.errors import GaiaError
from gaia.vm.pagesync import ArrayStore, IncompleteSyncError, SyncState, copy_pages, sync_pages

PAGE = 4096


def _clone_pair(n_pages: int, seed: int) -> tuple[ArrayStore, ArrayStore, np.random.Generator]:
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, n_pages * PAGE, dtype=np.uint8)
    image[: n_pages * PAGE // 2] = 0  # half the RAM untouched zeros, as in a guest
    return ArrayStore(image.copy()), ArrayStore(image.copy()), rng


def _run_same_inputs(leader, backup, rng, n_writes, n_noise):
    """Identical writes on both (same inputs), plus per-replica noise (divergence)."""
    for _ in range(n_writes):
        at = int(rng.integers(0, leader.buf.size - 64))
        value = rng.integers(0, 256, 64, dtype=np.uint8)
        leader.buf[at : at + 64] = value
        backup.buf[at : at + 64] = value
    for store in (leader, backup):
        for _ in range(n_noise):
            store.buf[int(rng.integers(0, store.buf.size))] ^= 0x5A


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 300), st.integers(0, 2**32 - 1), st.integers(0, 200), st.integers(0, 20))
def test_sync_makes_backup_byte_identical(n_pages, seed, n_writes, n_noise) -> None:
    leader, backup, rng = _clone_pair(n_pages, seed)
    state = SyncState.after_clone(leader)
    for _ in range(3):  # several syncs in a row, as the VM pair runs
        _run_same_inputs(leader, backup, rng, n_writes, n_noise)
        differing = np.flatnonzero(
            np.any(leader.buf.reshape(-1, PAGE) != backup.buf.reshape(-1, PAGE), axis=1)
        )
        out = sync_pages(leader, backup, state)
        np.testing.assert_array_equal(out.divergent_pages, differing)
        np.testing.assert_array_equal(leader.buf, backup.buf)
        assert out.counts.divergent == differing.size
        assert out.counts.divergent <= out.counts.dirty_union
        assert out.counts.ours_bytes == differing.size * PAGE + out.counts.channel_bytes


def test_incomplete_copy_is_detected() -> None:
    leader, backup, rng = _clone_pair(64, 3)
    state = SyncState.after_clone(leader)
    _run_same_inputs(leader, backup, rng, 50, 10)

    def skip_one(src, dst, pages):
        copy_pages(src, dst, pages[1:])

    with pytest.raises(IncompleteSyncError, match="NOT resumed") as err:
        sync_pages(leader, backup, state, copier=skip_one)
    assert err.value.mismatched.size == 1
    assert not np.array_equal(leader.buf, backup.buf)


def test_no_change_no_transfer() -> None:
    leader, backup, _ = _clone_pair(32, 1)
    out = sync_pages(leader, backup, SyncState.after_clone(leader))
    assert out.counts.dirty_union == 0 and out.counts.divergent == 0
    assert set(out.steps_ms) == {"hash", "hash_backup", "tree", "traversal", "copy", "verify"}


def test_size_mismatch_is_a_clear_error() -> None:
    leader, _, _ = _clone_pair(8, 1)
    backup = ArrayStore(np.zeros(4 * PAGE, np.uint8))
    with pytest.raises(GaiaError, match="leader has 8 pages, backup 4") as err:
        sync_pages(leader, backup, SyncState.after_clone(leader))
    assert "clone the backup" in err.value.fix


def test_unknown_baseline_resyncs_every_page_but_sends_only_divergent() -> None:
    leader, backup, _ = _clone_pair(64, 5)
    backup.buf[4096 * 10 + 7] ^= 1  # an older checkpoint: differs in one page
    state = SyncState.unknown(leader.n_pages)
    out = sync_pages(leader, backup, state)
    assert out.counts.dirty_union == 64
    assert out.divergent_pages.tolist() == [10]
    np.testing.assert_array_equal(leader.buf, backup.buf)
    assert not state.resync_all
