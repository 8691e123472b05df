"""Java's integer semantics, as YCSB's Java code relies on them.

YCSB computes key names and scrambled-zipfian ranks with Java `long` arithmetic: 64-bit
two's complement that wraps silently on overflow, `>>` that shifts in the sign bit, `%`
that truncates toward zero (so the remainder takes the sign of the dividend), and
`Math.abs(Long.MIN_VALUE) == Long.MIN_VALUE` (the one negative result of `abs`). Python
integers never overflow and `%` floors, so each rule is transcribed here explicitly, once
as plain Python (exact, for anything off the hot path) and once as numba kernels over
int64/uint64 (the same rules, for the generators).

Reproduced behaviour (site.ycsb.Utils, site.ycsb.workloads.CoreWorkload, java.lang):
  * `Utils.fnvhash64(long)`: FNV-1 over the 8 low-to-high octets of the value (xor the
    octet, then multiply by the FNV prime, both mod 2^64), the value shifted right
    arithmetically after each octet, and `Math.abs` of the signed result.
  * `CoreWorkload.buildKeyName(keynum, zeropadding, orderedinserts)`: hash the key number
    unless inserts are ordered, `Long.toString` it (a '-' sign included, which only
    Long.MIN_VALUE can produce), then insert `zeropadding - len(digits)` zeros after the
    "user" prefix (none when the digits are already long enough).
  * `String.hashCode()`: h = 31*h + c over UTF-16 code units, wrapped to 32 bits (the
    Redis binding scores its scan index with it).
"""

from __future__ import annotations

import numpy as np
from numba import njit

MASK64 = (1 << 64) - 1
LONG_MIN = -(1 << 63)
LONG_MAX = (1 << 63) - 1
INT_MAX = (1 << 31) - 1
FNV_OFFSET_BASIS_64 = 0xCBF29CE484222325
FNV_PRIME_64 = 1099511628211
KEY_PREFIX = "user"


def to_long(value: int) -> int:
    """Wrap a Python int to Java's signed 64-bit range (what a Java long would hold)."""
    value &= MASK64
    return value - (1 << 64) if value > LONG_MAX else value


def java_abs(value: int) -> int:
    """Math.abs(long): |x|, except Long.MIN_VALUE, which stays negative."""
    return value if value == LONG_MIN else abs(value)


def java_rem(a: int, b: int) -> int:
    """Java's `a % b` on longs: truncated division, remainder has the sign of `a`."""
    r = abs(a) % abs(b)
    return -r if a < 0 else r


def fnvhash64(value: int) -> int:
    """Utils.fnvhash64 with Java long semantics (see the module docstring)."""
    val = to_long(value)
    hashval = FNV_OFFSET_BASIS_64
    for _ in range(8):
        octet = val & 0xFF
        val >>= 8  # Python's >> on negative ints is arithmetic, like Java's >>
        hashval = ((hashval ^ octet) * FNV_PRIME_64) & MASK64
    return java_abs(to_long(hashval))


def build_key_name(keynum: int, zeropadding: int = 1, orderedinserts: bool = False) -> str:
    """CoreWorkload.buildKeyName: "user" + zero fill + Long.toString(hash or keynum)."""
    if not orderedinserts:
        keynum = fnvhash64(keynum)
    digits = str(to_long(keynum))
    return KEY_PREFIX + "0" * max(0, zeropadding - len(digits)) + digits


def string_hashcode(text: str) -> int:
    """java.lang.String.hashCode() (over UTF-16 code units, 32-bit wrap-around)."""
    h = 0
    data = text.encode("utf-16-be")
    for i in range(0, len(data), 2):
        h = (31 * h + ((data[i] << 8) | data[i + 1])) & 0xFFFFFFFF
    return h - (1 << 32) if h >= (1 << 31) else h


# -- numba kernels (same rules on machine integers) -----------------------------------

_NB_OFFSET = np.uint64(FNV_OFFSET_BASIS_64)
_NB_PRIME = np.uint64(FNV_PRIME_64)
_NB_FF = np.int64(0xFF)
_NB_LONG_MIN = np.int64(LONG_MIN)


@njit(cache=True, nogil=True)
def nb_java_abs(value: np.int64) -> np.int64:
    """Math.abs(long) on an int64 (MIN stays MIN: negating it wraps to itself)."""
    if value == _NB_LONG_MIN:
        return value
    return -value if value < 0 else value


@njit(cache=True, nogil=True)
def nb_java_rem(a: np.int64, b: np.int64) -> np.int64:
    """Java's truncating `%` on int64 (numba's `%` floors like Python's)."""
    r = a % b  # floored: sign of b
    if r != 0 and (a < 0) != (b < 0):
        r -= b
    return r


@njit(cache=True, nogil=True)
def nb_fnvhash64(value: np.int64) -> np.int64:
    """Utils.fnvhash64: FNV-1 over 8 octets with Java's arithmetic shift and Math.abs."""
    val = np.int64(value)
    hashval = _NB_OFFSET
    for _ in range(8):
        octet = np.uint64(val & _NB_FF)
        val = val >> np.int64(8)  # arithmetic shift on a signed int64, as Java's >>
        hashval = (hashval ^ octet) * _NB_PRIME  # uint64 multiply wraps mod 2^64
    return nb_java_abs(np.int64(hashval))


@njit(cache=True, nogil=True)
def nb_key_digits(keynum: np.int64, orderedinserts: bool) -> np.int64:
    """The number CoreWorkload.buildKeyName prints: the key number or its hash."""
    if orderedinserts:
        return keynum
    return nb_fnvhash64(keynum)


@njit(cache=True, nogil=True)
def nb_write_key(number: np.int64, zeropadding: np.int64, out: np.ndarray) -> np.int64:
    """Write "user" + zero fill + Long.toString(number) as ASCII into `out`; return length.

    `out` must hold at least 4 + max(zeropadding, 20) bytes. Digits are written from the
    end backwards (no temporary buffer: this runs once per generated key)."""
    negative = number < 0
    n = 1
    v = number // 10 if number >= 0 else -(number // -10)  # truncating division
    while v != 0:
        n += 1
        v = v // 10 if v >= 0 else -(v // -10)
    length = n + (1 if negative else 0)
    out[0] = 117  # u
    out[1] = 115  # s
    out[2] = 101  # e
    out[3] = 114  # r
    pos = 4
    for _ in range(zeropadding - length):
        out[pos] = 48
        pos += 1
    if negative:
        out[pos] = 45  # '-'
        pos += 1
    end = pos + n
    v = number
    for i in range(end - 1, pos - 1, -1):
        q = v // 10 if v >= 0 else -(v // -10)
        d = v - q * 10  # in -9..9, sign of v
        out[i] = 48 + (d if d >= 0 else -d)
        v = q
    return end


@njit(cache=True, nogil=True)
def nb_string_hashcode(data: np.ndarray, length: np.int64) -> np.int64:
    """String.hashCode() of an ASCII byte string (ASCII chars are single UTF-16 units)."""
    h = np.int32(0)
    for i in range(length):
        h = np.int32(np.int32(31) * h + np.int32(data[i]))
    return np.int64(h)
