"""memcached's text protocol as far as the harness needs it: enumerate every item soundly,
fetch items with their flags and TTL, hash them, dump and load them.

Pure parts (parsing, hashing, the dump format) are apart from the socket so they can be
tested with hypothesis.
"""

from __future__ import annotations

import hashlib
import socket
import struct
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import NamedTuple
from urllib.parse import unquote_to_bytes

from gaia.errors import GaiaError

DUMP_MAGIC = b"GAIA-MEMCACHED-DUMP-1\n"
_MAX_EXPTIME = 2**31 - 1  # memcached keeps exptime in a signed 32-bit int
_HEADER = struct.Struct("<HIqI")  # key length, flags, ttl (-1 = none), value length
_BATCH = 100
# Relative expire times above 30 days are taken as absolute unix times by memcached.
_MAX_RELATIVE_TTL = 30 * 24 * 3600


class Item(NamedTuple):
    key: bytes
    flags: int
    ttl: int  # remaining seconds, -1 = never expires
    value: bytes


# -- pure -----------------------------------------------------------------------------
def parse_metadump_key(line: bytes) -> bytes:
    """The key of one `lru_crawler metadump` line (`key=<percent-encoded> exp=...`)."""
    first = line.split(b" ", 1)[0]
    if not first.startswith(b"key="):
        raise ValueError(f"not a metadump line: {line[:80]!r}")
    return unquote_to_bytes(first[4:])


def parse_value_header(line: bytes) -> tuple[int, int, int]:
    """`VA <size> f<flags> t<ttl>` -> (size, flags, ttl)."""
    parts = line.split()
    if not parts or parts[0] != b"VA":
        raise ValueError(f"unexpected meta-get reply {line[:80]!r}")
    size = int(parts[1])
    fields = {p[:1]: p[1:] for p in parts[2:]}
    return size, int(fields.get(b"f", b"0")), int(fields.get(b"t", b"-1"))


def digest_items(items: Iterable[Item]) -> str:
    """SHA-256 over (key, flags, value) sorted by key; TTLs are left out on purpose:
    replicas fed the same commands at slightly different times hold different
    remaining TTLs for the same data."""
    hasher = hashlib.sha256()
    for item in sorted(items, key=lambda i: i.key):
        hasher.update(struct.pack("<HIQ", len(item.key), item.flags, len(item.value)))
        hasher.update(item.key)
        hasher.update(item.value)
    return hasher.hexdigest()


def encode_dump(items: Iterable[Item]) -> bytes:
    parts = [DUMP_MAGIC]
    for item in items:
        parts.append(_HEADER.pack(len(item.key), item.flags, item.ttl, len(item.value)))
        parts.append(item.key)
        parts.append(item.value)
    return b"".join(parts)


def decode_dump(data: bytes) -> list[Item]:
    if not data.startswith(DUMP_MAGIC):
        raise GaiaError(
            "not a GAIA memcached snapshot (bad header)",
            "pass a file written by Memcached.snapshot()",
        )
    items, offset = [], len(DUMP_MAGIC)
    while offset < len(data):
        key_len, flags, ttl, value_len = _HEADER.unpack_from(data, offset)
        offset += _HEADER.size
        key = data[offset : offset + key_len]
        offset += key_len
        value = data[offset : offset + value_len]
        offset += value_len
        if len(key) != key_len or len(value) != value_len:
            raise GaiaError("memcached snapshot is truncated", "take the snapshot again")
        items.append(Item(key, flags, ttl, value))
    return items


def set_command(item: Item, now: float) -> bytes:
    """A `set` restoring `item` with its remaining TTL."""
    if item.ttl < 0:
        exptime = 0
    elif item.ttl <= _MAX_RELATIVE_TTL:
        exptime = max(item.ttl, 1)  # 0 would mean "never"
    else:  # absolute time; memcached's clock lags ours by up to a second, and an
        # exptime past 2^31-1 (YCSB's "never", Integer.MAX_VALUE) would wrap: clamp it
        exptime = min(int(now) + item.ttl, _MAX_EXPTIME)
    head = b"set %s %d %d %d\r\n" % (item.key, item.flags, exptime, len(item.value))
    return head + item.value + b"\r\n"


def batched(seq: Sequence, size: int = _BATCH) -> Iterator[Sequence]:
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


# -- on the wire ----------------------------------------------------------------------
class Wire:
    """One text-protocol connection (the harness's own, not a client's)."""

    def __init__(self, host: str, port: int, timeout: float = 30.0) -> None:
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.reader = self.sock.makefile("rb")

    def __enter__(self) -> Wire:
        return self

    def __exit__(self, *exc: object) -> None:
        self.reader.close()
        self.sock.close()

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> bytes:
        raw = self.reader.readline()
        if not raw:
            raise ConnectionError("memcached closed the connection")
        return raw.rstrip(b"\r\n")

    def exact(self, size: int) -> bytes:
        data = self.reader.read(size + 2)  # value + \r\n
        if len(data) != size + 2:
            raise ConnectionError("memcached closed the connection mid-value")
        return data[:size]

    def version(self) -> str:
        self.send(b"version\r\n")
        return self.line().decode()

    def curr_items(self) -> int:
        self.send(b"stats\r\n")
        count = -1
        while (line := self.line()) != b"END":
            parts = line.split()
            if parts[:2] == [b"STAT", b"curr_items"]:
                count = int(parts[2])
        return count

    def metadump_keys(self) -> set[bytes]:
        for _ in range(100):
            self.send(b"lru_crawler metadump all\r\n")
            first = self.line()
            if not first.startswith(b"BUSY"):
                break
            time.sleep(0.02)  # another crawl runs; wait for it
        else:
            raise GaiaError("memcached's LRU crawler stayed busy", "retry when idle")
        keys, line = set(), first
        while line != b"END":
            if line.startswith((b"ERROR", b"CLIENT_ERROR", b"SERVER_ERROR")):
                raise GaiaError(
                    f"memcached refused lru_crawler metadump: {line.decode(errors='replace')}",
                    "start memcached without `-o no_lru_crawler`",
                )
            keys.add(parse_metadump_key(line))
            line = self.line()
        return keys

    def fetch(self, keys: Sequence[bytes]) -> list[Item]:
        """Meta-get each key (value, flags, TTL); misses are left out."""
        items = []
        for batch in batched(keys):
            self.send(b"".join(b"mg %s f t v\r\n" % key for key in batch))
            for key in batch:
                line = self.line()
                if line == b"EN":
                    continue
                size, flags, ttl = parse_value_header(line)
                items.append(Item(key, flags, ttl, self.exact(size)))
        return items

    def all_items(self, attempts: int = 20) -> list[Item]:
        """Every live item, soundly: the enumerated live items must number exactly
        `curr_items`, which counts every linked item (live ones included), so equality
        proves none was missed. Expired or flushed items still counted are reaped with
        a crawl and the enumeration repeated. Sound only while no client writes."""
        for _ in range(attempts):
            items = self.fetch(sorted(self.metadump_keys()))
            if len(items) == self.curr_items():
                return items
            self.send(b"lru_crawler crawl all\r\n")
            self.line()
            time.sleep(0.05)
        raise GaiaError(
            "memcached's item count kept changing while it was enumerated",
            "stop clients writing to the server before taking a digest or snapshot",
        )

    def flush_all(self) -> None:
        self.send(b"flush_all\r\n")
        self._expect(b"OK")

    def load(self, items: Sequence[Item]) -> None:
        now = time.time()
        for batch in batched(items):
            self.send(b"".join(set_command(item, now) for item in batch))
            for _ in batch:
                self._expect(b"STORED")

    def _expect(self, reply: bytes) -> None:
        line = self.line()
        if line != reply:
            raise GaiaError(
                f"memcached answered {line.decode(errors='replace')!r} instead of {reply.decode()}",
                "check the server log",
            )
