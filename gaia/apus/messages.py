"""Slow-path messages (view change, log transfer, catch-up, snapshots, recovery).

They travel through the control mailbox of the sender's block in the receiver's region
(layout.py), as sealed blobs (wire.py) keyed by a per-sender sequence number. The
mailbox is lossy by design (a slot can be overwritten before it is read, and the
simulator drops and reorders writes): every exchange here is retried on ticks and every
handler tolerates duplicates and stale messages.

Each message is a small dataclass; `encode`/`decode` map it to (kind, payload bytes).
The view travels in the blob header, not in the payload.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field, fields
from typing import ClassVar

import numpy as np

_NAMES: dict[type, tuple[str, ...]] = {}  # the fixed fields of each message class


@dataclass
class Message:
    kind: ClassVar[int] = 0
    _fmt: ClassVar[str] = ""  # struct format of the fixed fields after `view`
    view: int

    def encode(self) -> bytes:
        values = [getattr(self, name) for name in self._ints()]
        head = struct.pack("<" + self._fmt, *values) if self._fmt else b""
        return head + self.tail()

    @classmethod
    def _ints(cls) -> tuple[str, ...]:
        names = _NAMES.get(cls)
        if names is None:
            names = _NAMES[cls] = tuple(f.name for f in fields(cls)[1:])[: len(cls._fmt)]
        return names

    def tail(self) -> bytes:
        return b""

    @classmethod
    def decode(cls, view: int, payload: bytes) -> Message:
        size = struct.calcsize("<" + cls._fmt)
        values = struct.unpack_from("<" + cls._fmt, payload, 0) if cls._fmt else ()
        msg = cls(view, *values)
        msg.set_tail(payload[size:])
        return msg

    def set_tail(self, tail: bytes) -> None:
        pass


@dataclass
class ViewReq(Message):
    """Candidate -> voters: promise me `view`; tell me your log state."""

    kind: ClassVar[int] = 1
    _fmt: ClassVar[str] = "qqq"
    last_view: int = 0
    last_index: int = 0
    commit: int = 0


@dataclass
class PreVote(Message):
    """Candidate-to-be -> voters: would you promise `view`, i.e. do you miss the leader too?
    (Raft's pre-vote: nothing changes at the receiver.)"""

    kind: ClassVar[int] = 11
    _fmt: ClassVar[str] = ""


@dataclass
class PreVoteReply(Message):
    kind: ClassVar[int] = 12
    _fmt: ClassVar[str] = "q"
    granted: int = 0


@dataclass
class Promise(Message):
    """Voter -> candidate (granted=0: refused; the view then is the voter's own)."""

    kind: ClassVar[int] = 2
    _fmt: ClassVar[str] = "qqqq"
    granted: int = 0
    last_view: int = 0
    last_index: int = 0
    commit: int = 0


@dataclass
class Fetch(Message):
    """New leader -> the most up-to-date voter: send your entries from `start`."""

    kind: ClassVar[int] = 3
    _fmt: ClassVar[str] = "q"
    start: int = 0


@dataclass
class Entries(Message):
    """Log records from `start` (raw wire records, back to back). done=1: the sender's
    log ends at `last`. need_snapshot=1: `start` was compacted, pull a snapshot."""

    kind: ClassVar[int] = 4
    _fmt: ClassVar[str] = "qqqqq"
    start: int = 0
    last: int = 0
    done: int = 0
    need_snapshot: int = 0
    commit: int = 0  # the sender's commit index: what we copy up to it is committed
    records: bytes = b""

    def tail(self) -> bytes:
        return self.records

    def set_tail(self, tail: bytes) -> None:
        self.records = bytes(tail)


@dataclass
class Join(Message):
    """Backup -> leader of `view`: sync me (my committed prefix and log end)."""

    kind: ClassVar[int] = 5
    _fmt: ClassVar[str] = "qqqq"
    commit: int = 0
    last_index: int = 0
    last_view: int = 0
    incarnation: int = 0


@dataclass
class Sync(Message):
    """Leader -> backup: my log's views after `base` (runs of (first index, view)),
    so you can keep your longest matching prefix; then my entries follow in the ring."""

    kind: ClassVar[int] = 6
    _fmt: ClassVar[str] = "qqq"
    base: int = 0
    last: int = 0
    commit: int = 0
    runs: list[tuple[int, int]] = field(default_factory=list)

    def tail(self) -> bytes:
        return np.asarray(self.runs, dtype=np.int64).reshape(-1).tobytes()

    def set_tail(self, tail: bytes) -> None:
        arr = np.frombuffer(tail[: len(tail) // 16 * 16], dtype=np.int64).reshape(-1, 2)
        self.runs = [(int(a), int(b)) for a, b in arr]

    def view_at(self, index: int) -> int:
        """The leader's view of entry `index` (base < index <= last)."""
        found = -1
        for start, view in self.runs:
            if start > index:
                break
            found = view
        return found


@dataclass
class SyncOk(Message):
    """Backup -> leader: my log equals yours up to `match`; stream from match+1."""

    kind: ClassVar[int] = 7
    _fmt: ClassVar[str] = "qq"
    match: int = 0
    incarnation: int = 0


@dataclass
class SnapOffer(Message):
    """Holder -> a replica that needs compacted entries: pull my snapshot."""

    kind: ClassVar[int] = 8
    _fmt: ClassVar[str] = "qqq"
    index: int = 0
    snap_view: int = 0
    size: int = 0


@dataclass
class SnapPull(Message):
    kind: ClassVar[int] = 9
    _fmt: ClassVar[str] = "qq"
    index: int = 0
    offset: int = 0


@dataclass
class SnapChunk(Message):
    """Bytes [offset, offset+len) of the encoded snapshot (storage.encode_snapshot)."""

    kind: ClassVar[int] = 10
    _fmt: ClassVar[str] = "qqq"
    index: int = 0
    offset: int = 0
    total: int = 0
    data: bytes = b""

    def tail(self) -> bytes:
        return self.data

    def set_tail(self, tail: bytes) -> None:
        self.data = bytes(tail)


@dataclass
class Config:
    """Membership: id -> (voter, executing, priority). Carried by K_CONFIG entries."""

    members: dict[int, tuple[bool, bool, int]] = field(default_factory=dict)

    def voters(self) -> list[int]:
        return sorted(m for m, (voter, _, _) in self.members.items() if voter)

    def learners(self) -> list[int]:
        return sorted(m for m, (voter, _, _) in self.members.items() if not voter)

    def is_voter(self, replica: int) -> bool:
        return replica in self.members and self.members[replica][0]

    def executing(self, replica: int) -> bool:
        return replica in self.members and self.members[replica][1]

    def priority(self, replica: int) -> int:
        return self.members[replica][2] if replica in self.members else 0

    def to_dict(self) -> dict[str, list]:
        return {str(m): [bool(v), bool(e), int(p)] for m, (v, e, p) in sorted(self.members.items())}

    @classmethod
    def from_dict(cls, data: dict) -> Config:
        return cls({int(m): (bool(v), bool(e), int(p)) for m, (v, e, p) in data.items()})

    def encode(self) -> bytes:
        return json.dumps(self.to_dict(), sort_keys=True).encode()

    @classmethod
    def decode(cls, payload: bytes) -> Config:
        return cls.from_dict(json.loads(payload))

    def majority(self) -> int:
        return len(self.voters()) // 2 + 1


KINDS: dict[int, type[Message]] = {
    cls.kind: cls
    for cls in (
        ViewReq,
        Promise,
        Fetch,
        Entries,
        Join,
        Sync,
        SyncOk,
        SnapOffer,
        SnapPull,
        SnapChunk,
        PreVote,
        PreVoteReply,
    )
}


def decode(kind: int, view: int, payload: bytes) -> Message | None:
    cls = KINDS.get(kind)
    if cls is None:
        return None
    try:
        return cls.decode(view, payload)
    except (struct.error, ValueError):
        return None
