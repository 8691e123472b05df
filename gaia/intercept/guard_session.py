"""Client sessions that outlive a checkpoint: what a recovered backup must re-open.

Why: a checkpoint holds the server's data, not its connections. A client connected to
the leader before the checkpoint keeps sending on the same connection afterwards, so the
log suffix a recovered backup replays holds inputs of connections it never saw opened.
For every connection open at the checkpoint the replayer therefore records
  - its *session prefix*: the leading input that set up the session without touching
    data (MariaDB's login packet; with the passwordless bench user it is valid on any
    server). Redis, memcached and the MongoDB-wire servers have none;
  - its *pending* input: the bytes after the last complete request. A log entry ends
    where a leader's read ended, not where a request does (MariaDB and SecantusDB read
    a header, then the body, as two inputs), so at a checkpoint the server may hold half
    a request in its buffer — which the snapshot does not keep;
and a recovered replayer opens one connection per session and sends it the prefix and
the pending bytes before the suffix. Both come from each protocol's framing (`Framing`);
a server without one is assumed to read whole requests (the generic case).

Not covered (reported, not hidden): session state changed by later inputs (Redis SELECT
or MULTI across a checkpoint, MariaDB USE / SET / an open transaction, a server-side
cursor): a recovered replica re-opens the session as it was at login.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

MAX_PREFIX = 1 << 16  # a login packet is far smaller; a rule that never decides stops here


@dataclass(frozen=True)
class Framing:
    """login(first bytes) -> length of the session prefix (None: not known yet);
    complete(bytes) -> how many leading bytes form complete requests (a protocol error
    counts as complete: the server answers it with an error or drops the connection)."""

    login: Callable[[bytes], int | None]
    complete: Callable[[bytes], int]


@dataclass(frozen=True)
class Session:
    """A connection open at a checkpoint: its id in the log, its session prefix (maybe
    incomplete, when the checkpoint fell inside the login), its pending partial request,
    and how many leading bytes of `pending` are also the end of `prefix`."""

    conn_id: int
    prefix: bytes = b""
    pending: bytes = b""
    overlap: int = 0

    @property
    def replay(self) -> bytes:
        """What a re-opened connection is sent before the log suffix."""
        return self.prefix + self.pending[self.overlap :]

    def to_json(self) -> dict[str, object]:
        return {"conn_id": self.conn_id, "prefix": self.prefix.hex(),
                "pending": self.pending.hex(), "overlap": self.overlap}

    @classmethod
    def from_json(cls, data: dict[str, object]) -> Session:
        return cls(int(data["conn_id"]), bytes.fromhex(str(data["prefix"])),
                   bytes.fromhex(str(data.get("pending", ""))), int(data.get("overlap", 0)))


def session_of(conn_id: int, prefix: bytes, pending: bytes, sent: int) -> Session:
    """The Session of a connection that was sent `sent` bytes in all."""
    return Session(conn_id, prefix, pending, max(0, len(prefix) + len(pending) - sent))


# -- framings ---------------------------------------------------------------------------
def _length_prefixed(buf: bytes, header: int, size_of: Callable[[bytes], int]) -> int:
    pos = 0
    while len(buf) - pos >= header:
        size = size_of(buf[pos : pos + header])
        if size < header:
            return len(buf)  # not a request header: the server drops the connection
        if len(buf) - pos < size:
            break
        pos += size
    return pos


def mysql_complete(buf: bytes) -> int:
    """MySQL client packets: 3-byte little-endian body length, sequence byte, body."""
    return _length_prefixed(buf, 4, lambda h: 4 + int.from_bytes(h[:3], "little"))


def mysql_first_packet(data: bytes) -> int | None:
    """A MySQL client's first packet is its login (the handshake response)."""
    return None if len(data) < 4 else 4 + int.from_bytes(data[:3], "little")


def mongodb_complete(buf: bytes) -> int:
    """MongoDB wire messages: int32 little-endian total length (>= the 16-byte header)."""
    return _length_prefixed(buf, 16, lambda h: int.from_bytes(h[:4], "little"))


def _line(buf: bytes, pos: int, end: bytes = b"\r\n") -> int:
    """Index just after the next `end` from pos, -1 if none."""
    found = buf.find(end, pos)
    return -1 if found < 0 else found + len(end)


def _bulk_end(buf: bytes, pos: int) -> int:
    """End of the RESP bulk string at pos; -1 incomplete; -2 protocol error."""
    if pos >= len(buf):
        return -1
    if buf[pos] != ord("$"):
        return -2
    head = _line(buf, pos)
    if head < 0:
        return -1
    try:
        size = int(buf[pos + 1 : head - 2])
    except ValueError:
        return -2
    end = head + max(size, 0) + 2
    return end if end <= len(buf) else -1


def resp_complete(buf: bytes) -> int:
    """Redis requests: RESP arrays of bulk strings, or inline commands ending in \\n."""
    pos = 0
    while pos < len(buf):
        if buf[pos] != ord("*"):
            nxt = _line(buf, pos, b"\n")
            if nxt < 0:
                return pos
            pos = nxt
            continue
        head = _line(buf, pos)
        if head < 0:
            return pos
        try:
            count = int(buf[pos + 1 : head - 2])
        except ValueError:
            return len(buf)  # "Protocol error: invalid multibulk length": Redis closes
        end = head
        for _ in range(count):
            end = _bulk_end(buf, end)
            if end == -1:
                return pos
            if end == -2:
                return len(buf)
        pos = end
    return pos


_MEMCACHED_STORAGE = frozenset({b"set", b"add", b"replace", b"append", b"prepend", b"cas"})


def memcached_complete(buf: bytes) -> int:
    """memcached: text command lines (storage commands and meta-set `ms` carry a data
    block of the length they name, then \\r\\n) or binary packets (24-byte header with a
    big-endian body length at offset 8)."""
    pos = 0
    while pos < len(buf):
        if buf[pos] == 0x80:
            if len(buf) - pos < 24:
                return pos
            end = pos + 24 + int.from_bytes(buf[pos + 8 : pos + 12], "big")
        else:
            line_end = _line(buf, pos, b"\n")
            if line_end < 0:
                return pos
            end = line_end + _data_block(buf[pos:line_end].split())
        if end > len(buf):
            return pos
        pos = end
    return pos


def _data_block(words: list[bytes]) -> int:
    """Bytes of data (with its \\r\\n) that follow a memcached command line."""
    field = (4 if words and words[0] in _MEMCACHED_STORAGE else
             2 if words and words[0] == b"ms" else None)
    if field is None or len(words) <= field or not words[field].isdigit():
        return 0
    return int(words[field]) + 2


def no_login(data: bytes) -> int:
    return 0


def whole_reads(buf: bytes) -> int:
    return len(buf)


FRAMINGS: dict[str, Framing] = {
    "redis": Framing(no_login, resp_complete),
    "memcached": Framing(no_login, memcached_complete),
    "mariadb": Framing(mysql_first_packet, mysql_complete),
    "mongodb": Framing(no_login, mongodb_complete),
}
GENERIC = Framing(no_login, whole_reads)


def framing(app: str) -> Framing:
    """The framing of `app` (GENERIC, "every read is whole requests", for others)."""
    return FRAMINGS.get(app, GENERIC)


# -- tracking one connection --------------------------------------------------------------
def prefix_complete(rule: Callable[[bytes], int | None], prefix: bytes) -> bool:
    need = rule(prefix)
    return len(prefix) >= MAX_PREFIX or (need is not None and len(prefix) >= need)


def extend_prefix(rule: Callable[[bytes], int | None], prefix: bytes, data: bytes) -> bytes:
    """`prefix` extended with the part of `data` that still belongs to the session
    prefix (unchanged once it is complete)."""
    if prefix_complete(rule, prefix):
        return prefix
    grown = prefix + data[: MAX_PREFIX - len(prefix)]
    need = rule(grown)
    return grown if need is None else grown[:need]


def extend_pending(complete: Callable[[bytes], int], pending: bytes, data: bytes) -> bytes:
    """The partial request left after `pending` + `data`."""
    buf = pending + data
    return buf[complete(buf) :]
