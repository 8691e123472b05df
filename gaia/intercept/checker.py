"""The output checker: did every replica's server answer every input the same way?

Each replica's shim snapshots, per connection and per input, the hash of what the server
wrote in answer (gaia_ring.h, "Output snapshots"). The checker lines replicas up at the
same (connection, log index) and reports every input whose answer differs, naming the
connection, the log index, the input's first bytes and — when the input is a command
known to answer differently on each replica (Redis TIME, MariaDB RAND(), ...) — which one.
Those are reported as expected divergences, never hidden.

Answers split differently between two snapshots (a large reply written in pieces) are not
divergences: the running hash over the whole stream agrees again at a later snapshot, and
every mismatch before such an agreement point is dropped as misaligned.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from gaia.intercept import ring_layout as L
from gaia.intercept.events import decode_batch
from gaia.intercept.feed import CommittedLog
from gaia.intercept.ring import Ring, Snapshot

REDIS_NONDETERMINISTIC = frozenset(
    (
        "RANDOMKEY",
        "TIME",
        "SRANDMEMBER",
        "SPOP",
        "KEYS",
        "SCAN",
        "SSCAN",
        "HSCAN",
        "ZSCAN",
        "SMEMBERS",
        "HRANDFIELD",
        "ZRANDMEMBER",
        "INFO",
        "CLIENT",
        "LASTSAVE",
        "OBJECT",
        "MEMORY",
        "SLOWLOG",
        "LATENCY",
        "HELLO",
    )
)
# Commands known to answer differently on replicas fed the same input (DESIGN.md facts).
# Redis is matched on parsed command names; the others on byte patterns.
KNOWN_NONDETERMINISTIC: dict[str, list[tuple[str, re.Pattern[bytes]]]] = {
    "mariadb": [
        (w, re.compile(rb"(?i)\b" + w.encode() + rb"\s*\("))
        for w in (
            "RAND",
            "UUID",
            "UUID_SHORT",
            "CONNECTION_ID",
            "CURRENT_TIMESTAMP",
            "NOW",
            "SYSDATE",
            "UNIX_TIMESTAMP",
            "CURTIME",
            "CURDATE",
        )
    ],
    "memcached": [
        ("stats", re.compile(rb"(?:^|\r\n)stats(?:\r\n|\s)")),
        # metadump's order follows memcached's time-driven LRU maintenance.
        ("lru_crawler metadump", re.compile(rb"(?:^|\r\n)lru_crawler metadump")),
    ],
    "mongodb": [
        (w, re.compile(re.escape(w.encode()) + rb"\x00"))
        for w in ("hello", "isMaster", "ismaster", "serverStatus", "hostInfo")
    ],
}
_RESP_LEN = re.compile(rb"[*$](-?\d+)\r\n")


def redis_commands(data: bytes) -> list[str]:
    """Command names in a chunk of Redis input (RESP arrays or inline commands); stops at
    the first thing it cannot parse (a partial read, garbage)."""
    names, pos = [], 0
    while pos < len(data):
        if data[pos : pos + 1] != b"*":
            end = data.find(b"\n", pos)
            line = data[pos : end if end >= 0 else len(data)].split()
            if line:
                names.append(line[0].decode("latin-1").upper())
            if end < 0:
                break
            pos = end + 1
            continue
        header = _RESP_LEN.match(data, pos)
        if header is None:
            break
        pos = header.end()
        for arg in range(int(header.group(1))):
            bulk = _RESP_LEN.match(data, pos)
            if bulk is None:
                return names
            start, pos = bulk.end(), bulk.end() + int(bulk.group(1)) + 2
            if arg == 0:
                names.append(data[start : pos - 2].decode("latin-1").upper())
    return names


def fnv1a64(data: bytes, h: int = L.HASH_OFFSET) -> int:
    """The shim's output hash (FNV-1a 64, byte by byte), for tests and offline checks."""
    for byte in data:
        h = ((h ^ byte) * L.HASH_PRIME) & 0xFFFFFFFFFFFFFFFF
    return h


def known_command(app: str, data: bytes) -> str | None:
    """The known non-deterministic command in `data` (None if none is recognised)."""
    if app in ("redis", ""):
        for name in redis_commands(data):
            if name in REDIS_NONDETERMINISTIC:
                return name
    apps = [app] if app in KNOWN_NONDETERMINISTIC else list(KNOWN_NONDETERMINISTIC)
    for name in apps:
        for word, pattern in KNOWN_NONDETERMINISTIC[name]:
            if pattern.search(data):
                return word
    return None


@dataclass(frozen=True)
class Divergence:
    conn_id: int
    log_index: int
    at_close: bool
    # replica -> (bytes written in answer to this input, their hash)
    answers: dict[str, tuple[int, int]]
    input_preview: bytes = b""
    known: str | None = None

    def describe(self) -> str:
        answers = ", ".join(f"{r}: {n} B #{h:016x}" for r, (n, h) in self.answers.items())
        what = f"known non-deterministic {self.known}" if self.known else "UNEXPECTED"
        return (
            f"conn {self.conn_id:#x} log index {self.log_index}"
            f"{' (at close)' if self.at_close else ''}: {what}; input "
            f"{self.input_preview[:60]!r}; {answers}"
        )


@dataclass
class CheckReport:
    compared: int = 0  # (connection, input) pairs present on the reference and another
    divergences: list[Divergence] = field(default_factory=list)
    lost: dict[str, int] = field(default_factory=dict)  # snapshots overwritten before read

    @property
    def unexpected(self) -> list[Divergence]:
        return [d for d in self.divergences if d.known is None]

    @property
    def expected(self) -> list[Divergence]:
        return [d for d in self.divergences if d.known is not None]

    def summary(self) -> str:
        lost = sum(self.lost.values())
        head = (
            f"{self.compared} answers compared, {len(self.unexpected)} unexpected and "
            f"{len(self.expected)} known non-deterministic divergences"
            f"{f', {lost} snapshots lost' if lost else ''}"
        )
        return "\n".join([head, *(d.describe() for d in self.divergences)])


def _covers(table: Mapping[tuple[int, int], Snapshot],
            reference: Mapping[tuple[int, int], Snapshot]) -> bool:
    """`table` holds every reference snapshot from its own first log index on (a replica
    that joined late from a checkpoint never answered the inputs before it)."""
    first = min((index for _, index in table), default=0)
    return all(key in table for key in reference if key[1] >= first)


class OutputChecker:
    """Collects snapshots per replica and compares them with the first replica added
    (normally the leader). `log` lets it quote the diverging input."""

    def __init__(self, app: str = "", log: CommittedLog | None = None) -> None:
        self.app = app
        self.log = log
        self.replicas: dict[str, dict[tuple[int, int], Snapshot]] = {}
        self._read_from: dict[str, int] = {}
        self.lost: dict[str, int] = defaultdict(int)

    def add(self, replica: str, snapshots: Iterable[Snapshot], lost: int = 0) -> None:
        table = self.replicas.setdefault(replica, {})
        for snap in snapshots:
            table[(snap.conn_id, snap.log_index)] = snap
        self.lost[replica] += lost

    def add_ring(self, replica: str, ring: Ring) -> None:
        """Read the snapshots the replica's shim wrote since the last call."""
        records, nxt, lost = ring.snapshots(self._read_from.get(replica, 0))
        self._read_from[replica] = nxt
        self.add(replica, records, lost)

    def add_rings_settled(
        self, rings: Mapping[str, Ring], timeout: float = 10.0, quiet: float = 0.2
    ) -> None:
        """Read every ring (the reference first) until each replica holds a snapshot for
        every (connection, input) the reference holds and a read `quiet` seconds later
        brings nothing new, or `timeout` passes. Why: a backup's shim snapshots an answer
        only when the next input or the close arrives, after the replayer handed the
        input over, so an answer applied a moment ago may not be in its ring yet."""
        deadline = time.monotonic() + timeout
        while True:
            before = sum(map(len, self.replicas.values()))
            for name, ring in rings.items():
                self.add_ring(name, ring)
            grew = sum(map(len, self.replicas.values())) != before
            reference, *others = (self.replicas[name] for name in rings)
            covered = all(_covers(other, reference) for other in others)
            if (covered and not grew) or time.monotonic() >= deadline:
                return
            time.sleep(quiet)

    def check(self) -> CheckReport:
        report = CheckReport(lost=dict(self.lost))
        names = list(self.replicas)
        if len(names) < 2:
            return report
        reference = self.replicas[names[0]]
        for other in names[1:]:
            self._compare(names[0], reference, other, self.replicas[other], report)
        return report

    def _compare(
        self,
        ref_name: str,
        ref: dict[tuple[int, int], Snapshot],
        name: str,
        other: dict[tuple[int, int], Snapshot],
        report: CheckReport,
    ) -> None:
        by_conn: dict[int, list[int]] = defaultdict(list)
        for key in sorted(ref.keys() & other.keys()):
            by_conn[key[0]].append(key[1])
        for conn_id, indices in by_conn.items():
            pending: list[Divergence] = []
            for index in indices:
                a, b = ref[(conn_id, index)], other[(conn_id, index)]
                report.compared += 1
                if (a.out_bytes, a.out_hash) == (b.out_bytes, b.out_hash):
                    pending.clear()  # whole streams agree here: earlier misses were splits
                elif (a.seg_bytes, a.seg_hash) != (b.seg_bytes, b.seg_hash):
                    pending.append(self._divergence(conn_id, index, a, b, ref_name, name))
            report.divergences.extend(pending)

    def _divergence(
        self, conn_id: int, index: int, a: Snapshot, b: Snapshot, ref_name: str, name: str
    ) -> Divergence:
        data = self.input_of(conn_id, index)
        return Divergence(
            conn_id,
            index,
            a.at_close and b.at_close,
            {ref_name: (a.seg_bytes, a.seg_hash), name: (b.seg_bytes, b.seg_hash)},
            data[:200],
            known_command(self.app, data),
        )

    def input_of(self, conn_id: int, index: int) -> bytes:
        """The bytes connection `conn_id` read at log index `index` (b"" without a log)."""
        if self.log is None or index > self.log.commit_index():
            return b""
        return b"".join(
            ev.payload
            for ev in decode_batch(self.log.entry(index))
            if ev.conn_id == conn_id and ev.kind == L.EV_DATA
        )
