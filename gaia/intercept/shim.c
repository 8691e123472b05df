/*
 * shim.c — the GAIA interception shim, loaded into an unmodified server with LD_PRELOAD.
 *
 * Why: to replicate a server we must see every byte it reads from its clients, in the
 * order it reads them, before it acts on them. The shim wraps the libc calls the servers
 * really use (gaia/intercept/SYSCALLS.md) and talks to the local APUS replica through the
 * shared-memory ring of gaia_ring.h (read that file first: protocol, layouts, roles).
 *
 * Per call the role is read from the ring header (replica_state), so a backup's server
 * becomes the leader's without a restart:
 *  - LEADER: accept -> register the connection, propose OPEN; read/recv/recvfrom/recvmsg/
 *    readv -> do the real read, propose the bytes as DATA events, return only after they
 *    committed; end of input or close -> propose CLOSE. Replica DOWN or heartbeat stale ->
 *    the read fails with EIO (fail closed, never unreplicated).
 *  - Who may give input (gaia_ring.h "Who may give a server input"): a connection
 *    accepted as LEADER only while LEADER in that view; one accepted as BACKUP only if
 *    a trusted local peer (the replayer, the agent) marked it. Anything else fails
 *    closed with EIO, so a deposed, paused or backup replica never runs client input
 *    that the group did not commit.
 *  - BACKUP: input comes from the replayer over ordinary local connections; the shim
 *    counts what the server consumed and, when the reading thread next waits for input
 *    (epoll_wait/poll/select or a read that would block), publishes "processed", so the
 *    replayer sends the next committed event only after this one was executed.
 *  - Both roles: bytes written to a tracked connection are hashed (FNV-1a 64) and the
 *    hash is snapshotted at each input boundary for the output checker.
 * Only TCP connections accepted from a listening socket are tracked; unix sockets, files,
 * pipes and the server's own outbound connections pass through untouched. Without
 * GAIA_RING in the environment the shim passes everything through. In a fork()ed child
 * (Redis BGSAVE) it passes everything through, so the child's closes propose nothing.
 *
 * Environment: GAIA_RING (shm name), GAIA_SHIM_SPIN_NS (spin before sleeping on a futex,
 * default 20000), GAIA_SHIM_DEBUG=1 (one stderr line per proposal failure),
 * GAIA_SHIM_SERIALIZE=1 (leader executes inputs one at a time: multi-threaded servers;
 * see gate_enter) with GAIA_SHIM_SERIALIZE_HOLD_NS (default 50 ms).
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "gaia_ring.h"

#define MAX_FDS 65536
#define MAX_TOUCHED 32
#define MAX_IOV 1024
#define WAIT_SLICE_NS 5000000L /* futex sleep slice: re-check liveness this often */
#define MAX_CHUNKS_PER_READ 64u

#define LOAD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define FETCH_ADD(p, v) __atomic_fetch_add((p), (v), __ATOMIC_SEQ_CST)
#define CAS(p, e, d) __sync_bool_compare_and_swap((p), (e), (d))

/* ---- real libc functions ---------------------------------------------------------- */
static ssize_t (*real_read)(int, void *, size_t);
static ssize_t (*real_readv)(int, const struct iovec *, int);
static ssize_t (*real_recv)(int, void *, size_t, int);
static ssize_t (*real_recvfrom)(int, void *, size_t, int, struct sockaddr *, socklen_t *);
static ssize_t (*real_recvmsg)(int, struct msghdr *, int);
static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_send)(int, const void *, size_t, int);
static ssize_t (*real_sendto)(int, const void *, size_t, int, const struct sockaddr *,
                              socklen_t);
static ssize_t (*real_sendmsg)(int, const struct msghdr *, int);
static int (*real_accept)(int, struct sockaddr *, socklen_t *);
static int (*real_accept4)(int, struct sockaddr *, socklen_t *, int);
static int (*real_close)(int);
static int (*real_epoll_wait)(int, struct epoll_event *, int, int);
static int (*real_epoll_pwait)(int, struct epoll_event *, int, int, const sigset_t *);
static int (*real_poll)(struct pollfd *, nfds_t, int);
static int (*real_poll_chk)(struct pollfd *, nfds_t, int, size_t);
static int (*real_ppoll)(struct pollfd *, nfds_t, const struct timespec *, const sigset_t *);
static int (*real_select)(int, fd_set *, fd_set *, fd_set *, struct timeval *);
static int (*real_pselect)(int, fd_set *, fd_set *, fd_set *, const struct timespec *,
                           const sigset_t *);

/* ---- state ------------------------------------------------------------------------- */
struct fd_track {
    uint64_t conn_id; /* 0: not tracked */
    int32_t entry;    /* index in the connection table */
    int32_t as_leader; /* accepted while LEADER (a client of this replica) */
    uint64_t view;     /* as_leader: the view it was accepted in */
};

static struct fd_track g_fds[MAX_FDS];
static uint8_t *g_seg;
static struct gaia_ring_header *g_hdr;
static const char *g_ring_name;
static volatile int g_disabled = 1; /* until initialised; again in fork children */
static long g_spin_ns = 20000;
static int g_serialize;             /* GAIA_SHIM_SERIALIZE: leader executes one input at a time */
static long g_hold_ns = 50000000L;  /* GAIA_SHIM_SERIALIZE_HOLD_NS: then the gate is taken over */
static pid_t g_gate_owner;          /* tid of the thread executing an input, 0: none */
static uint64_t g_gate_since;
static int g_debug;
static pid_t g_pid;
static pthread_mutex_t g_map_lock = PTHREAD_MUTEX_INITIALIZER;
static int g_map_warned;

struct touched {
    int32_t entry;
    uint64_t conn_id;
};
static __thread struct touched tls_touched[MAX_TOUCHED];
static __thread int tls_ntouched;

#define RESOLVE(name) real_##name = dlsym(RTLD_NEXT, #name)

static void resolve_all(void) {
    RESOLVE(read);
    RESOLVE(readv);
    RESOLVE(recv);
    RESOLVE(recvfrom);
    RESOLVE(recvmsg);
    RESOLVE(write);
    RESOLVE(writev);
    RESOLVE(send);
    RESOLVE(sendto);
    RESOLVE(sendmsg);
    RESOLVE(accept);
    RESOLVE(accept4);
    RESOLVE(close);
    RESOLVE(epoll_wait);
    RESOLVE(epoll_pwait);
    RESOLVE(poll);
    RESOLVE(ppoll);
    RESOLVE(select);
    RESOLVE(pselect);
    real_poll_chk = dlsym(RTLD_NEXT, "__poll_chk");
}

#define ENSURE(name) \
    do {                            \
        if (!real_##name)           \
            resolve_all();          \
    } while (0)

/* ---- small helpers ----------------------------------------------------------------- */
static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void futex_wait(uint32_t *addr, uint32_t expected, long timeout_ns) {
    struct timespec ts = {timeout_ns / 1000000000L, timeout_ns % 1000000000L};
    syscall(SYS_futex, addr, FUTEX_WAIT, expected, &ts, NULL, 0);
}

static void futex_wake(uint32_t *addr) {
    syscall(SYS_futex, addr, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

static inline void cpu_relax(void) { __builtin_ia32_pause(); }

static void debug(const char *what, uint64_t conn_id) {
    if (g_debug) {
        char line[160];
        int n = snprintf(line, sizeof line, "gaia-shim[%d]: %s (conn %llx)\n", (int)getpid(),
                         what, (unsigned long long)conn_id);
        if (n > 0 && real_write)
            real_write(2, line, (size_t)n);
    }
}

static inline struct gaia_conn *conn_at(int32_t idx) {
    return (struct gaia_conn *)(g_seg + g_hdr->conn_table_offset +
                                (uint64_t)idx * GAIA_CONN_SIZE);
}

static inline struct gaia_ring_slot *slot_at(uint64_t ticket) {
    uint64_t i = ticket & (uint64_t)(g_hdr->slot_count - 1);
    return (struct gaia_ring_slot *)(g_seg + GAIA_RING_HEADER_SIZE + i * g_hdr->slot_size);
}

static inline uint32_t role(void) { return LOAD(&g_hdr->replica_state); }

static inline uint64_t ring_view(void) { return LOAD(&g_hdr->view); }

static int replica_alive(void) {
    if (role() == GAIA_REPLICA_DOWN)
        return 0;
    uint64_t limit = LOAD(&g_hdr->dead_ns);
    if (limit == 0)
        limit = GAIA_RING_DEAD_NS;
    int64_t age = (int64_t)(now_ns() - LOAD(&g_hdr->replica_heartbeat_ns));
    return age <= (int64_t)limit;
}

static void wake_progress(void) {
    FETCH_ADD(&g_hdr->progress_futex, 1);
    if (LOAD(&g_hdr->progress_waiters) != 0)
        futex_wake(&g_hdr->progress_futex);
}

static uint64_t fnv1a(uint64_t h, const uint8_t *p, size_t n) {
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= GAIA_HASH_PRIME;
    }
    return h;
}

/* Copy `len` bytes starting `offset` bytes into the iovec array to dst. */
static void copy_from_iov(uint8_t *dst, const struct iovec *iov, int iovcnt, size_t offset,
                          size_t len) {
    for (int i = 0; i < iovcnt && len > 0; i++) {
        size_t n = iov[i].iov_len;
        if (offset >= n) {
            offset -= n;
            continue;
        }
        size_t take = n - offset < len ? n - offset : len;
        memcpy(dst, (const uint8_t *)iov[i].iov_base + offset, take);
        dst += take;
        len -= take;
        offset = 0;
    }
}

/* A copy of `iov` holding at most `cap` bytes; returns the new count. */
static int cap_iov(const struct iovec *iov, int iovcnt, struct iovec *out, size_t cap) {
    int n = 0;
    for (int i = 0; i < iovcnt && i < MAX_IOV && cap > 0; i++) {
        out[n] = iov[i];
        if (out[n].iov_len > cap)
            out[n].iov_len = cap;
        cap -= out[n].iov_len;
        n++;
    }
    return n;
}

/* ---- mapping the ring ------------------------------------------------------------- */
static int map_ring(void) {
    if (g_seg)
        return 1;
    pthread_mutex_lock(&g_map_lock);
    if (!g_seg && g_ring_name) {
        int fd = shm_open(g_ring_name, O_RDWR, 0);
        struct stat st;
        if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size >= (off_t)GAIA_RING_HEADER_SIZE) {
            void *p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            struct gaia_ring_header *h = p;
            if (p != MAP_FAILED && h->magic == GAIA_RING_MAGIC &&
                h->version == GAIA_RING_VERSION && h->segment_size <= (uint64_t)st.st_size) {
                g_hdr = h;
                __atomic_store_n(&g_seg, (uint8_t *)p, __ATOMIC_RELEASE);
            } else if (p != MAP_FAILED) {
                munmap(p, (size_t)st.st_size);
            }
        }
        if (fd >= 0)
            real_close(fd);
        if (!g_seg && !g_map_warned) {
            g_map_warned = 1;
            char line[256];
            int n = snprintf(line, sizeof line,
                             "gaia-shim[%d]: cannot map ring %s (missing, or not version %u): "
                             "refusing client connections until it exists\n",
                             (int)getpid(), g_ring_name, GAIA_RING_VERSION);
            if (n > 0)
                real_write(2, line, (size_t)n);
        }
    }
    pthread_mutex_unlock(&g_map_lock);
    return g_seg != NULL;
}

static void on_fork_child(void) { g_disabled = 1; }

__attribute__((constructor)) static void shim_init(void) {
    resolve_all();
    g_ring_name = getenv("GAIA_RING");
    const char *spin = getenv("GAIA_SHIM_SPIN_NS");
    if (spin)
        g_spin_ns = strtol(spin, NULL, 10);
    g_debug = getenv("GAIA_SHIM_DEBUG") != NULL;
    const char *serialize = getenv("GAIA_SHIM_SERIALIZE");
    g_serialize = serialize && *serialize && *serialize != '0';
    const char *hold = getenv("GAIA_SHIM_SERIALIZE_HOLD_NS");
    if (hold)
        g_hold_ns = strtol(hold, NULL, 10);
    g_pid = getpid();
    pthread_atfork(NULL, NULL, on_fork_child);
    if (g_ring_name && *g_ring_name) {
        map_ring();
        g_disabled = 0;
    }
}

/* ---- proposing ------------------------------------------------------------------- */
static int wait_slot_free(struct gaia_ring_slot *s, uint64_t ticket) {
    uint64_t start = now_ns();
    for (unsigned spins = 0; LOAD(&s->seq) != ticket; spins++) {
        cpu_relax();
        if ((spins & 255) == 255) {
            if (!replica_alive())
                return 0;
            if (now_ns() - start > (uint64_t)g_spin_ns)
                sched_yield();
        }
    }
    return 1;
}

/* Wait until the last of the tickets is decided (entries commit in ticket order). */
static int wait_decided(struct gaia_ring_slot *last) {
    uint64_t start = now_ns();
    while (LOAD(&last->status) == GAIA_ST_PENDING) {
        if (now_ns() - start < (uint64_t)g_spin_ns) {
            for (int i = 0; i < 32; i++)
                cpu_relax();
            continue;
        }
        FETCH_ADD(&g_hdr->commit_waiters, 1);
        uint32_t v = LOAD(&g_hdr->commit_futex);
        if (LOAD(&last->status) == GAIA_ST_PENDING)
            futex_wait(&g_hdr->commit_futex, v, WAIT_SLICE_NS);
        FETCH_ADD(&g_hdr->commit_waiters, (uint32_t)-1);
        if (LOAD(&last->status) == GAIA_ST_PENDING && !replica_alive())
            return 0;
    }
    return 1;
}

/*
 * Propose `total` bytes from iov as events of `kind` on `conn_id` (total 0: one empty
 * event), split at max_payload on consecutive tickets. Returns 1 with the log index of
 * the first event in *first_index once every event committed, 0 on failure.
 */
static int propose(uint32_t kind, uint64_t conn_id, const struct iovec *iov, int iovcnt,
                   size_t total, uint64_t *first_index) {
    uint32_t max_payload = g_hdr->max_payload;
    uint64_t k = total == 0 ? 1 : (total + max_payload - 1) / max_payload;
    uint64_t t0 = FETCH_ADD(&g_hdr->tail, k);
    size_t offset = 0;
    for (uint64_t i = 0; i < k; i++) {
        struct gaia_ring_slot *s = slot_at(t0 + i);
        if (!wait_slot_free(s, t0 + i)) {
            debug("replica dead while waiting for a free slot (ring unusable)", conn_id);
            return 0;
        }
        size_t len = total - offset < max_payload ? total - offset : max_payload;
        s->kind = kind;
        s->flags = i + 1 < k ? GAIA_EV_MORE : 0;
        s->length = (uint32_t)len;
        s->conn_id = conn_id;
        s->log_index = 0;
        s->producer = (uint64_t)g_pid;
        copy_from_iov((uint8_t *)s + GAIA_RING_SLOT_HEADER_SIZE, iov, iovcnt, offset, len);
        s->status = GAIA_ST_PENDING;
        STORE(&s->seq, t0 + i + 1);
        offset += len;
    }
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (LOAD(&g_hdr->consumer_sleeping) != 0) {
        FETCH_ADD(&g_hdr->consumer_futex, 1);
        futex_wake(&g_hdr->consumer_futex);
    }
    int ok = wait_decided(slot_at(t0 + k - 1));
    for (uint64_t i = 0; i < k; i++) {
        struct gaia_ring_slot *s = slot_at(t0 + i);
        if (!ok && CAS(&s->status, GAIA_ST_PENDING, GAIA_ST_ABANDONED))
            continue; /* the consumer frees abandoned slots */
        uint32_t st = LOAD(&s->status);
        while (st == GAIA_ST_PENDING) { /* decided in order: the rest follows at once */
            cpu_relax();
            st = LOAD(&s->status);
        }
        if (st != GAIA_ST_COMMITTED)
            ok = 0;
        else if (i == 0)
            *first_index = s->log_index;
        STORE(&s->seq, t0 + i + g_hdr->slot_count);
    }
    if (!ok)
        debug("proposal not committed: failing closed", conn_id);
    return ok;
}

/* ---- connection table ------------------------------------------------------------ */
static void snapshot_output(struct gaia_conn *c, int at_close) {
    uint64_t t = FETCH_ADD(&g_hdr->snap_tail, 1);
    struct gaia_snap *r = (struct gaia_snap *)(g_seg + g_hdr->snap_log_offset +
                                               (t & (uint64_t)(g_hdr->snap_count - 1)) *
                                                   GAIA_SNAP_SIZE);
    STORE(&r->seq, 0); /* readers of the old record see it change */
    r->log_conn_id = LOAD(&c->log_conn_id);
    r->log_index = c->last_input;
    r->out_bytes = c->out_bytes;
    r->out_hash = c->out_hash;
    r->at_close = (uint32_t)at_close;
    r->seg_hash = c->seg_hash;
    r->seg_bytes = c->seg_bytes;
    STORE(&r->seq, t + 1);
    c->seg_hash = GAIA_HASH_OFFSET;
    c->seg_bytes = 0;
}

/* An input of the connection starts at log index `index`: snapshot the previous one's
 * output. */
static void input_boundary(struct gaia_conn *c, uint64_t index) {
    if (c->last_input != 0)
        snapshot_output(c, 0);
    c->last_input = index;
    __atomic_or_fetch(&c->flags, GAIA_CONN_INPUT_SEEN, __ATOMIC_RELEASE);
}

static int32_t claim_entry(void) {
    uint32_t n = g_hdr->conn_count;
    for (uint32_t i = 0; i < n; i++) {
        struct gaia_conn *c = conn_at((int32_t)i);
        if (LOAD(&c->state) == GAIA_CONN_FREE && CAS(&c->state, GAIA_CONN_FREE, GAIA_CONN_CLAIMING))
            return (int32_t)i;
    }
    return -1;
}

static int is_tcp_listener(int lfd) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int type = 0;
    socklen_t tlen = sizeof type;
    if (getsockname(lfd, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    if (ss.ss_family != AF_INET && ss.ss_family != AF_INET6)
        return 0;
    return getsockopt(lfd, SOL_SOCKET, SO_TYPE, &type, &tlen) == 0 && type == SOCK_STREAM;
}

static uint32_t peer_text(int fd, char *buf, size_t cap) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    buf[0] = 0;
    if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
        return 0;
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        uint8_t *ip = (uint8_t *)&a->sin_addr;
        snprintf(buf, cap, "%u.%u.%u.%u:%u", ip[0], ip[1], ip[2], ip[3], ntohs(a->sin_port));
        return ntohs(a->sin_port);
    }
    if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        snprintf(buf, cap, "[ipv6]:%u", ntohs(a->sin6_port));
        return ntohs(a->sin6_port);
    }
    return 0;
}

static int refuse(int fd) {
    real_close(fd);
    errno = ECONNABORTED;
    return -1;
}

static int on_accepted(int lfd, int fd) {
    if (g_disabled || !is_tcp_listener(lfd))
        return fd;
    if (!map_ring() || fd >= MAX_FDS)
        return refuse(fd);
    uint64_t view = ring_view();
    uint32_t r = role();
    if ((r != GAIA_REPLICA_LEADER && r != GAIA_REPLICA_BACKUP) ||
        (r == GAIA_REPLICA_LEADER && (!replica_alive() || ring_view() != view)))
        return refuse(fd);
    int32_t idx = claim_entry();
    if (idx < 0) {
        debug("connection table full: refusing a connection", 0);
        return refuse(fd);
    }
    struct gaia_conn *c = conn_at(idx);
    uint32_t gen = FETCH_ADD(&g_hdr->conn_generation, 1);
    uint64_t cid = ((uint64_t)gen << 32) | (uint32_t)fd;
    char peer[64];
    c->peer_port = peer_text(fd, peer, sizeof peer);
    c->conn_id = cid;
    c->log_conn_id = cid;
    c->in_bytes = c->processed_bytes = 0;
    c->out_bytes = c->greeting_bytes = 0;
    c->out_hash = c->seg_hash = GAIA_HASH_OFFSET;
    c->seg_bytes = 0;
    c->ev_index = c->ev_start = c->last_input = c->open_index = 0;
    c->flags = 0;
    c->owner_pid = (uint32_t)g_pid;
    STORE(&c->state, GAIA_CONN_OPEN);
    if (r == GAIA_REPLICA_LEADER) {
        struct iovec v = {peer, strlen(peer)};
        uint64_t index = 0;
        if (!propose(GAIA_EV_OPEN, cid, &v, 1, v.iov_len, &index)) {
            STORE(&c->state, GAIA_CONN_FREE);
            return refuse(fd);
        }
        c->open_index = index;
    } else {
        wake_progress();
    }
    g_fds[fd].entry = idx;
    g_fds[fd].as_leader = r == GAIA_REPLICA_LEADER;
    g_fds[fd].view = view;
    STORE(&g_fds[fd].conn_id, cid);
    return fd;
}

/* The tracked entry of fd, or NULL. */
static inline struct gaia_conn *tracked(int fd) {
    if (g_disabled || fd < 0 || fd >= MAX_FDS || LOAD(&g_fds[fd].conn_id) == 0)
        return NULL;
    return conn_at(g_fds[fd].entry);
}

/* ---- backup: consumption and idleness ---------------------------------------------- */
static void touch(int fd, struct gaia_conn *c) {
    int32_t idx = g_fds[fd].entry;
    for (int i = 0; i < tls_ntouched; i++)
        if (tls_touched[i].entry == idx)
            return;
    if (tls_ntouched < MAX_TOUCHED) {
        tls_touched[tls_ntouched].entry = idx;
        tls_touched[tls_ntouched].conn_id = c->conn_id;
        tls_ntouched++;
    }
}

/*
 * Leader execution gate (GAIA_SHIM_SERIALIZE=1, for multi-threaded servers): a thread
 * whose read returns input takes the gate BEFORE proposing it and keeps it until it next
 * waits for input, so the log order is the order in which the server executes inputs —
 * the order a backup's replayer reproduces. A holder that does not come back within
 * g_hold_ns (blocked on a lock, a long-poll) is overtaken, so the gate never deadlocks;
 * the order of such overlapping inputs is then not guaranteed.
 */
static pid_t my_tid(void) {
    static __thread pid_t tid;
    if (!tid)
        tid = (pid_t)syscall(SYS_gettid);
    return tid;
}

static void gate_enter(void) {
    pid_t me = my_tid();
    if (LOAD(&g_gate_owner) == me)
        return;
    for (unsigned spins = 0;; spins++) {
        pid_t owner = LOAD(&g_gate_owner);
        if ((owner == 0 || now_ns() - LOAD(&g_gate_since) > (uint64_t)g_hold_ns) &&
            CAS(&g_gate_owner, owner, me)) {
            STORE(&g_gate_since, now_ns());
            return;
        }
        if (spins < 64) {
            cpu_relax();
        } else {
            struct timespec ts = {0, 20000};
            nanosleep(&ts, NULL);
        }
    }
}

static void gate_leave(void) {
    pid_t me = my_tid();
    if (LOAD(&g_gate_owner) == me)
        CAS(&g_gate_owner, me, 0);
}

/* The thread is about to wait for input: everything it read has been acted on. */
static void went_idle(void) {
    if (g_serialize)
        gate_leave();
    if (tls_ntouched == 0 || g_disabled || !g_seg)
        return;
    int saved = errno;
    for (int i = 0; i < tls_ntouched; i++) {
        struct gaia_conn *c = conn_at(tls_touched[i].entry);
        if (LOAD(&c->conn_id) == tls_touched[i].conn_id)
            STORE(&c->processed_bytes, LOAD(&c->in_bytes));
    }
    tls_ntouched = 0;
    wake_progress();
    errno = saved;
}

static void backup_consumed(int fd, struct gaia_conn *c, size_t n) {
    uint64_t before = c->in_bytes;
    uint64_t ev = LOAD(&c->ev_index);
    if (ev != 0 && before == LOAD(&c->ev_start) && ev != c->last_input)
        input_boundary(c, ev);
    STORE(&c->in_bytes, before + n);
    touch(fd, c);
}

/* ---- input: shared by every read wrapper ------------------------------------------ */
/* Before the real read. Returns 0 (errno set) to fail closed; may lower *cap. */
static int input_begin(int fd, uint32_t *r, size_t *cap) {
    *r = role();
    if (g_fds[fd].as_leader &&
        (*r != GAIA_REPLICA_LEADER || ring_view() != g_fds[fd].view)) {
        debug("a client of an earlier leadership reads: failing closed", g_fds[fd].conn_id);
        errno = EIO; /* accepted as leader: its input runs only while leading that view */
        return 0;
    }
    if (*r == GAIA_REPLICA_BACKUP)
        return 1;
    if (*r != GAIA_REPLICA_LEADER || !replica_alive()) {
        errno = EIO;
        return 0;
    }
    size_t limit = (size_t)g_hdr->max_payload *
                   (g_hdr->slot_count / 2 < MAX_CHUNKS_PER_READ ? g_hdr->slot_count / 2
                                                                 : MAX_CHUNKS_PER_READ);
    if (*cap > limit)
        *cap = limit;
    return 1;
}

static int propose_close(struct gaia_conn *c) {
    if (__atomic_fetch_or(&c->flags, GAIA_CONN_CLOSE_SENT, __ATOMIC_ACQ_REL) &
        GAIA_CONN_CLOSE_SENT)
        return 1;
    uint64_t index = 0;
    return propose(GAIA_EV_CLOSE, LOAD(&c->log_conn_id), NULL, 0, 0, &index);
}

/* After the real read returned `res` (bytes in iov). Returns what the caller returns. */
static ssize_t input_end(int fd, struct gaia_conn *c, uint32_t r, const struct iovec *iov,
                         int iovcnt, ssize_t res, size_t asked) {
    int err = errno;
    if (res > 0 && !g_fds[fd].as_leader && !(LOAD(&c->flags) & GAIA_CONN_TRUSTED)) {
        /* accepted as backup: only a trusted local peer's input runs here */
        debug("input on an untrusted connection accepted as backup: failing closed", c->conn_id);
        errno = EIO;
        return -1;
    }
    if (res > 0 && !g_fds[fd].as_leader && r == GAIA_REPLICA_LEADER) {
        debug("input on a connection accepted as backup while leading: failing closed",
              c->conn_id);
        errno = EIO; /* its OPEN is in no log: backups could not replay it */
        return -1;
    }
    if (r == GAIA_REPLICA_BACKUP) {
        if (res > 0)
            backup_consumed(fd, c, (size_t)res);
        else if (res < 0 && (err == EAGAIN || err == EWOULDBLOCK))
            went_idle();
        errno = err;
        return res;
    }
    if (res > 0) {
        uint64_t index = 0;
        if (g_serialize)
            gate_enter();
        if (!propose(GAIA_EV_DATA, LOAD(&c->log_conn_id), iov, iovcnt, (size_t)res, &index)) {
            errno = EIO;
            return -1;
        }
        input_boundary(c, index);
        STORE(&c->in_bytes, c->in_bytes + (uint64_t)res);
        return res;
    }
    if (res < 0 && (err == EAGAIN || err == EWOULDBLOCK))
        went_idle();
    int end = (res == 0 && asked > 0) ||
              (res < 0 && err != EAGAIN && err != EWOULDBLOCK && err != EINTR);
    if (end && !propose_close(c)) {
        errno = EIO;
        return -1;
    }
    errno = err;
    return res;
}

/* ---- wrappers: input --------------------------------------------------------------- */
static ssize_t single_input(int fd, void *buf, size_t n, int peek,
                            ssize_t (*call)(int, void *, size_t, void *), void *ctx) {
    struct gaia_conn *c = peek ? NULL : tracked(fd);
    if (!c)
        return call(fd, buf, n, ctx);
    uint32_t r;
    size_t cap = n;
    if (!input_begin(fd, &r, &cap))
        return -1;
    ssize_t res = call(fd, buf, cap, ctx);
    struct iovec v = {buf, res > 0 ? (size_t)res : 0};
    return input_end(fd, c, r, &v, 1, res, n);
}

static ssize_t call_read(int fd, void *buf, size_t n, void *ctx) {
    (void)ctx;
    return real_read(fd, buf, n);
}

struct recv_args {
    int flags;
    struct sockaddr *addr;
    socklen_t *alen;
};

static ssize_t call_recvfrom(int fd, void *buf, size_t n, void *ctx) {
    struct recv_args *a = ctx;
    return real_recvfrom(fd, buf, n, a->flags, a->addr, a->alen);
}

ssize_t read(int fd, void *buf, size_t n) {
    ENSURE(read);
    return single_input(fd, buf, n, 0, call_read, NULL);
}

ssize_t recv(int fd, void *buf, size_t n, int flags) {
    ENSURE(recvfrom);
    struct recv_args a = {flags, NULL, NULL};
    return single_input(fd, buf, n, flags & MSG_PEEK, call_recvfrom, &a);
}

ssize_t recvfrom(int fd, void *buf, size_t n, int flags, struct sockaddr *addr,
                 socklen_t *alen) {
    ENSURE(recvfrom);
    struct recv_args a = {flags, addr, alen};
    return single_input(fd, buf, n, flags & MSG_PEEK, call_recvfrom, &a);
}

ssize_t readv(int fd, const struct iovec *iov, int iovcnt) {
    ENSURE(readv);
    struct gaia_conn *c = tracked(fd);
    if (!c || iovcnt <= 0 || iovcnt > MAX_IOV)
        return real_readv(fd, iov, iovcnt);
    uint32_t r;
    size_t asked = 0;
    for (int i = 0; i < iovcnt; i++)
        asked += iov[i].iov_len;
    size_t cap = asked;
    if (!input_begin(fd, &r, &cap))
        return -1;
    struct iovec capped[MAX_IOV];
    int n = cap_iov(iov, iovcnt, capped, cap);
    ssize_t res = real_readv(fd, capped, n);
    return input_end(fd, c, r, capped, n, res, asked);
}

ssize_t recvmsg(int fd, struct msghdr *msg, int flags) {
    ENSURE(recvmsg);
    struct gaia_conn *c = (flags & MSG_PEEK) ? NULL : tracked(fd);
    if (!c || msg->msg_iovlen == 0 || msg->msg_iovlen > MAX_IOV)
        return real_recvmsg(fd, msg, flags);
    uint32_t r;
    size_t asked = 0;
    for (size_t i = 0; i < msg->msg_iovlen; i++)
        asked += msg->msg_iov[i].iov_len;
    size_t cap = asked;
    if (!input_begin(fd, &r, &cap))
        return -1;
    struct iovec capped[MAX_IOV];
    struct iovec *orig = msg->msg_iov;
    size_t orig_len = msg->msg_iovlen;
    int n = cap_iov(orig, (int)orig_len, capped, cap);
    msg->msg_iov = capped;
    msg->msg_iovlen = (size_t)n;
    ssize_t res = real_recvmsg(fd, msg, flags);
    int err = errno;
    msg->msg_iov = orig;
    msg->msg_iovlen = orig_len;
    errno = err;
    return input_end(fd, c, r, capped, n, res, asked);
}

/* ---- wrappers: output ------------------------------------------------------------- */
static void output(int fd, const struct iovec *iov, int iovcnt, ssize_t res) {
    struct gaia_conn *c;
    if (res <= 0 || !(c = tracked(fd)))
        return;
    if (!(LOAD(&c->flags) & GAIA_CONN_INPUT_SEEN)) {
        c->greeting_bytes += (uint64_t)res;
        return;
    }
    uint64_t h = c->out_hash, g = c->seg_hash;
    size_t left = (size_t)res;
    for (int i = 0; i < iovcnt && left > 0; i++) {
        size_t n = iov[i].iov_len < left ? iov[i].iov_len : left;
        h = fnv1a(h, iov[i].iov_base, n);
        g = fnv1a(g, iov[i].iov_base, n);
        left -= n;
    }
    c->out_hash = h;
    c->seg_hash = g;
    c->out_bytes += (uint64_t)res;
    c->seg_bytes += (uint64_t)res;
}

ssize_t write(int fd, const void *buf, size_t n) {
    ENSURE(write);
    ssize_t res = real_write(fd, buf, n);
    int err = errno;
    struct iovec v = {(void *)buf, n};
    output(fd, &v, 1, res);
    errno = err;
    return res;
}

ssize_t send(int fd, const void *buf, size_t n, int flags) {
    ENSURE(send);
    ssize_t res = real_send(fd, buf, n, flags);
    int err = errno;
    struct iovec v = {(void *)buf, n};
    output(fd, &v, 1, res);
    errno = err;
    return res;
}

ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *addr,
               socklen_t alen) {
    ENSURE(sendto);
    ssize_t res = real_sendto(fd, buf, n, flags, addr, alen);
    int err = errno;
    struct iovec v = {(void *)buf, n};
    output(fd, &v, 1, res);
    errno = err;
    return res;
}

ssize_t writev(int fd, const struct iovec *iov, int iovcnt) {
    ENSURE(writev);
    ssize_t res = real_writev(fd, iov, iovcnt);
    int err = errno;
    output(fd, iov, iovcnt, res);
    errno = err;
    return res;
}

ssize_t sendmsg(int fd, const struct msghdr *msg, int flags) {
    ENSURE(sendmsg);
    ssize_t res = real_sendmsg(fd, msg, flags);
    int err = errno;
    output(fd, msg->msg_iov, (int)msg->msg_iovlen, res);
    errno = err;
    return res;
}

/* ---- wrappers: accept and close --------------------------------------------------- */
int accept(int lfd, struct sockaddr *addr, socklen_t *alen) {
    ENSURE(accept);
    int fd = real_accept(lfd, addr, alen);
    return fd < 0 ? fd : on_accepted(lfd, fd);
}

int accept4(int lfd, struct sockaddr *addr, socklen_t *alen, int flags) {
    ENSURE(accept4);
    int fd = real_accept4(lfd, addr, alen, flags);
    return fd < 0 ? fd : on_accepted(lfd, fd);
}

int close(int fd) {
    ENSURE(close);
    struct gaia_conn *c = tracked(fd);
    if (c) {
        int saved = errno;
        /* Untrack first: once the real close returns, another thread may get this fd. */
        STORE(&g_fds[fd].conn_id, 0);
        uint32_t r = role();
        int leads = r == GAIA_REPLICA_LEADER;
        int mine = g_fds[fd].as_leader; /* no replayer frees a former client's entry */
        if (leads)
            propose_close(c); /* a failure cannot stop a close; the input already ended */
        if (c->last_input != 0)
            snapshot_output(c, 1);
        STORE(&c->processed_bytes, c->in_bytes);
        STORE(&c->state, leads || mine ? GAIA_CONN_FREE : GAIA_CONN_CLOSED);
        wake_progress();
        if (g_serialize)
            gate_leave();
        errno = saved;
    }
    return real_close(fd);
}

/* ---- wrappers: waiting for input (backup idleness) --------------------------------- */
int epoll_wait(int epfd, struct epoll_event *ev, int max, int timeout) {
    ENSURE(epoll_wait);
    went_idle();
    return real_epoll_wait(epfd, ev, max, timeout);
}

int epoll_pwait(int epfd, struct epoll_event *ev, int max, int timeout, const sigset_t *ss) {
    ENSURE(epoll_pwait);
    went_idle();
    return real_epoll_pwait(epfd, ev, max, timeout, ss);
}

int poll(struct pollfd *fds, nfds_t n, int timeout) {
    ENSURE(poll);
    went_idle();
    return real_poll(fds, n, timeout);
}

int __poll_chk(struct pollfd *fds, nfds_t n, int timeout, size_t fdslen) {
    ENSURE(poll);
    went_idle();
    return real_poll_chk ? real_poll_chk(fds, n, timeout, fdslen) : real_poll(fds, n, timeout);
}

int ppoll(struct pollfd *fds, nfds_t n, const struct timespec *ts, const sigset_t *ss) {
    ENSURE(ppoll);
    went_idle();
    return real_ppoll(fds, n, ts, ss);
}

int select(int n, fd_set *r, fd_set *w, fd_set *e, struct timeval *tv) {
    ENSURE(select);
    went_idle();
    return real_select(n, r, w, e, tv);
}

int pselect(int n, fd_set *r, fd_set *w, fd_set *e, const struct timespec *ts,
            const sigset_t *ss) {
    ENSURE(pselect);
    went_idle();
    return real_pselect(n, r, w, e, ts, ss);
}
