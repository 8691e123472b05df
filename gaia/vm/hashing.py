"""XXH64 and XXH3-64 in numba: page hashes for dirty detection and Merkle leaves.

Why our own: VM sync hashes whole guest RAM files (131,072 pages per 512 MiB) on every
sync while both VMs are paused, so the hash runs batched over many pages in one compiled
call (`prange` over pages, no Python per page). The outputs match the `xxhash` PyPI
package bit for bit (tests check it), so hashes computed anywhere else agree.

Public API:
- `xxh64(data, seed=0) -> int`: XXH64 of any buffer (bytes, bytearray, memoryview, numpy
  array); any length. Cheap enough for short buffers such as log-entry checksums.
- `xxh64_u8(arr_u8, start, length, seed)` (njit, nogil): the same inside nopython code,
  over a slice of a uint8 array (pass the seed as np.uint64).
- `xxh3_64(data) -> int`: XXH3-64 (default secret, seed 0) for buffers longer than 240
  bytes (the "long" path, which is what a page is). Shorter buffers raise ValueError.
- `hash_pages(buf, page_size=4096, algo="xxh3", out=None) -> uint64[n_pages]`: every page.
- `hash_pages_at(buf, pages, page_size=4096, algo="xxh3") -> uint64[len(pages)]`: only the
  listed pages (the verify step and the process backend).
- `hash_u64_pair(a, b) -> int` (njit) : XXH64 of two little-endian u64s (Merkle parents).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit, prange, types, uint64
from numba.extending import intrinsic

PAGE_SIZE = 4096

P64_1 = uint64(0x9E3779B185EBCA87)
P64_2 = uint64(0xC2B2AE3D27D4EB4F)
P64_3 = uint64(0x165667B19E3779F9)
P64_4 = uint64(0x85EBCA77C2B2AE63)
P64_5 = uint64(0x27D4EB2F165667C5)
P32_1 = uint64(0x9E3779B1)
P32_2 = uint64(0x85EBCA77)
P32_3 = uint64(0xC2B2AE3D)
M32 = uint64(0xFFFFFFFF)

# XXH3's default 192-byte secret (a constant of the algorithm's specification).
_SECRET_BYTES = bytes.fromhex(
    "b8fe6c3923a44bbe7c01812cf721ad1cded46de9839097db7240a4a4b7b3671f"
    "cb79e64eccc0e578825ad07dccff7221b8084674f743248ee03590e6813a264c"
    "3c2852bb91c300cb88d0658b1b532ea371644897a20df94e3819ef46a9deacd8"
    "a8fa763fe39c343ff9dcbbc7c70b4f1d8a51e04bcdb45931c89f7ec9d9787364"
    "eac5ac8334d3ebc3c581a0fffa1363eb170ddd51b7f0da49d316552629d4689e"
    "2b16be587d47a1fc8ff8b8d17ad031ce45cb3a8f95160428afd7fbcabb4b407e"
)
SECRET_SIZE = 192
STRIPE = 64
STRIPES_PER_BLOCK = (SECRET_SIZE - STRIPE) // 8  # 16
BLOCK = STRIPE * STRIPES_PER_BLOCK  # 1024 bytes


# --------------------------------------------------------------------------- helpers
@njit(inline="always")
def _rotl(x, r):
    return (x << uint64(r)) | (x >> uint64(64 - r))


@njit(inline="always")
def _read_le(b, i, nbytes):
    """Little-endian integer of `nbytes` bytes of uint8 array `b` at offset `i`."""
    v = uint64(0)
    for k in range(nbytes):
        v |= uint64(b[i + k]) << uint64(8 * k)
    return v


@njit(inline="always")
def _round64(acc, lane):
    acc = acc + lane * P64_2
    acc = _rotl(acc, 31)
    return acc * P64_1


@njit(inline="always")
def _merge64(h, v):
    h ^= _round64(uint64(0), v)
    return h * P64_1 + P64_4


@njit(inline="always")
def _avalanche64(h):
    h ^= h >> uint64(33)
    h *= P64_2
    h ^= h >> uint64(29)
    h *= P64_3
    h ^= h >> uint64(32)
    return h


# --------------------------------------------------------------------------- XXH64
@njit(nogil=True, cache=True)
def xxh64_u8(b: np.ndarray, start: int, length: int, seed: int) -> int:
    """XXH64 of b[start:start+length] (b: uint8 array)."""
    s = uint64(seed)
    i = start
    end = start + length
    if length >= 32:
        v1 = s + P64_1 + P64_2
        v2 = s + P64_2
        v3 = s
        v4 = s - P64_1
        limit = end - 32
        while i <= limit:
            v1 = _round64(v1, _read_le(b, i, 8))
            v2 = _round64(v2, _read_le(b, i + 8, 8))
            v3 = _round64(v3, _read_le(b, i + 16, 8))
            v4 = _round64(v4, _read_le(b, i + 24, 8))
            i += 32
        h = _rotl(v1, 1) + _rotl(v2, 7) + _rotl(v3, 12) + _rotl(v4, 18)
        h = _merge64(h, v1)
        h = _merge64(h, v2)
        h = _merge64(h, v3)
        h = _merge64(h, v4)
    else:
        h = s + P64_5
    h += uint64(length)
    while i + 8 <= end:
        h ^= _round64(uint64(0), _read_le(b, i, 8))
        h = _rotl(h, 27) * P64_1 + P64_4
        i += 8
    if i + 4 <= end:
        h ^= _read_le(b, i, 4) * P64_1
        h = _rotl(h, 23) * P64_2 + P64_3
        i += 4
    while i < end:
        h ^= uint64(b[i]) * P64_5
        h = _rotl(h, 11) * P64_1
        i += 1
    return _avalanche64(h)


@njit(nogil=True, inline="always")
def _xxh64_page_words(w, base, nwords):
    """XXH64 of nwords (multiple of 4) u64 words w[base:base+nwords], seed 0: the page path."""
    v1 = P64_1 + P64_2
    v2 = P64_2
    v3 = uint64(0)
    v4 = uint64(0) - P64_1
    for j in range(base, base + nwords, 4):
        v1 = _round64(v1, w[j])
        v2 = _round64(v2, w[j + 1])
        v3 = _round64(v3, w[j + 2])
        v4 = _round64(v4, w[j + 3])
    h = _rotl(v1, 1) + _rotl(v2, 7) + _rotl(v3, 12) + _rotl(v4, 18)
    h = _merge64(h, v1)
    h = _merge64(h, v2)
    h = _merge64(h, v3)
    h = _merge64(h, v4)
    h += uint64(nwords * 8)
    return _avalanche64(h)


@njit(nogil=True, inline="always")
def hash_u64_pair(a, b):
    """XXH64 (seed 0) of the 16 bytes a||b, both little-endian: a Merkle parent's hash."""
    h = P64_5 + uint64(16)
    h ^= _round64(uint64(0), uint64(a))
    h = _rotl(h, 27) * P64_1 + P64_4
    h ^= _round64(uint64(0), uint64(b))
    h = _rotl(h, 27) * P64_1 + P64_4
    return _avalanche64(h)


# --------------------------------------------------------------------------- XXH3-64
@njit(inline="always")
def _mul128_fold64(a, b):
    """(a*b) as 128 bits, low half XOR high half (portable 32-bit limbs)."""
    a_lo = a & M32
    a_hi = a >> uint64(32)
    b_lo = b & M32
    b_hi = b >> uint64(32)
    lo_lo = a_lo * b_lo
    hi_lo = a_hi * b_lo
    lo_hi = a_lo * b_hi
    hi_hi = a_hi * b_hi
    cross = (lo_lo >> uint64(32)) + (hi_lo & M32) + lo_hi
    upper = (hi_lo >> uint64(32)) + (cross >> uint64(32)) + hi_hi
    lower = (cross << uint64(32)) | (lo_lo & M32)
    return lower ^ upper


def _key_table() -> np.ndarray:
    """The secret's u64 views at the byte offsets XXH3's long path reads: row 0 = stripe
    keys (offset 0), row 1 = last-stripe key (192-64-7 = 121), row 2 = merge key (11),
    row 3 = scramble key (128)."""
    table = np.zeros((4, 24), dtype=np.uint64)
    for row, offset in enumerate((0, SECRET_SIZE - STRIPE - 7, 11, SECRET_SIZE - STRIPE)):
        usable = (SECRET_SIZE - offset) // 8
        table[row, :usable] = np.frombuffer(_SECRET_BYTES[offset : offset + 8 * usable], "<u8")
    return table


KEY_TABLE = _key_table()
_INIT_ACC = (P32_3, P64_1, P64_2, P64_3, P64_4, P32_2, P64_5, P32_1)


@njit(nogil=True, inline="always")
def _acc_stripe(acc, w, j, key, row, s):
    """One 64-byte stripe at words w[j:j+8] into the 8 accumulators."""
    for i in range(8):
        d = w[j + i]
        k = d ^ key[row, s + i]
        acc[i ^ 1] += d
        acc[i] += (k & M32) * (k >> uint64(32))


@njit(nogil=True, inline="always")
def _xxh3_finish(acc, nbytes, key):
    """Merge the accumulators and avalanche: the final step of the long path."""
    r = uint64(nbytes) * P64_1
    for i in range(0, 8, 2):
        r += _mul128_fold64(acc[i] ^ key[2, i], acc[i + 1] ^ key[2, i + 1])
    r ^= r >> uint64(37)
    r *= uint64(0x165667919E3779F9)
    r ^= r >> uint64(32)
    return r


@njit(nogil=True, cache=True)
def _xxh3_generic(b, key):
    """XXH3-64 long path for any length > 240 (scalar): stripes read from a word-aligned
    copy, the last (possibly unaligned) stripe from its own 8-word copy."""
    n = b.size
    words = np.zeros((n + 7) // 8, dtype=np.uint64)
    words.view(np.uint8)[:n] = b
    last = np.empty(8, dtype=np.uint64)
    last.view(np.uint8)[:] = b[n - 64 : n]
    acc = np.empty(8, dtype=np.uint64)
    for i in range(8):
        acc[i] = _INIT_ACC[i]
    nb_blocks = (n - 1) // BLOCK
    total = nb_blocks * STRIPES_PER_BLOCK + ((n - 1) - BLOCK * nb_blocks) // STRIPE
    for s_all in range(total):
        s = s_all % STRIPES_PER_BLOCK
        _acc_stripe(acc, words, s_all * 8, key, 0, s)
        if s == STRIPES_PER_BLOCK - 1:  # end of a block: scramble
            for i in range(8):
                a = acc[i]
                acc[i] = ((a ^ (a >> uint64(47))) ^ key[3, i]) * P32_1
    _acc_stripe(acc, last, 0, key, 1, 0)
    return _xxh3_finish(acc, n, key)


# The 4 KiB page path, vectorised by hand: numba's auto-vectoriser leaves XXH3's lanes
# scalar (~10 GiB/s); written on LLVM <8 x i64> vectors the 32x32->64 multiplies become
# vpmuludq and a page hashes at memory speed. Key words: 16 stripe keys of 8 words
# (stripe s uses secret words s..s+7), then the last-stripe key, then the scramble key.
_V8 = ir.VectorType(ir.IntType(64), 8)
_KEY_LAST = 128
_KEY_SCRAMBLE = 136
PAGE_KEYS = np.concatenate(
    [
        np.stack([KEY_TABLE[0, s : s + 8] for s in range(16)]).reshape(-1),
        KEY_TABLE[1, :8],
        KEY_TABLE[3, :8],
    ]
).astype(np.uint64)


def _v8(values: Any) -> ir.Constant:
    i64 = ir.IntType(64)
    return ir.Constant(_V8, [ir.Constant(i64, int(np.uint64(v).view(np.int64))) for v in values])


@intrinsic
def _xxh3_page4k_acc(typingctx, data_addr, keys_addr, acc_addr):
    """acc[0:8] = XXH3's accumulators after all stripes of the 4096 bytes at data_addr."""
    sig = types.void(types.uintp, types.uintp, types.uintp)

    def codegen(context, builder, signature, args):
        i64 = ir.IntType(64)
        data = builder.inttoptr(args[0], i64.as_pointer())
        keys = builder.inttoptr(args[1], i64.as_pointer())

        def load(base, word):
            ptr = builder.bitcast(builder.gep(base, [ir.Constant(i64, word)]), _V8.as_pointer())
            return builder.load(ptr, align=8)

        low32, shift32 = _v8([0xFFFFFFFF] * 8), _v8([32] * 8)
        swap = ir.Constant(ir.VectorType(ir.IntType(32), 8), [1, 0, 3, 2, 5, 4, 7, 6])
        acc = _v8([int(v) for v in _INIT_ACC])

        def stripe(acc, dsum, data_word, key_word):
            d = load(data, data_word)
            dk = builder.xor(d, load(keys, key_word))
            prod = builder.mul(builder.and_(dk, low32), builder.lshr(dk, shift32))
            return builder.add(acc, prod), builder.add(dsum, d)

        # 4 blocks of 16 stripes; the last block has 15 plus the final stripe. The data
        # words of a block are summed apart and added lane-swapped at the block's end
        # (addition commutes, so this equals XXH3's per-stripe acc[i^1] += d[i]).
        for blk in range(4):
            dsum = _v8([0] * 8)
            for s in range(16 if blk < 3 else 15):
                acc, dsum = stripe(acc, dsum, blk * 128 + s * 8, s * 8)
            if blk == 3:
                acc, dsum = stripe(acc, dsum, 504, _KEY_LAST)
            undef = ir.Constant(_V8, ir.Undefined)
            acc = builder.add(acc, builder.shuffle_vector(dsum, undef, swap))
            if blk < 3:
                mixed = builder.xor(acc, builder.lshr(acc, _v8([47] * 8)))
                mixed = builder.xor(mixed, load(keys, _KEY_SCRAMBLE))
                acc = builder.mul(mixed, _v8([int(P32_1)] * 8))
        out = builder.bitcast(builder.inttoptr(args[2], i64.as_pointer()), _V8.as_pointer())
        builder.store(acc, out, align=8)
        return context.get_dummy_value()

    return sig, codegen


@njit(nogil=True, inline="always")
def _xxh3_page(words, base, words_per_page, key, page_keys, acc):
    if words_per_page == 512:
        _xxh3_page4k_acc(words.ctypes.data + base * 8, page_keys.ctypes.data, acc.ctypes.data)
        return _xxh3_finish(acc, 4096, key)
    return _xxh3_generic(words[base : base + words_per_page].view(np.uint8), key)


# --------------------------------------------------------------------------- batches
ALGO_XXH3 = 0
ALGO_XXH64 = 1
_ALGOS = {"xxh3": ALGO_XXH3, "xxh64": ALGO_XXH64}


_CHUNK = 64  # pages per parallel task: amortises the per-task scratch allocation


def _hash_pages_body(words, words_per_page, pages, out, algo, key, page_keys):
    n = pages.shape[0]
    for c in prange((n + _CHUNK - 1) // _CHUNK):
        acc = np.empty(8, dtype=np.uint64)
        for k in range(c * _CHUNK, min(n, (c + 1) * _CHUNK)):
            base = pages[k] * words_per_page
            if algo == ALGO_XXH3:
                out[k] = _xxh3_page(words, base, words_per_page, key, page_keys, acc)
            else:
                out[k] = _xxh64_page_words(words, base, words_per_page)


# Parallel for large batches; serial below PARALLEL_MIN pages, where waking the thread
# pool costs more than hashing (a few hundred divergent pages in the verify step).
_hash_pages_parallel = njit(nogil=True, parallel=True, cache=True)(_hash_pages_body)
_hash_pages_serial = njit(nogil=True, cache=True)(_hash_pages_body)
PARALLEL_MIN = 4096


def _hash_pages_kernel(words, words_per_page, pages, out, algo, key, page_keys) -> None:
    kernel = _hash_pages_parallel if pages.size >= PARALLEL_MIN else _hash_pages_serial
    kernel(words, words_per_page, pages, out, algo, key, page_keys)


def _as_words(buf: Any) -> np.ndarray:
    arr = np.asarray(buf) if isinstance(buf, np.ndarray) else np.frombuffer(buf, np.uint8)
    if arr.dtype != np.uint64:
        arr = arr.reshape(-1).view(np.uint8)
        if arr.size % 8:
            raise ValueError(f"buffer of {arr.size} bytes is not a whole number of u64 words")
        arr = arr.view(np.uint64)
    return arr


def _check_page_size(page_size: int) -> int:
    if page_size <= 240 or page_size % 32:
        raise ValueError(f"page_size must be a multiple of 32 above 240, got {page_size}")
    return page_size // 8


def _algo(algo: str) -> int:
    try:
        return _ALGOS[algo]
    except KeyError:
        raise ValueError(f"unknown hash {algo!r}; choose one of {sorted(_ALGOS)}") from None


def hash_pages(
    buf: Any, page_size: int = PAGE_SIZE, algo: str = "xxh3", out: np.ndarray | None = None
) -> np.ndarray:
    """Hash every whole page of `buf` (bytes-like or numpy, e.g. a memmap of a RAM file)."""
    words = _as_words(buf)
    wpp = _check_page_size(page_size)
    n_pages = words.size // wpp
    if out is None:
        out = np.empty(n_pages, dtype=np.uint64)
    elif out.shape != (n_pages,) or out.dtype != np.uint64:
        raise ValueError(f"out must be uint64[{n_pages}]")
    _hash_pages_kernel(words, wpp, np.arange(n_pages), out, _algo(algo), KEY_TABLE, PAGE_KEYS)
    return out


def hash_pages_at(
    buf: Any, pages: Any, page_size: int = PAGE_SIZE, algo: str = "xxh3"
) -> np.ndarray:
    """Hash only the listed page numbers of `buf`; result[i] belongs to pages[i]."""
    words = _as_words(buf)
    wpp = _check_page_size(page_size)
    idx = np.ascontiguousarray(pages, dtype=np.int64)
    n_pages = words.size // wpp
    if idx.size and (idx.min() < 0 or idx.max() >= n_pages):
        raise IndexError(f"page numbers must lie in [0, {n_pages})")
    out = np.empty(idx.size, dtype=np.uint64)
    _hash_pages_kernel(words, wpp, idx, out, _algo(algo), KEY_TABLE, PAGE_KEYS)
    return out


def _as_u8(data: Any) -> np.ndarray:
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data).reshape(-1).view(np.uint8)
    return np.frombuffer(memoryview(data).cast("B"), dtype=np.uint8)


def xxh64(data: Any, seed: int = 0) -> int:
    """XXH64 of a buffer of any length (bytes, bytearray, memoryview or numpy array)."""
    b = _as_u8(data)
    return int(xxh64_u8(b, 0, b.size, np.uint64(seed & 0xFFFFFFFFFFFFFFFF)))


def xxh3_64(data: Any) -> int:
    """XXH3-64 (seed 0, default secret) of a buffer longer than 240 bytes."""
    b = _as_u8(data)
    if b.size <= 240:
        raise ValueError(f"xxh3_64 here covers the long path only (> 240 bytes), got {b.size}")
    return int(_xxh3_generic(b, KEY_TABLE))
