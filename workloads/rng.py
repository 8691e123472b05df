"""A seeded, explicit-state random number generator for numba kernels.

YCSB draws from `ThreadLocalRandom` (one stream per client thread, unseeded). GAIA keeps
one stream per client too, but seeded, so a run is reproducible and statistical tests are
deterministic: the state is a `uint64[4]` array (xoshiro256**, Blackman & Vigna),
initialised from a 64-bit seed with splitmix64, and passed into every generator kernel.
Streams therefore differ from Java's, by design; the distributions built on them follow
YCSB's formulas exactly.

The draws mirror the Java calls the generators make:
  * `next_double` ~ Random.nextDouble(): 53 random bits scaled to [0, 1);
  * `next_long`   ~ Random.nextLong(): 64 random bits as a signed int64;
  * `next_int`    ~ Random.nextInt(): the high 32 bits as a signed int32.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_U5 = np.uint64(5)
_U9 = np.uint64(9)
_U11 = np.uint64(11)
_U17 = np.uint64(17)
_U27 = np.uint64(27)
_U30 = np.uint64(30)
_U31 = np.uint64(31)
_U32 = np.uint64(32)
_U64 = np.uint64(64)
_TWO_M53 = 1.0 / 9007199254740992.0  # 2^-53


@njit(cache=True, nogil=True)
def _rotl(x: np.uint64, k: np.uint64) -> np.uint64:
    return (x << k) | (x >> (_U64 - k))


@njit(cache=True, nogil=True)
def seed_state(state: np.ndarray, seed: np.uint64) -> None:
    """Fill a uint64[4] state from a seed with splitmix64 (never all zero)."""
    x = np.uint64(seed)
    for i in range(4):
        x = x + _GOLDEN
        z = x
        z = (z ^ (z >> _U30)) * _MIX1
        z = (z ^ (z >> _U27)) * _MIX2
        state[i] = z ^ (z >> _U31)


@njit(cache=True, nogil=True)
def next_u64(state: np.ndarray) -> np.uint64:
    """xoshiro256**: the next 64 random bits; advances `state` in place."""
    s0 = state[0]
    s1 = state[1]
    s2 = state[2]
    s3 = state[3]
    result = _rotl(s1 * _U5, np.uint64(7)) * _U9
    t = s1 << _U17
    s2 ^= s0
    s3 ^= s1
    s1 ^= s2
    s0 ^= s3
    s2 ^= t
    s3 = _rotl(s3, np.uint64(45))
    state[0] = s0
    state[1] = s1
    state[2] = s2
    state[3] = s3
    return result


@njit(cache=True, nogil=True)
def next_double(state: np.ndarray) -> float:
    """Uniform in [0, 1) with 53 bits, like java.util.Random.nextDouble()."""
    return np.float64(next_u64(state) >> _U11) * _TWO_M53


@njit(cache=True, nogil=True)
def next_long(state: np.ndarray) -> np.int64:
    """64 random bits as a signed long, like Random.nextLong()."""
    return np.int64(next_u64(state))


@njit(cache=True, nogil=True)
def next_int(state: np.ndarray) -> np.int32:
    """32 random bits as a signed int, like Random.nextInt()."""
    return np.int32(np.int64(next_u64(state) >> _U32))


def new_state(seed: int) -> np.ndarray:
    """A fresh generator state for `seed` (any Python int; reduced mod 2^64)."""
    state = np.zeros(4, dtype=np.uint64)
    seed_state(state, np.uint64(seed & ((1 << 64) - 1)))
    return state
