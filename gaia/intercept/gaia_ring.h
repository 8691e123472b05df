/*
 * gaia_ring.h — the shared-memory hand-off between local producers (the LD_PRELOAD shim
 * inside a server, Python clients) and the local APUS replica. Version 2.
 *
 * Both the C shim and the numba/Python side (gaia/intercept/ring_layout.py mirrors every
 * offset below; a test compiles this header and compares them) follow this file. Change
 * it only together with GAIA_RING_VERSION and ring_layout.py.
 *
 * Changes in version 2 (from 1; the v1 ring protocol and the v1 offsets are unchanged):
 *  - Header fields in v1 padding: conn_generation (44), conn_count (48), snap_count (52),
 *    conn_table_offset (352), snap_log_offset (360), segment_size (368),
 *    dead_ns (376: the fail-closed heartbeat limit; 0 means GAIA_RING_DEAD_NS),
 *    progress_futex / progress_waiters (384), snap_tail (448).
 *  - The segment also holds a connection table and an output-snapshot log after the slots
 *    (sections "Connection table" and "Output snapshots" below): the output checker reads
 *    them and, on a backup, the replayer uses the table to deliver committed input.
 *  - Slot status GAIA_ST_ABANDONED and event flag GAIA_EV_MORE (see the protocol).
 *  - conn_id generation comes from the shared header (conn_generation), not a process
 *    counter, so ids stay unique across server restarts and across replicas.
 *
 * Segment: a POSIX shm object named by the environment variable GAIA_RING
 * (e.g. "/gaia-<group>-r0-ring"), created and sized by the replica, mapped by producers.
 * Layout: one gaia_ring_header (GAIA_RING_HEADER_SIZE bytes), then slot_count slots of
 * slot_size bytes each, then conn_count gaia_conn entries at conn_table_offset, then
 * snap_count gaia_snap records at snap_log_offset; segment_size bytes in all.
 * All multi-byte fields are little-endian native integers.
 *
 * Protocol (multi-producer, single-consumer, bounded; Vyukov-style sequence numbers):
 *  - Slot i starts with seq == i (free for ticket i).
 *  - Producer: t = atomic_fetch_add(&tail, k) claims k consecutive tickets (k > 1 only for
 *    one read split into several DATA events, so they stay adjacent in log order);
 *    for each ticket: s = slot(t & (slot_count-1)); wait until acquire_load(s.seq) == t;
 *    fill kind, flags, length, conn_id, payload; store status = PENDING;
 *    release_store(s.seq, t+1); then (seq_cst fence) if consumer_sleeping != 0:
 *    increment consumer_futex and futex_wake it.
 *  - Consumer (the replica): at ticket h == head, waits until acquire_load(s.seq) == h+1,
 *    proposes the event (possibly batched with the following ones into one log entry),
 *    advances head. When the entry commits it writes s.log_index, then sets the status
 *    with compare_exchange(s.status, PENDING -> COMMITTED) (or FAILED with
 *    s.log_index = error code), then increments commit_futex and futex-wakes it if
 *    commit_waiters != 0.
 *  - Who frees the slot: if flags has GAIA_EV_NOWAIT, or the compare_exchange found
 *    GAIA_ST_ABANDONED, the consumer frees it at commit; otherwise the producer, after
 *    reading the outcome: release_store(s.seq, t + slot_count).
 *  - A producer waiting for commit spins briefly on s.status, then sleeps on commit_futex
 *    (incrementing commit_waiters around the sleep, with a timeout so it re-checks
 *    replica_state).
 *  - Fail closed: if replica_state is GAIA_REPLICA_DOWN, or the replica's heartbeat stops
 *    advancing for longer than dead_ns, a producer must not let an input through
 *    unreplicated: the shim makes the server's read fail (errno EIO) instead. A waiting
 *    producer that gives up does compare_exchange(s.status, PENDING -> ABANDONED); if that
 *    fails the outcome is already there and it is used. A replica that commits an entry
 *    holding an ABANDONED event knows the leader's server did NOT execute that input (it
 *    was declared dead and came back): it must step down (replica_state = DOWN).
 *
 * Events: OPEN (a connection was accepted; payload: optional peer address text),
 * DATA (bytes a connection read; at most max_payload per event — longer reads are split
 * into several DATA events on consecutive tickets, every one but the last flagged
 * GAIA_EV_MORE, all committed before the read returns), CLOSE (the connection reached
 * end of input or was closed by the server), RAW (an opaque proposal from a non-socket
 * producer, conn_id 0).
 * conn_id is unique over the group's run: (generation << 32) | fd, where generation =
 * atomic_fetch_add(&conn_generation, 1) at every accept (fds are reused). The replica
 * initialises conn_generation to (replica_id << 24) | 1, so replicas never collide.
 *
 * Connection table (gaia_conn, one per connection the server accepted on a TCP
 * listening socket): the shim claims a FREE entry with compare_exchange(state,
 * FREE -> CLAIMING), fills it, release-stores OPEN, and marks it CLOSED at close. On a
 * leader the shim frees it (-> FREE) at once; on a backup the replayer frees it after it
 * saw the close.
 * log_conn_id is the connection's id in the log: the shim's own conn_id on the replica
 * that accepted it as leader; on a backup the replayer writes the leader's conn_id
 * (it finds its own connection by peer_port, the replayer socket's local port).
 * Who may give a server input (the shim fails a read closed with EIO otherwise):
 *  - a connection accepted while LEADER: only while the ring says LEADER in the view it
 *    was accepted in (a deposed or paused leader's clients never run unreplicated);
 *  - a connection accepted while BACKUP: only if a local trusted peer set
 *    GAIA_CONN_TRUSTED on its entry (found by peer_port) before sending — the
 *    replayer, the agent's digest/snapshot clients, read-only checks; while LEADER it
 *    may only end (its CLOSE is proposed), never give input that has no OPEN in the log.
 * A backup's input delivery (replayer, one event at a time):
 *    replayer: ev_index = log index, ev_start = bytes sent so far on that connection
 *              (release); send the event's bytes (a GAIA_EV_MORE chain as one send);
 *              wait until processed_bytes >= bytes sent, or state != OPEN;
 *    shim:     in_bytes += bytes read; when a thread next waits for input
 *              (epoll_wait/poll/select, or a read that would block) it stores
 *              processed_bytes = in_bytes for every connection it read since, bumps
 *              progress_futex and wakes it if progress_waiters != 0 (also at accept and
 *              close). So the server has executed an input before the next one is sent.
 *
 * Output snapshots (the output checker): the shim keeps per connection out_bytes and
 * out_hash = FNV-1a 64 (GAIA_HASH_OFFSET / GAIA_HASH_PRIME, byte by byte, so chunking does
 * not matter) of the bytes the server wrote after the connection's first input (a
 * greeting written before any input, e.g. MariaDB's random login scramble, is counted in
 * greeting_bytes and not hashed). At each input boundary (the first byte of a new input,
 * and at close) it appends a gaia_snap {log_conn_id, log_index = the index of the
 * PREVIOUS input of that connection (the input that produced this output), out_bytes,
 * out_hash, and seg_hash / seg_bytes = the same over the output since the previous
 * snapshot only (so each input's output is compared on its own)}: t = fetch_add(&snap_tail, 1), fill record t & (snap_count-1), then
 * release_store(seq, t+1). A reader at ticket p accepts the record iff seq == p+1 before
 * and after copying it (a larger seq means it was overwritten: lost).
 */
#ifndef GAIA_RING_H
#define GAIA_RING_H

#include <stdint.h>

#define GAIA_RING_MAGIC 0x474e495241494147ULL /* "GAIARING" little-endian */
#define GAIA_RING_VERSION 2u
#define GAIA_RING_HEADER_SIZE 4096u
#define GAIA_RING_SLOT_HEADER_SIZE 64u
#define GAIA_RING_DEFAULT_SLOTS 1024u
#define GAIA_RING_DEFAULT_SLOT_SIZE 16384u /* max_payload = slot_size - 64 */
#define GAIA_RING_DEAD_NS 2000000000ull    /* heartbeat older than 2 s => replica dead */
#define GAIA_RING_DEFAULT_CONNS 4096u
#define GAIA_RING_DEFAULT_SNAPS 65536u     /* power of two */
#define GAIA_CONN_SIZE 128u
#define GAIA_SNAP_SIZE 64u
#define GAIA_HASH_OFFSET 0xcbf29ce484222325ULL /* FNV-1a 64 */
#define GAIA_HASH_PRIME 0x100000001b3ULL

/* Event kinds */
#define GAIA_EV_OPEN 1u
#define GAIA_EV_DATA 2u
#define GAIA_EV_CLOSE 3u
#define GAIA_EV_RAW 4u

/* Event flags */
#define GAIA_EV_NOWAIT 1u /* producer does not wait; the consumer frees the slot */
#define GAIA_EV_MORE 2u   /* v2: DATA continued by the connection's next event (same read) */

/* Slot status */
#define GAIA_ST_EMPTY 0u
#define GAIA_ST_PENDING 1u
#define GAIA_ST_COMMITTED 2u
#define GAIA_ST_FAILED 3u
#define GAIA_ST_ABANDONED 4u /* v2: the producer gave up waiting (replica declared dead) */

/* replica_state / role, written by the replica, read by producers */
#define GAIA_REPLICA_STARTING 0u
#define GAIA_REPLICA_LEADER 1u
#define GAIA_REPLICA_BACKUP 2u
#define GAIA_REPLICA_DOWN 3u

/* Connection table entry state */
#define GAIA_CONN_FREE 0u
#define GAIA_CONN_OPEN 1u
#define GAIA_CONN_CLOSED 2u
#define GAIA_CONN_CLAIMING 3u /* transient: the shim is filling a freshly claimed entry */

/* gaia_conn.flags */
#define GAIA_CONN_INPUT_SEEN 1u   /* hashing started (first input arrived) */
#define GAIA_CONN_CLOSE_SENT 2u   /* a CLOSE event was proposed for it (leader) */
#define GAIA_CONN_TRUSTED 4u      /* set by a local trusted peer (the replayer, the agent)
                                     before it sends: its input may run on a backup */

/* Header: each hot word on its own 64-byte cache line. */
struct gaia_ring_header {
    uint64_t magic;          /*   0 */
    uint32_t version;        /*   8 */
    uint32_t slot_count;     /*  12  power of two */
    uint32_t slot_size;      /*  16  bytes per slot including the 64-byte slot header */
    uint32_t max_payload;    /*  20  slot_size - 64 */
    uint8_t group_id[16];    /*  24  the APUS group this ring feeds */
    uint32_t replica_id;     /*  40 */
    uint32_t conn_generation; /* 44  v2: next connection generation (fetch_add) */
    uint32_t conn_count;     /*  48  v2: entries in the connection table */
    uint32_t snap_count;     /*  52  v2: records in the snapshot log, power of two */
    uint32_t _pad0[2];       /*  56 .. 64 */
    uint64_t tail;           /*  64  next ticket to claim (producers, fetch_add) */
    uint8_t _pad1[56];
    uint64_t head;           /* 128  next ticket the consumer takes */
    uint8_t _pad2[56];
    uint32_t consumer_futex; /* 192  bumped by producers to wake a sleeping consumer */
    uint32_t consumer_sleeping; /* 196 non-zero while the consumer sleeps */
    uint8_t _pad3[56];
    uint32_t commit_futex;   /* 256  bumped by the consumer after each commit batch */
    uint32_t commit_waiters; /* 260  number of producers sleeping on commit_futex */
    uint8_t _pad4[56];
    uint32_t replica_state;  /* 320  GAIA_REPLICA_* */
    uint32_t _pad5;
    uint64_t replica_heartbeat_ns; /* 328  CLOCK_MONOTONIC ns, refreshed by the replica */
    uint64_t view;           /* 336  current view, informational */
    uint64_t commit_index;   /* 344  highest committed log index, informational */
    uint64_t conn_table_offset; /* 352  v2: byte offset of the connection table */
    uint64_t snap_log_offset;   /* 360  v2: byte offset of the snapshot log */
    uint64_t segment_size;      /* 368  v2: total bytes of the segment */
    uint64_t dead_ns;           /* 376  v2: heartbeat limit; 0 = GAIA_RING_DEAD_NS */
    uint32_t progress_futex;    /* 384  v2: bumped by a backup's shim on input progress */
    uint32_t progress_waiters;  /* 388  v2: replayers sleeping on progress_futex */
    uint8_t _pad6[56];
    uint64_t snap_tail;         /* 448  v2: next snapshot ticket (fetch_add) */
    uint8_t _pad7[56];
    /* 512 .. 4096 reserved */
};

struct gaia_ring_slot {
    uint64_t seq;       /*  0  sequence (see protocol) */
    uint32_t kind;      /*  8  GAIA_EV_* */
    uint32_t flags;     /* 12  GAIA_EV_NOWAIT, GAIA_EV_MORE */
    uint32_t length;    /* 16  payload bytes */
    uint32_t status;    /* 20  GAIA_ST_* */
    uint64_t conn_id;   /* 24  (generation << 32) | fd */
    uint64_t log_index; /* 32  on COMMITTED: the APUS log index; on FAILED: an error code */
    uint64_t producer;  /* 40  pid of the producer (diagnostics) */
    uint8_t _pad[16];   /* 48 .. 64 */
    /* uint8_t payload[max_payload]; at offset 64 */
};

/* v2: one connection the server accepted (see "Connection table"). 128 bytes. */
struct gaia_conn {
    uint32_t state;           /*   0  GAIA_CONN_* */
    uint32_t peer_port;       /*   4  remote TCP port, host order */
    uint64_t conn_id;         /*   8  this process's id: (generation << 32) | fd */
    uint64_t log_conn_id;     /*  16  the id in the log (replayer writes it on a backup) */
    uint64_t in_bytes;        /*  24  bytes the server read */
    uint64_t processed_bytes; /*  32  in_bytes when the reading thread last went idle */
    uint64_t out_bytes;       /*  40  bytes written after the first input (hashed) */
    uint64_t out_hash;        /*  48  FNV-1a 64 of those bytes */
    uint64_t greeting_bytes;  /*  56  bytes written before the first input (not hashed) */
    uint64_t ev_index;        /*  64  backup: log index of the input being delivered */
    uint64_t ev_start;        /*  72  backup: in_bytes at which that input starts */
    uint64_t last_input;      /*  80  log index of the connection's latest input */
    uint32_t flags;           /*  88  GAIA_CONN_INPUT_SEEN, GAIA_CONN_CLOSE_SENT */
    uint32_t owner_pid;       /*  92  pid of the server process (diagnostics) */
    uint64_t open_index;      /*  96  log index of the OPEN event (leader), 0 if none */
    uint64_t seg_hash;        /* 104  FNV-1a 64 of the bytes written since the last snapshot */
    uint64_t seg_bytes;       /* 112  their count */
    uint8_t _pad[8];          /* 120 .. 128 */
};

/* v2: one output snapshot (see "Output snapshots"). 64 bytes. */
struct gaia_snap {
    uint64_t seq;         /*  0  ticket + 1 once the record is whole */
    uint64_t log_conn_id; /*  8 */
    uint64_t log_index;   /* 16  the input that produced the output up to here */
    uint64_t out_bytes;   /* 24 */
    uint64_t out_hash;    /* 32 */
    uint32_t at_close;    /* 40  1 if taken when the connection closed */
    uint32_t _pad0;
    uint64_t seg_hash;    /* 48  hash of the output since the previous snapshot only */
    uint64_t seg_bytes;   /* 56  its length */
};

#endif
