"""The byte layout of an APUS replica's memory region (identical on every replica).

Why one layout for all: a writer writes at the same offset in a peer's region that the
peer reads in its own, so offsets are computed once from a `LayoutConfig` every replica
of a group shares. Why per-sender blocks: sender s writes only into block s of a peer's
region, so a deposed leader's late writes can never overwrite the new leader's.

Region = header (HEADER_BYTES) + max_members blocks. Block s (written only by replica s):
    heartbeat slot  leader -> backups: view, commit, counter, last index (+ canary)
    ack slot        backup -> leader: view, persisted index, counter (+ canary)
    reply slot      backup -> leader: the reply to a REQUEST entry (+ canary)
    doorbell        sequence number of the newest mailbox message s wrote here
    log ring        ring_slots fixed-size slots; entry i lives in slot i % ring_slots
    mailbox         mail_slots slow-path messages (view change, log transfer, snapshots)
Block `self` of one's own region is never written by anyone.

The numba code gets the offsets as an int64 array (`LayoutConfig.array()`, indices L_*).
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from functools import cached_property

import numpy as np

from gaia.errors import ConfigError, GaiaError

MAGIC = int.from_bytes(b"GAIAPUS1", "little")
LAYOUT_VERSION = 1
HEADER_BYTES = 4096
WAKE_OFFSET = 1024  # a word in the header page any sender bumps (then futex-wakes) so a
# sleeping poller wakes up at once; the low 32 bits are the futex word
ENTRY_HEADER_BYTES = 48  # index, view, length|kind, checksum, send view, commit
ENTRY_OVERHEAD = ENTRY_HEADER_BYTES + 8  # + the trailing canary
HB_BYTES = 64
ACK_BYTES = 64
DOORBELL_BYTES = 64
MAIL_HEADER_BYTES = 32  # seq, kind|length, view, checksum

# Header words (uint64 index into the region).
HW_MAGIC = 0
HW_VERSION = 1
HW_GROUP = 2  # two words: the 16-byte group id
HW_OWNER = 4
HW_MAX_MEMBERS = 5
HW_RING_SLOTS = 6
HW_SLOT_SIZE = 7

# Indices into the layout array handed to numba.
L_MAX_MEMBERS = 0
L_BLOCK_BASE = 1  # offset of block 0
L_BLOCK_SIZE = 2
L_HB = 3  # offsets inside a block
L_ACK = 4
L_REPLY = 5
L_DOORBELL = 6
L_RING = 7
L_MAIL = 8
L_RING_SLOTS = 9
L_SLOT_SIZE = 10
L_MAIL_SLOTS = 11
L_MAIL_SLOT_SIZE = 12
L_REPLY_SIZE = 13
L_MAX_PAYLOAD = 14
L_REGION_SIZE = 15
L_LEN = 16


def _align(value: int, to: int) -> int:
    return (value + to - 1) // to * to


def record_bytes(payload_len: int) -> int:
    """Bytes of one entry record holding `payload_len` payload bytes."""
    return ENTRY_OVERHEAD + _align(payload_len, 8)


@dataclass(frozen=True)
class LayoutConfig:
    """Sizes every replica of a group must agree on (stored in deployment.json)."""

    max_members: int = 8
    ring_slots: int = 128
    max_payload: int = 16384 + 256  # a full gaia ring event plus its batch header
    reply_size: int = 256
    mail_slots: int = 8
    mail_slot_size: int = 65536

    def __post_init__(self) -> None:
        if not 1 <= self.max_members <= 64:
            raise ConfigError(
                f"max_members {self.max_members} is outside 1..64",
                "use at most 64 members per group",
            )
        if self.ring_slots < 2 or self.mail_slots < 2:
            raise ConfigError(
                "ring_slots and mail_slots must be at least 2",
                "raise them in the layout configuration",
            )
        if self.max_payload < 8 or self.reply_size < 8:
            raise ConfigError(
                "max_payload and reply_size must be at least 8 bytes",
                "raise them in the layout configuration",
            )
        if self.mail_slot_size < 1024 or self.mail_slot_size % 64:
            raise ConfigError(
                f"mail_slot_size {self.mail_slot_size} must be a multiple of 64 and at least 1024",
                "pick e.g. 65536",
            )

    # -- sizes ------------------------------------------------------------------------
    @cached_property
    def slot_size(self) -> int:
        return _align(record_bytes(self.max_payload), 64)

    @cached_property
    def reply_slot_size(self) -> int:
        return _align(32 + self.reply_size + 8, 64)

    @cached_property
    def mail_payload(self) -> int:
        """Largest slow-path message body."""
        return self.mail_slot_size - MAIL_HEADER_BYTES - 8

    @cached_property
    def block_size(self) -> int:
        fixed = HB_BYTES + ACK_BYTES + self.reply_slot_size + DOORBELL_BYTES
        return _align(
            fixed + self.ring_slots * self.slot_size + self.mail_slots * self.mail_slot_size, 4096
        )

    @cached_property
    def region_size(self) -> int:
        return HEADER_BYTES + self.max_members * self.block_size

    # -- offsets ----------------------------------------------------------------------
    def block(self, sender: int) -> int:
        return HEADER_BYTES + sender * self.block_size

    def hb(self, sender: int) -> int:
        return self.block(sender)

    def ack(self, sender: int) -> int:
        return self.block(sender) + HB_BYTES

    def reply(self, sender: int) -> int:
        return self.ack(sender) + ACK_BYTES

    def doorbell(self, sender: int) -> int:
        return self.reply(sender) + self.reply_slot_size

    def ring_slot(self, sender: int, index: int) -> int:
        return self.doorbell(sender) + DOORBELL_BYTES + (index % self.ring_slots) * self.slot_size

    def mail_slot(self, sender: int, seq: int) -> int:
        base = self.doorbell(sender) + DOORBELL_BYTES + self.ring_slots * self.slot_size
        return base + (seq % self.mail_slots) * self.mail_slot_size

    def describe(self, offset: int) -> tuple[str, int, int]:
        """(what, sender, slot) of a region offset: 'hb', 'ack', 'reply', 'doorbell',
        'ring' (slot = index % ring_slots), 'mail' or 'header' (for tests and traces)."""
        if offset < HEADER_BYTES:
            return "header", -1, 0
        sender = (offset - HEADER_BYTES) // self.block_size
        rel = offset - self.block(sender)
        ring = self.doorbell(sender) + DOORBELL_BYTES - self.block(sender)
        mail = ring + self.ring_slots * self.slot_size
        if rel >= mail:
            return "mail", sender, (rel - mail) // self.mail_slot_size
        if rel >= ring:
            return "ring", sender, (rel - ring) // self.slot_size
        for name, start in (("doorbell", self.doorbell(sender)), ("reply", self.reply(sender)),
                            ("ack", self.ack(sender)), ("hb", self.hb(sender))):
            if rel >= start - self.block(sender):
                return name, sender, 0
        return "hb", sender, 0

    def array(self) -> np.ndarray:
        """The offsets as int64, for numba."""
        lay = np.zeros(L_LEN, dtype=np.int64)
        lay[L_MAX_MEMBERS] = self.max_members
        lay[L_BLOCK_BASE] = HEADER_BYTES
        lay[L_BLOCK_SIZE] = self.block_size
        lay[L_HB] = 0
        lay[L_ACK] = HB_BYTES
        lay[L_REPLY] = HB_BYTES + ACK_BYTES
        lay[L_DOORBELL] = HB_BYTES + ACK_BYTES + self.reply_slot_size
        lay[L_RING] = lay[L_DOORBELL] + DOORBELL_BYTES
        lay[L_MAIL] = lay[L_RING] + self.ring_slots * self.slot_size
        lay[L_RING_SLOTS] = self.ring_slots
        lay[L_SLOT_SIZE] = self.slot_size
        lay[L_MAIL_SLOTS] = self.mail_slots
        lay[L_MAIL_SLOT_SIZE] = self.mail_slot_size
        lay[L_REPLY_SIZE] = self.reply_size
        lay[L_MAX_PAYLOAD] = self.max_payload
        lay[L_REGION_SIZE] = self.region_size
        return lay

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, int]) -> LayoutConfig:
        return cls(**{k: int(v) for k, v in data.items() if k in cls.__dataclass_fields__})


def new_group_id() -> str:
    """A fresh group id: 32 hex digits (also usable in shared-memory segment names)."""
    return uuid.uuid4().hex


def group_bytes(group_id: str) -> bytes:
    """The 16 bytes stored in headers for a group id (hex ids verbatim, others hashed)."""
    try:
        raw = bytes.fromhex(group_id)
        if len(raw) == 16:
            return raw
    except ValueError:
        pass
    return uuid.uuid5(uuid.NAMESPACE_OID, group_id).bytes


def _header_words(cfg: LayoutConfig, group_id: str, owner: int) -> np.ndarray:
    words = np.zeros(8, dtype=np.uint64)
    words[HW_MAGIC] = MAGIC
    words[HW_VERSION] = LAYOUT_VERSION
    words[HW_GROUP : HW_GROUP + 2] = np.frombuffer(group_bytes(group_id), dtype=np.uint64)
    words[HW_OWNER] = owner
    words[HW_MAX_MEMBERS] = cfg.max_members
    words[HW_RING_SLOTS] = cfg.ring_slots
    words[HW_SLOT_SIZE] = cfg.slot_size
    return words


def init_region(region: np.ndarray, cfg: LayoutConfig, group_id: str, owner: int) -> None:
    """Write the header of replica `owner`'s region, refusing one of another group.

    A zeroed region is simply stamped. A region that already carries a header (kept
    across a restart) must belong to the same group and layout."""
    if region.size < cfg.region_size:
        raise ConfigError(
            f"region of {region.size} bytes is smaller than the layout's {cfg.region_size}",
            "create the transport with layout.region_size",
        )
    head = region[:64].view(np.uint64)
    expected = _header_words(cfg, group_id, owner)
    if int(head[HW_MAGIC]) == MAGIC:
        if not np.array_equal(head[HW_GROUP : HW_GROUP + 2], expected[HW_GROUP : HW_GROUP + 2]):
            raise GaiaError(
                f"the memory region of replica {owner} belongs to another APUS group",
                "start the replica with reset, or use the group id it was created with",
            )
        if not np.array_equal(head[HW_MAX_MEMBERS:], expected[HW_MAX_MEMBERS:]):
            raise GaiaError(
                f"the memory region of replica {owner} has another layout",
                "start every replica of a group with the same layout configuration",
            )
    head[:] = expected
