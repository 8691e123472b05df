"""YCSB's number generators as numba kernels over explicit state arrays.

Each generator is a float64 array `g` (slot 0 = its kind, then its parameters and mutable
state); a kernel `gen_next(g, rng, shared)` draws the next value. Integers are stored as
float64, exact below 2^53 (YCSB's largest count is the scrambled zipfian's 10^10). State
that YCSB shares between client threads (counters, the acknowledged-insert window) lives
in `shared` (see ackcounter.py), which works for threads and, through shared memory, for
processes. The Python classes at the bottom wrap the kernels for tests and benchmarks.

What each kind reproduces (site.ycsb.generator.*):
  CONSTANT     ConstantIntegerGenerator: always `value`.
  UNIFORM      UniformLongGenerator(lb, ub): `Math.abs(nextLong()) % (ub-lb+1) + lb`, with
               Java's abs and truncating `%` (so the one-in-2^64 Long.MIN_VALUE draw maps
               below lb exactly as in Java).
  ZIPFIAN      ZipfianGenerator(min, max, theta=0.99) after Gray et al., "Quickly
               generating billion-record synthetic databases" (SIGMOD'94): u*zeta(n) < 1
               gives rank 0, < 1 + 0.5^theta gives rank 1, otherwise
               `base + (long)(itemcount * (eta*u - eta + 1)^alpha)`. When asked for more
               items than zeta was computed for (the latest generator as inserts are
               acknowledged), zeta is extended incrementally from the old count and eta
               recomputed, still from the constructor's `items` as Java does; a smaller
               item count does not recompute (allowitemcountdecrease=false).
  SCRAMBLED    ScrambledZipfianGenerator(min, max): a zipfian over 10^10 items (+1, as
               Java's `new ZipfianGenerator(0, ITEM_COUNT)` spans ITEM_COUNT+1 items) with
               the precomputed zeta(10^10, 0.99) = 26.46902820178302, then
               `min + fnvhash64(rank) % itemcount`, spreading the popular ranks over the
               key space.
  LATEST       SkewedLatestGenerator(basis): `max - zipfian.nextLong(max)` where max is
               the acknowledged-insert counter's last value, so recent inserts are hot;
               the zipfian is built over the initial `lastValue()` items.
  HOTSPOT      HotspotIntegerGenerator(lb, ub, hotsetfraction, hotopnfraction): with
               probability hotopnfraction uniform over the first (int)(n*hotsetfraction)
               items, else uniform over the rest.
  EXPONENTIAL  ExponentialGenerator(percentile, range): gamma = -ln(1-percentile/100)/range,
               value = -ln(u)/gamma, so `percentile`% of draws fall below `range`.
  SEQUENTIAL   SequentialGenerator(start, end): a shared counter modulo (end-start+1).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from gaia.lowlevel.atomics import fetch_add, load_acquire
from workloads import rng as _rng
from workloads.javamath import nb_fnvhash64, nb_java_abs, nb_java_rem

CONSTANT, UNIFORM, ZIPFIAN, SCRAMBLED, LATEST, HOTSPOT, EXPONENTIAL, SEQUENTIAL = range(8)
KIND_NAMES = {
    CONSTANT: "constant",
    UNIFORM: "uniform",
    ZIPFIAN: "zipfian",
    SCRAMBLED: "scrambled zipfian",
    LATEST: "latest",
    HOTSPOT: "hotspot",
    EXPONENTIAL: "exponential",
    SEQUENTIAL: "sequential",
}
STATE_SLOTS = 16

ZIPFIAN_CONSTANT = 0.99
SCRAMBLED_ITEM_COUNT = 10_000_000_000
SCRAMBLED_ZETAN = 26.46902820178302  # zeta(10^10, 0.99), as YCSB precomputes it

# Zipfian sub-state, at an offset inside a generator array.
Z_ITEMS, Z_BASE, Z_THETA, Z_ZETA2, Z_ALPHA, Z_ZETAN, Z_ETA, Z_COUNT = range(8)
ZIPF_OFFSET = {ZIPFIAN: 1, SCRAMBLED: 4, LATEST: 1}

# Shared int64 slots (process-wide; see ackcounter.py for the acknowledged counter's).
S_LOAD_NEXT, S_TXN_NEXT, S_ACK_LIMIT, S_ACK_LOCK, S_SEQ_NEXT = range(5)
SHARED_SLOTS = 8

_INT_MAX = 2147483647.0


# -- zipfian (Gray et al.) ----------------------------------------------------------------


@njit(cache=True, nogil=True)
def zeta_sum(start: np.int64, n: np.int64, theta: float, initial: float) -> float:
    """ZipfianGenerator.zetastatic(st, n, theta, initialsum): initial + sum 1/(i+1)^theta."""
    total = initial
    for i in range(start, n):
        total += 1.0 / math.pow(i + 1.0, theta)
    return total


@njit(cache=True, nogil=True)
def zipf_init(
    g: np.ndarray, off: np.int64, lo: np.int64, hi: np.int64, theta: float, zetan: float
) -> None:
    """The 4-argument ZipfianGenerator constructor; zetan < 0 means 'compute it'."""
    items = hi - lo + 1
    if zetan < 0.0:
        zetan = zeta_sum(0, items, theta, 0.0)
    zeta2 = zeta_sum(0, 2, theta, 0.0)
    g[off + Z_ITEMS] = items
    g[off + Z_BASE] = lo
    g[off + Z_THETA] = theta
    g[off + Z_ZETA2] = zeta2
    g[off + Z_ALPHA] = 1.0 / (1.0 - theta)
    g[off + Z_ZETAN] = zetan
    g[off + Z_COUNT] = items
    g[off + Z_ETA] = (1.0 - math.pow(2.0 / items, 1.0 - theta)) / (1.0 - zeta2 / zetan)


@njit(cache=True, nogil=True)
def zipf_next(g: np.ndarray, off: np.int64, itemcount: np.int64, rng: np.ndarray) -> np.int64:
    """ZipfianGenerator.nextLong(itemcount), with the incremental zeta on growth."""
    theta = g[off + Z_THETA]
    if itemcount > np.int64(g[off + Z_COUNT]):
        zetan = zeta_sum(np.int64(g[off + Z_COUNT]), itemcount, theta, g[off + Z_ZETAN])
        g[off + Z_ZETAN] = zetan
        g[off + Z_COUNT] = itemcount
        g[off + Z_ETA] = (1.0 - math.pow(2.0 / g[off + Z_ITEMS], 1.0 - theta)) / (
            1.0 - g[off + Z_ZETA2] / zetan
        )
    base = np.int64(g[off + Z_BASE])
    u = _rng.next_double(rng)
    uz = u * g[off + Z_ZETAN]
    if uz < 1.0:
        return base
    if uz < 1.0 + math.pow(0.5, theta):
        return base + 1
    eta = g[off + Z_ETA]
    return base + np.int64(itemcount * math.pow(eta * u - eta + 1.0, g[off + Z_ALPHA]))


# -- the other kinds ----------------------------------------------------------------------


@njit(cache=True, nogil=True)
def uniform_between(rng: np.ndarray, lb: np.int64, interval: np.int64) -> np.int64:
    """UniformLongGenerator: Math.abs(nextLong()) % interval + lb (Java abs and %)."""
    return nb_java_rem(nb_java_abs(_rng.next_long(rng)), interval) + lb


@njit(cache=True, nogil=True)
def gen_next(g: np.ndarray, rng: np.ndarray, shared: np.ndarray) -> np.int64:
    """The next value of an integer generator (every kind except EXPONENTIAL)."""
    kind = np.int64(g[0])
    if kind == CONSTANT:
        return np.int64(g[1])
    if kind == UNIFORM:
        return uniform_between(rng, np.int64(g[1]), np.int64(g[3]))
    if kind == ZIPFIAN:
        return zipf_next(g, 1, np.int64(g[1 + Z_ITEMS]), rng)
    if kind == SCRAMBLED:
        rank = zipf_next(g, 4, np.int64(g[4 + Z_ITEMS]), rng)
        return np.int64(g[1]) + nb_java_rem(nb_fnvhash64(rank), np.int64(g[3]))
    if kind == LATEST:
        top = load_acquire(shared, S_ACK_LIMIT)
        return top - zipf_next(g, 1, top, rng)
    if kind == HOTSPOT:
        lb = np.int64(g[1])
        hot = np.int64(g[3])
        if _rng.next_double(rng) < g[5]:
            return lb + nb_java_rem(nb_java_abs(_rng.next_long(rng)), hot)
        return lb + hot + nb_java_rem(nb_java_abs(_rng.next_long(rng)), np.int64(g[4]))
    if kind == SEQUENTIAL:
        return np.int64(g[1]) + fetch_add(shared, S_SEQ_NEXT, 1) % np.int64(g[2])
    return np.int64(-1)  # EXPONENTIAL is drawn with exp_next


@njit(cache=True, nogil=True)
def exp_next(g: np.ndarray, rng: np.ndarray) -> float:
    """ExponentialGenerator.nextValue(): -ln(u)/gamma."""
    return -math.log(_rng.next_double(rng)) / g[1]


@njit(cache=True, nogil=True)
def java_int_value(x: float) -> np.int64:
    """Double.intValue(): truncate toward zero, saturating at the int range."""
    if x != x:
        return np.int64(0)
    if x >= _INT_MAX:
        return np.int64(2147483647)
    if x <= -2147483648.0:
        return np.int64(-2147483648)
    return np.int64(x)


# -- constructors (plain Python: run once) -------------------------------------------------


def _state(kind: int) -> np.ndarray:
    g = np.zeros(STATE_SLOTS, dtype=np.float64)
    g[0] = kind
    return g


def constant_state(value: int) -> np.ndarray:
    g = _state(CONSTANT)
    g[1] = value
    return g


def uniform_state(lb: int, ub: int) -> np.ndarray:
    g = _state(UNIFORM)
    g[1], g[2], g[3] = lb, ub, ub - lb + 1
    return g


def zipfian_state(
    lo: int, hi: int, theta: float = ZIPFIAN_CONSTANT, zetan: float | None = None
) -> np.ndarray:
    g = _state(ZIPFIAN)
    zipf_init(g, ZIPF_OFFSET[ZIPFIAN], lo, hi, theta, -1.0 if zetan is None else zetan)
    return g


def scrambled_state(lo: int, hi: int, theta: float = ZIPFIAN_CONSTANT) -> np.ndarray:
    g = _state(SCRAMBLED)
    g[1], g[2], g[3] = lo, hi, hi - lo + 1
    zetan = SCRAMBLED_ZETAN if theta == ZIPFIAN_CONSTANT else -1.0
    zipf_init(g, ZIPF_OFFSET[SCRAMBLED], 0, SCRAMBLED_ITEM_COUNT, theta, zetan)
    return g


def latest_state(initial_last_value: int) -> np.ndarray:
    """SkewedLatestGenerator: zipfian over `basis.lastValue()` items (0 .. last-1)."""
    g = _state(LATEST)
    zipf_init(g, ZIPF_OFFSET[LATEST], 0, initial_last_value - 1, ZIPFIAN_CONSTANT, -1.0)
    return g


def hotspot_state(lb: int, ub: int, hotset: float, hotopn: float) -> np.ndarray:
    g = _state(HOTSPOT)
    interval = ub - lb + 1
    hot = int(interval * hotset)  # Java: (int) (interval * hotsetFraction)
    g[1], g[2], g[3], g[4], g[5] = lb, ub, hot, interval - hot, hotopn
    return g


def exponential_state(percentile: float, range_: float) -> np.ndarray:
    g = _state(EXPONENTIAL)
    g[1] = -math.log(1.0 - percentile / 100.0) / range_
    return g


def sequential_state(start: int, end: int) -> np.ndarray:
    g = _state(SEQUENTIAL)
    g[1], g[2] = start, end - start + 1
    return g


def new_shared() -> np.ndarray:
    """A private shared-state array (for single-process use and tests)."""
    return np.zeros(SHARED_SLOTS, dtype=np.int64)


# -- batch sampling (tests, benchmarks) ----------------------------------------------------


@njit(cache=True, nogil=True)
def sample(g: np.ndarray, rng: np.ndarray, shared: np.ndarray, n: np.int64) -> np.ndarray:
    """n draws of an integer generator."""
    out = np.empty(n, dtype=np.int64)
    for i in range(n):
        out[i] = gen_next(g, rng, shared)
    return out


@njit(cache=True, nogil=True)
def sample_exponential(g: np.ndarray, rng: np.ndarray, n: np.int64) -> np.ndarray:
    out = np.empty(n, dtype=np.float64)
    for i in range(n):
        out[i] = exp_next(g, rng)
    return out


class Generator:
    """A generator state plus its own random stream (tests and benchmarks use these)."""

    def __init__(self, state: np.ndarray, seed: int = 0, shared: np.ndarray | None = None):
        self.state = state
        self.rng = _rng.new_state(seed)
        self.shared = new_shared() if shared is None else shared

    @property
    def kind(self) -> str:
        return KIND_NAMES[int(self.state[0])]

    def sample(self, n: int) -> np.ndarray:
        if int(self.state[0]) == EXPONENTIAL:
            return sample_exponential(self.state, self.rng, n)
        return sample(self.state, self.rng, self.shared, n)

    def next(self) -> int | float:
        return self.sample(1)[0].item()
