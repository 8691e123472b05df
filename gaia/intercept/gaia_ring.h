/*
 * gaia_ring.h — the shared-memory hand-off between local producers (the LD_PRELOAD shim
 * inside a server, Python clients) and the local APUS replica. Version 1.
 *
 * Both the C shim and the numba/Python side (gaia/intercept/ring_layout.py mirrors every
 * offset below; a test compiles this header and compares them) follow this file. Change
 * it only together with GAIA_RING_VERSION and ring_layout.py.
 *
 * Segment: a POSIX shm object named by the environment variable GAIA_RING
 * (e.g. "/gaia-<group>-r0-ring"), created and sized by the replica, mapped by producers.
 * Layout: one gaia_ring_header (GAIA_RING_HEADER_SIZE bytes), then slot_count slots of
 * slot_size bytes each. All multi-byte fields are little-endian native integers.
 *
 * Protocol (multi-producer, single-consumer, bounded; Vyukov-style sequence numbers):
 *  - Slot i starts with seq == i (free for ticket i).
 *  - Producer: t = atomic_fetch_add(&tail, 1); s = slot(t & (slot_count-1));
 *    wait until acquire_load(s.seq) == t (the slot is free for this ticket); fill kind,
 *    flags, length, conn_id, payload; store status = PENDING; release_store(s.seq, t+1);
 *    if consumer_sleeping != 0: futex_wake(&consumer_futex) after incrementing it.
 *  - Consumer (the replica): at ticket h == head, waits until acquire_load(s.seq) == h+1,
 *    proposes the event (possibly batched with the following ones into one log entry),
 *    advances head. When the entry commits it writes s.log_index, then
 *    release_store(s.status, COMMITTED) (or FAILED with s.log_index = error code), then
 *    increments commit_futex and futex-wakes it if commit_waiters != 0.
 *  - Who frees the slot: if flags has GAIA_EV_NOWAIT the consumer frees it at commit;
 *    otherwise the producer, after reading the outcome:
 *    release_store(s.seq, t + slot_count).
 *  - A producer waiting for commit spins briefly on s.status, then sleeps on commit_futex
 *    (incrementing commit_waiters around the sleep, with a timeout so it re-checks
 *    replica_state).
 *  - Fail closed: if replica_state is GAIA_REPLICA_DOWN, or the replica's heartbeat stops
 *    advancing for longer than GAIA_RING_DEAD_NS, a producer must not let an input through
 *    unreplicated: the shim makes the server's read fail (errno EIO) instead.
 *
 * Events: OPEN (a connection was accepted; payload: optional peer address text),
 * DATA (bytes a connection read; at most max_payload per event — longer reads are split
 * into several DATA events, all committed before the read returns), CLOSE (the connection
 * closed), RAW (an opaque proposal from a non-socket producer, conn_id 0).
 * conn_id is unique over the replica's run: (generation << 32) | fd, where the generation
 * is a process-wide counter incremented at every accept — fds are reused.
 */
#ifndef GAIA_RING_H
#define GAIA_RING_H

#include <stdint.h>

#define GAIA_RING_MAGIC 0x474e495241494147ULL /* "GAIARING" little-endian */
#define GAIA_RING_VERSION 1u
#define GAIA_RING_HEADER_SIZE 4096u
#define GAIA_RING_SLOT_HEADER_SIZE 64u
#define GAIA_RING_DEFAULT_SLOTS 1024u
#define GAIA_RING_DEFAULT_SLOT_SIZE 16384u /* max_payload = slot_size - 64 */
#define GAIA_RING_DEAD_NS 2000000000ull    /* heartbeat older than 2 s => replica dead */

/* Event kinds */
#define GAIA_EV_OPEN 1u
#define GAIA_EV_DATA 2u
#define GAIA_EV_CLOSE 3u
#define GAIA_EV_RAW 4u

/* Event flags */
#define GAIA_EV_NOWAIT 1u /* producer does not wait; the consumer frees the slot */

/* Slot status */
#define GAIA_ST_EMPTY 0u
#define GAIA_ST_PENDING 1u
#define GAIA_ST_COMMITTED 2u
#define GAIA_ST_FAILED 3u

/* replica_state / role, written by the replica, read by producers */
#define GAIA_REPLICA_STARTING 0u
#define GAIA_REPLICA_LEADER 1u
#define GAIA_REPLICA_BACKUP 2u
#define GAIA_REPLICA_DOWN 3u

/* Header: each hot word on its own 64-byte cache line. */
struct gaia_ring_header {
    uint64_t magic;          /*   0 */
    uint32_t version;        /*   8 */
    uint32_t slot_count;     /*  12  power of two */
    uint32_t slot_size;      /*  16  bytes per slot including the 64-byte slot header */
    uint32_t max_payload;    /*  20  slot_size - 64 */
    uint8_t group_id[16];    /*  24  the APUS group this ring feeds */
    uint32_t replica_id;     /*  40 */
    uint32_t _pad0[5];       /*  44 .. 64 */
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
};

struct gaia_ring_slot {
    uint64_t seq;       /*  0  sequence (see protocol) */
    uint32_t kind;      /*  8  GAIA_EV_* */
    uint32_t flags;     /* 12  GAIA_EV_NOWAIT ... */
    uint32_t length;    /* 16  payload bytes */
    uint32_t status;    /* 20  GAIA_ST_* */
    uint64_t conn_id;   /* 24  (generation << 32) | fd */
    uint64_t log_index; /* 32  on COMMITTED: the APUS log index; on FAILED: an error code */
    uint64_t producer;  /* 40  pid of the producer (diagnostics) */
    uint8_t _pad[16];   /* 48 .. 64 */
    /* uint8_t payload[max_payload]; at offset 64 */
};

#endif
