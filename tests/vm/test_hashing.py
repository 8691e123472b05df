"""XXH64 / XXH3-64 match the `xxhash` package bit for bit; page batches match per-page."""

from __future__ import annotations

import numpy as np
import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from gaia.vm.hashing import hash_pages, hash_pages_at, xxh3_64, xxh64


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=0, max_size=300), st.integers(0, 2**64 - 1))
def test_xxh64_matches_reference(data: bytes, seed: int) -> None:
    assert xxh64(data, seed) == xxhash.xxh64_intdigest(data, seed)


@settings(max_examples=100, deadline=None)
@given(st.binary(min_size=241, max_size=5000))
def test_xxh3_long_path_matches_reference(data: bytes) -> None:
    assert xxh3_64(data) == xxhash.xxh3_64_intdigest(data)


def test_xxh3_rejects_short_input() -> None:
    with pytest.raises(ValueError, match="240"):
        xxh3_64(b"x" * 240)


@pytest.mark.parametrize("algo", ["xxh3", "xxh64"])
@pytest.mark.parametrize("page_size", [4096, 512])
def test_page_batches_match_reference(algo: str, page_size: int) -> None:
    ref = xxhash.xxh3_64_intdigest if algo == "xxh3" else xxhash.xxh64_intdigest
    rng = np.random.default_rng(7)
    buf = rng.integers(0, 256, page_size * 200, dtype=np.uint8)
    buf[page_size * 3 : page_size * 4] = 0  # a zero page, as most guest RAM is
    expected = np.array(
        [ref(buf[i * page_size : (i + 1) * page_size].tobytes()) for i in range(200)],
        dtype=np.uint64,
    )
    np.testing.assert_array_equal(hash_pages(buf, page_size, algo), expected)
    pick = np.array([199, 0, 3, 3, 57])
    np.testing.assert_array_equal(hash_pages_at(buf, pick, page_size, algo), expected[pick])


def test_page_hashes_of_a_memmap(tmp_path) -> None:
    path = tmp_path / "ram"
    data = np.random.default_rng(1).integers(0, 256, 4096 * 16, dtype=np.uint8)
    path.write_bytes(data.tobytes())
    mapped = np.memmap(path, dtype=np.uint8, mode="r")
    np.testing.assert_array_equal(hash_pages(mapped), hash_pages(data))


def test_bad_arguments_are_clear_errors() -> None:
    buf = np.zeros(8192, np.uint8)
    with pytest.raises(ValueError, match="unknown hash"):
        hash_pages(buf, algo="md5")
    with pytest.raises(ValueError, match="page_size"):
        hash_pages(buf, page_size=100)
    with pytest.raises(IndexError):
        hash_pages_at(buf, [2])
