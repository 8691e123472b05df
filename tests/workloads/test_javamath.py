"""Key names and hashes against Java's arithmetic, transcribed independently.

The Java semantics these tests transcribe (site.ycsb.Utils.fnvhash64 and
CoreWorkload.buildKeyName):
  * fnvhash64 takes the key number's 8 octets from the lowest up (`val & 0xff`, then
    `val >> 8`, an arithmetic shift): over 8 rounds that is exactly the little-endian
    bytes of the 64-bit two's complement value, which is how the reference below reads
    them (`int.to_bytes`), instead of shifting;
  * each round xors the octet in and multiplies by the FNV prime in a Java long, i.e.
    modulo 2^64 (reference: Python ints masked to 64 bits);
  * the result is read as a signed long (reference: ctypes.c_int64) and `Math.abs` is
    applied, which leaves Long.MIN_VALUE negative;
  * the key is "user", then `zeropadding - len(Long.toString(n))` zeros (none if that is
    negative; the '-' sign counts as a character), then Long.toString(n).
Published YCSB traces start with user6284781860667377211, user8517097267634966620,
user1820151046732198393 for key numbers 0, 1, 2 (hashed inserts, zeropadding=1).
"""

from __future__ import annotations

import ctypes

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from workloads.javamath import (
    LONG_MAX,
    LONG_MIN,
    build_key_name,
    fnvhash64,
    java_rem,
    nb_fnvhash64,
    nb_java_abs,
    nb_java_rem,
    nb_key_digits,
    nb_string_hashcode,
    nb_write_key,
    string_hashcode,
)

FNV_OFFSET = 0xCBF29CE484222325
FNV_PRIME = 0x100000001B3


def reference_fnv(keynum: int) -> int:
    octets = (keynum & (2**64 - 1)).to_bytes(8, "little")
    h = FNV_OFFSET
    for octet in octets:
        h = ((h ^ octet) * FNV_PRIME) % 2**64
    signed = ctypes.c_int64(h).value
    return signed if signed == -(2**63) else abs(signed)


def reference_key(keynum: int, zeropadding: int, ordered: bool) -> str:
    number = keynum if ordered else reference_fnv(keynum)
    text = str(ctypes.c_int64(number).value)
    return "user" + "0" * (zeropadding - len(text)) + text


def kernel_key(keynum: int, zeropadding: int, ordered: bool) -> str:
    buf = np.zeros(64, dtype=np.uint8)
    n = nb_write_key(nb_key_digits(np.int64(keynum), ordered), zeropadding, buf)
    return buf[:n].tobytes().decode()


def test_first_keys_match_published_ycsb_traces():
    assert [build_key_name(k) for k in range(3)] == [
        "user6284781860667377211",
        "user8517097267634966620",
        "user1820151046732198393",
    ]


def test_zero_padding_as_in_the_javadoc():
    # CoreWorkload's javadoc: row 5 with zeropadding=8 is 'user00000005' (ordered inserts)
    assert build_key_name(5, 8, True) == "user00000005"
    assert build_key_name(5, 1, True) == "user5"
    # padding shorter than the digits adds nothing
    assert build_key_name(123456, 3, True) == "user123456"
    # the sign counts as a character and the zeros go before it, as Java's loop does
    assert build_key_name(LONG_MIN, 25, True) == "user00000-9223372036854775808"


def test_large_key_numbers_wrap_like_java_longs():
    for keynum in (2**31 - 1, 2**31, 2**32 + 17, 10**10, 2**62 + 3, LONG_MAX, LONG_MIN, -1):
        assert fnvhash64(keynum) == reference_fnv(keynum)
        for pad in (1, 20, 25):
            for ordered in (False, True):
                assert build_key_name(keynum, pad, ordered) == reference_key(keynum, pad, ordered)
                assert kernel_key(keynum, pad, ordered) == reference_key(keynum, pad, ordered)


def test_math_abs_keeps_long_min_negative():
    assert nb_java_abs(np.int64(LONG_MIN)) == LONG_MIN
    assert nb_java_abs(np.int64(-5)) == 5


@given(st.integers(min_value=LONG_MIN, max_value=LONG_MAX))
def test_fnvhash64_python_and_numba_agree_with_the_reference(keynum):
    assert fnvhash64(keynum) == reference_fnv(keynum)
    assert int(nb_fnvhash64(np.int64(keynum))) == reference_fnv(keynum)


@given(st.integers(min_value=LONG_MIN, max_value=LONG_MAX), st.integers(0, 30), st.booleans())
def test_key_names_agree_with_the_reference(keynum, pad, ordered):
    expected = reference_key(keynum, pad, ordered)
    assert build_key_name(keynum, pad, ordered) == expected
    assert kernel_key(keynum, pad, ordered) == expected


@given(
    st.integers(min_value=LONG_MIN, max_value=LONG_MAX),
    st.integers(min_value=1, max_value=LONG_MAX),
)
def test_remainder_truncates_toward_zero(a, b):
    expected = int(abs(a) % b) * (-1 if a < 0 else 1)  # Java: sign of the dividend
    assert java_rem(a, b) == expected
    assert int(nb_java_rem(np.int64(a), np.int64(b))) == expected


def test_string_hashcode_matches_java():
    # values of "".hashCode(), "a".hashCode(), "hello".hashCode() in Java
    assert string_hashcode("") == 0
    assert string_hashcode("a") == 97
    assert string_hashcode("hello") == 99162322
    key = "user6284781860667377211"
    data = np.frombuffer(key.encode(), dtype=np.uint8)
    # a long key overflows the 32-bit hash: both implementations wrap the same way
    assert int(nb_string_hashcode(data, len(data))) == string_hashcode(key)
    h = 0
    for ch in key:
        h = (31 * h + ord(ch)) % 2**32
    assert string_hashcode(key) == ctypes.c_int32(h).value
