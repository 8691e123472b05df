"""Every constant and byte offset of gaia_ring.h (version 2), for the Python/numba side.

Why a mirror: numba code addresses the shared segment through typed numpy views, so it
needs plain integer offsets. tests/intercept/test_ring_layout.py compiles the header and
checks each value here against the C compiler's offsetof/sizeof, so the two cannot drift.
Offsets are in bytes; `*_U64` / `*_U32` helpers divide them for typed views.
"""

from __future__ import annotations

RING_MAGIC = 0x474E495241494147
RING_VERSION = 2
RING_HEADER_SIZE = 4096
RING_SLOT_HEADER_SIZE = 64
RING_DEFAULT_SLOTS = 1024
RING_DEFAULT_SLOT_SIZE = 16384
RING_DEAD_NS = 2_000_000_000
RING_DEFAULT_CONNS = 4096
RING_DEFAULT_SNAPS = 65536
CONN_SIZE = 128
SNAP_SIZE = 64
HASH_OFFSET = 0xCBF29CE484222325
HASH_PRIME = 0x100000001B3

EV_OPEN = 1
EV_DATA = 2
EV_CLOSE = 3
EV_RAW = 4

EV_NOWAIT = 1
EV_MORE = 2

ST_EMPTY = 0
ST_PENDING = 1
ST_COMMITTED = 2
ST_FAILED = 3
ST_ABANDONED = 4

REPLICA_STARTING = 0
REPLICA_LEADER = 1
REPLICA_BACKUP = 2
REPLICA_DOWN = 3

CONN_FREE = 0
CONN_OPEN = 1
CONN_CLOSED = 2
CONN_CLAIMING = 3

CONN_INPUT_SEEN = 1
CONN_CLOSE_SENT = 2
CONN_TRUSTED = 4

# struct gaia_ring_header
H_MAGIC = 0
H_VERSION = 8
H_SLOT_COUNT = 12
H_SLOT_SIZE = 16
H_MAX_PAYLOAD = 20
H_GROUP_ID = 24
H_REPLICA_ID = 40
H_CONN_GENERATION = 44
H_CONN_COUNT = 48
H_SNAP_COUNT = 52
H_TAIL = 64
H_HEAD = 128
H_CONSUMER_FUTEX = 192
H_CONSUMER_SLEEPING = 196
H_COMMIT_FUTEX = 256
H_COMMIT_WAITERS = 260
H_REPLICA_STATE = 320
H_REPLICA_HEARTBEAT_NS = 328
H_VIEW = 336
H_COMMIT_INDEX = 344
H_CONN_TABLE_OFFSET = 352
H_SNAP_LOG_OFFSET = 360
H_SEGMENT_SIZE = 368
H_DEAD_NS = 376
H_PROGRESS_FUTEX = 384
H_PROGRESS_WAITERS = 388
H_SNAP_TAIL = 448
HEADER_STRUCT_SIZE = 512

# struct gaia_ring_slot
S_SEQ = 0
S_KIND = 8
S_FLAGS = 12
S_LENGTH = 16
S_STATUS = 20
S_CONN_ID = 24
S_LOG_INDEX = 32
S_PRODUCER = 40
S_PAYLOAD = 64

# struct gaia_conn
C_STATE = 0
C_PEER_PORT = 4
C_CONN_ID = 8
C_LOG_CONN_ID = 16
C_IN_BYTES = 24
C_PROCESSED_BYTES = 32
C_OUT_BYTES = 40
C_OUT_HASH = 48
C_GREETING_BYTES = 56
C_EV_INDEX = 64
C_EV_START = 72
C_LAST_INPUT = 80
C_FLAGS = 88
C_OWNER_PID = 92
C_OPEN_INDEX = 96
C_SEG_HASH = 104
C_SEG_BYTES = 112

# struct gaia_snap
P_SEQ = 0
P_LOG_CONN_ID = 8
P_LOG_INDEX = 16
P_OUT_BYTES = 24
P_OUT_HASH = 32
P_AT_CLOSE = 40
P_SEG_HASH = 48
P_SEG_BYTES = 56

# name in gaia_ring.h -> value here; the layout test walks this table.
C_DEFINES = {
    "GAIA_RING_MAGIC": RING_MAGIC,
    "GAIA_RING_VERSION": RING_VERSION,
    "GAIA_RING_HEADER_SIZE": RING_HEADER_SIZE,
    "GAIA_RING_SLOT_HEADER_SIZE": RING_SLOT_HEADER_SIZE,
    "GAIA_RING_DEFAULT_SLOTS": RING_DEFAULT_SLOTS,
    "GAIA_RING_DEFAULT_SLOT_SIZE": RING_DEFAULT_SLOT_SIZE,
    "GAIA_RING_DEAD_NS": RING_DEAD_NS,
    "GAIA_RING_DEFAULT_CONNS": RING_DEFAULT_CONNS,
    "GAIA_RING_DEFAULT_SNAPS": RING_DEFAULT_SNAPS,
    "GAIA_CONN_SIZE": CONN_SIZE,
    "GAIA_SNAP_SIZE": SNAP_SIZE,
    "GAIA_HASH_OFFSET": HASH_OFFSET,
    "GAIA_HASH_PRIME": HASH_PRIME,
    "GAIA_EV_OPEN": EV_OPEN,
    "GAIA_EV_DATA": EV_DATA,
    "GAIA_EV_CLOSE": EV_CLOSE,
    "GAIA_EV_RAW": EV_RAW,
    "GAIA_EV_NOWAIT": EV_NOWAIT,
    "GAIA_EV_MORE": EV_MORE,
    "GAIA_ST_EMPTY": ST_EMPTY,
    "GAIA_ST_PENDING": ST_PENDING,
    "GAIA_ST_COMMITTED": ST_COMMITTED,
    "GAIA_ST_FAILED": ST_FAILED,
    "GAIA_ST_ABANDONED": ST_ABANDONED,
    "GAIA_REPLICA_STARTING": REPLICA_STARTING,
    "GAIA_REPLICA_LEADER": REPLICA_LEADER,
    "GAIA_REPLICA_BACKUP": REPLICA_BACKUP,
    "GAIA_REPLICA_DOWN": REPLICA_DOWN,
    "GAIA_CONN_FREE": CONN_FREE,
    "GAIA_CONN_OPEN": CONN_OPEN,
    "GAIA_CONN_CLOSED": CONN_CLOSED,
    "GAIA_CONN_CLAIMING": CONN_CLAIMING,
    "GAIA_CONN_INPUT_SEEN": CONN_INPUT_SEEN,
    "GAIA_CONN_CLOSE_SENT": CONN_CLOSE_SENT,
    "GAIA_CONN_TRUSTED": CONN_TRUSTED,
}

# (struct, field) -> offset here; sizes by struct name.
C_OFFSETS = {
    ("gaia_ring_header", "magic"): H_MAGIC,
    ("gaia_ring_header", "version"): H_VERSION,
    ("gaia_ring_header", "slot_count"): H_SLOT_COUNT,
    ("gaia_ring_header", "slot_size"): H_SLOT_SIZE,
    ("gaia_ring_header", "max_payload"): H_MAX_PAYLOAD,
    ("gaia_ring_header", "group_id"): H_GROUP_ID,
    ("gaia_ring_header", "replica_id"): H_REPLICA_ID,
    ("gaia_ring_header", "conn_generation"): H_CONN_GENERATION,
    ("gaia_ring_header", "conn_count"): H_CONN_COUNT,
    ("gaia_ring_header", "snap_count"): H_SNAP_COUNT,
    ("gaia_ring_header", "tail"): H_TAIL,
    ("gaia_ring_header", "head"): H_HEAD,
    ("gaia_ring_header", "consumer_futex"): H_CONSUMER_FUTEX,
    ("gaia_ring_header", "consumer_sleeping"): H_CONSUMER_SLEEPING,
    ("gaia_ring_header", "commit_futex"): H_COMMIT_FUTEX,
    ("gaia_ring_header", "commit_waiters"): H_COMMIT_WAITERS,
    ("gaia_ring_header", "replica_state"): H_REPLICA_STATE,
    ("gaia_ring_header", "replica_heartbeat_ns"): H_REPLICA_HEARTBEAT_NS,
    ("gaia_ring_header", "view"): H_VIEW,
    ("gaia_ring_header", "commit_index"): H_COMMIT_INDEX,
    ("gaia_ring_header", "conn_table_offset"): H_CONN_TABLE_OFFSET,
    ("gaia_ring_header", "snap_log_offset"): H_SNAP_LOG_OFFSET,
    ("gaia_ring_header", "segment_size"): H_SEGMENT_SIZE,
    ("gaia_ring_header", "dead_ns"): H_DEAD_NS,
    ("gaia_ring_header", "progress_futex"): H_PROGRESS_FUTEX,
    ("gaia_ring_header", "progress_waiters"): H_PROGRESS_WAITERS,
    ("gaia_ring_header", "snap_tail"): H_SNAP_TAIL,
    ("gaia_ring_slot", "seq"): S_SEQ,
    ("gaia_ring_slot", "kind"): S_KIND,
    ("gaia_ring_slot", "flags"): S_FLAGS,
    ("gaia_ring_slot", "length"): S_LENGTH,
    ("gaia_ring_slot", "status"): S_STATUS,
    ("gaia_ring_slot", "conn_id"): S_CONN_ID,
    ("gaia_ring_slot", "log_index"): S_LOG_INDEX,
    ("gaia_ring_slot", "producer"): S_PRODUCER,
    ("gaia_conn", "state"): C_STATE,
    ("gaia_conn", "peer_port"): C_PEER_PORT,
    ("gaia_conn", "conn_id"): C_CONN_ID,
    ("gaia_conn", "log_conn_id"): C_LOG_CONN_ID,
    ("gaia_conn", "in_bytes"): C_IN_BYTES,
    ("gaia_conn", "processed_bytes"): C_PROCESSED_BYTES,
    ("gaia_conn", "out_bytes"): C_OUT_BYTES,
    ("gaia_conn", "out_hash"): C_OUT_HASH,
    ("gaia_conn", "greeting_bytes"): C_GREETING_BYTES,
    ("gaia_conn", "ev_index"): C_EV_INDEX,
    ("gaia_conn", "ev_start"): C_EV_START,
    ("gaia_conn", "last_input"): C_LAST_INPUT,
    ("gaia_conn", "flags"): C_FLAGS,
    ("gaia_conn", "owner_pid"): C_OWNER_PID,
    ("gaia_conn", "open_index"): C_OPEN_INDEX,
    ("gaia_conn", "seg_hash"): C_SEG_HASH,
    ("gaia_conn", "seg_bytes"): C_SEG_BYTES,
    ("gaia_snap", "seq"): P_SEQ,
    ("gaia_snap", "log_conn_id"): P_LOG_CONN_ID,
    ("gaia_snap", "log_index"): P_LOG_INDEX,
    ("gaia_snap", "out_bytes"): P_OUT_BYTES,
    ("gaia_snap", "out_hash"): P_OUT_HASH,
    ("gaia_snap", "at_close"): P_AT_CLOSE,
    ("gaia_snap", "seg_hash"): P_SEG_HASH,
    ("gaia_snap", "seg_bytes"): P_SEG_BYTES,
}

C_SIZES = {
    "gaia_ring_header": HEADER_STRUCT_SIZE,
    "gaia_ring_slot": RING_SLOT_HEADER_SIZE,
    "gaia_conn": CONN_SIZE,
    "gaia_snap": SNAP_SIZE,
}


def segment_layout(
    slot_count: int, slot_size: int, conn_count: int, snap_count: int
) -> tuple[int, int, int]:
    """(conn_table_offset, snap_log_offset, segment_size) for a ring of these sizes."""
    conn_table = RING_HEADER_SIZE + slot_count * slot_size
    snap_log = conn_table + conn_count * CONN_SIZE
    return conn_table, snap_log, snap_log + snap_count * SNAP_SIZE
