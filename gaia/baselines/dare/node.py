"""A DARE-style replica: a sole leader does all remote work; backups stay passive.

DARE (Poke & Hoefler, HPDC'15) replicates with one-sided RDMA driven entirely by the
leader: it writes each entry into every backup's log, learns that the entry landed by
its own remote accesses, and reads the backups' log pointers itself before reusing log
space. Backups' CPUs never send anything. Here the same happens over APUS's shared-
memory regions (gaia.apus.transport, shm):

  leader, per entry: build it (APUS record format), append it to its durable log,
      remote-WRITE it into the ring of every backup's region, then remote-READ each
      backup: memory mode — the entry's canary read back from the backup's ring (the
      write has landed, as DARE's RDMA completion says); fsync mode — the backup's DONE
      word (it has persisted up to there). Commit on a majority, itself included; the
      commit index rides in the next entry. Before reusing a ring slot it remote-reads
      the backup's DONE word. Its memory outliving a crashed backup process (unlike an
      RDMA region, deregistered when its process dies), a backup's liveness is a
      heartbeat timestamp the leader remote-reads (one host, one monotonic clock);
      older than STALL_NS = failed, its acks no longer count (DARE's leader likewise
      drops a backup whose QP fails).
  backup: polls its own ring, accepts whole entries in order, persists them (group
      commit) and stores its DONE word and heartbeat in its OWN region — it never
      writes remotely. With more processes than CPUs it does not spin forever: it
      raises its SLEEPING flag and futex-waits; the leader, which reads that flag after
      writing an entry (Dekker order, full fences on both sides), bumps WAKE and
      futex-wakes it — a wake-up is a signal, not a write into the leader's memory.

Region: COMMIT word (leader writes), STOP word (leader writes), DONE word (backup's own
store), then the entry ring with the same slot layout as the leader's log.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from gaia.apus import wire
from gaia.apus.transport import backoff, make, remote_read_word, remote_wake, remote_write
from gaia.apus.transport.libc import now_ns
from gaia.baselines import closedloop as cl
from gaia.baselines import control as ctl
from gaia.baselines import logbook as lg
from gaia.baselines import node as common
from gaia.lowlevel.atomics import full_fence, load_acquire, store_release

COMMIT = 0
STOP = 64
DONE = 128
HEARTBEAT = 192  # backup's own CLOCK_MONOTONIC stamp, every loop turn; the leader reads it
SLEEPING = 256  # backup's own flag: 1 while it may sleep on its WAKE futex word
WAKE = 320  # futex word (low 32 bits) the leader bumps before a wake-up
RING = 4096
VIEW = 1
STALL_NS = 2_000_000_000  # a backup silent (or freeing no log space) for 2 s has failed
CHECK_NS = 1_000_000  # the leader reads heartbeats at most every 1 ms
STOPPED = 1


def region_size(slots: int, max_payload: int) -> int:
    return RING + slots * lg.slot_bytes_for(max_payload)


@njit(nogil=True, cache=True)
def _word(value: int) -> np.ndarray:
    out = np.zeros(8, dtype=np.uint8)
    for i in range(8):
        out[i] = (value >> (8 * i)) & 0xFF
    return out


@njit(nogil=True, cache=True)
def _room(h, peer: int, index: int, slots: int, policy, state) -> bool:
    """Remote-read the backup's DONE word until slot `index % slots` is free."""
    need = index - slots
    start = 0
    while need > 0 and int(remote_read_word(h, peer, DONE)) < need:
        if start == 0:
            start = now_ns()
        elif now_ns() - start > STALL_NS:
            return False
        backoff.backoff_idle(policy, state)
    return True


@njit(nogil=True, cache=True)
def _check_heartbeats(h, backups: np.ndarray, alive: np.ndarray) -> None:
    """A backup whose heartbeat stamp is older than STALL_NS has failed."""
    now = now_ns()
    for b in range(backups.size):
        if alive[b] and now - np.int64(remote_read_word(h, backups[b], HEARTBEAT)) > STALL_NS:
            alive[b] = 0


@njit(nogil=True, cache=True)
def _wake_sleepers(h, backups: np.ndarray, alive: np.ndarray, wakes: np.ndarray) -> None:
    """After writing an entry: futex-wake every backup that said it may sleep."""
    full_fence()  # our entry writes before our reads of SLEEPING (the backup mirrors it)
    for b in range(backups.size):
        if alive[b] and remote_read_word(h, backups[b], SLEEPING) == 1:
            wakes[b] += 1
            remote_write(h, backups[b], WAKE, _word(wakes[b]), 0, 8)
            remote_wake(h, backups[b], WAKE)


@njit(nogil=True, cache=True)
def leader_run(h, backups: np.ndarray, lb: lg.Logbook, rounds: int, window: int,
               length: int, samples: np.ndarray, words: np.ndarray, fsync: bool,
               alive: np.ndarray, wakes: np.ndarray, policy) -> int:
    """Propose `rounds` entries with at most `window` outstanding; samples[i] is
    propose->commit ns. Returns entries committed (negated when a majority was lost)."""
    nb = backups.size
    majority = (nb + 1) // 2 + 1
    slots = int(lb.meta[lg.LB_SLOTS])
    first = int(lb.meta[lg.LB_LAST]) + 1
    last = first - 1
    commit = first - 1
    persisted = np.full(nb + 1, first - 1, dtype=np.int64)
    starts = np.zeros(window, dtype=np.int64)
    state = backoff.backoff_state()
    local64 = lb.slots.view(np.uint64)
    record = wire.entry_words(length) * 8
    checked = 0
    done = 0
    while done < rounds:
        while cl.may_propose(last, commit, first, window, rounds):
            index = last + 1
            cl.proposed(starts, index)
            off = lg.propose_entry(lb, index, VIEW, commit, length)
            for b in range(nb):
                if alive[b] and _room(h, backups[b], index, slots, policy, state):
                    remote_write(h, backups[b], RING + off, lb.slots, off, record)
                else:
                    alive[b] = 0
            _wake_sleepers(h, backups, alive, wakes)
            lg.sync(lb)
            persisted[0] = index
            last = index
        if now_ns() - checked > CHECK_NS:
            _check_heartbeats(h, backups, alive)
            checked = now_ns()
        canary_at = lg.slot_offset(lb, last) + record - 8
        for b in range(nb):
            if not alive[b]:
                continue
            if fsync:
                seen = int(remote_read_word(h, backups[b], DONE))
            elif remote_read_word(h, backups[b], RING + canary_at) == local64[canary_at // 8]:
                seen = last  # the newest write has landed, so have all before it
            else:
                seen = 0
            persisted[b + 1] = max(persisted[b + 1], seen)
        new_commit = min(lg.quorum_index(persisted, majority), last)
        if new_commit > commit:
            done += cl.committed(starts, samples, first, commit, new_commit)
            commit = max(commit, new_commit)
            store_release(words, ctl.COMMITTED, done)
            backoff.backoff_reset(state)
        else:
            if alive.sum() + 1 < majority:
                return -done
            backoff.backoff_idle(policy, state)
    for b in range(nb):
        if alive[b]:
            remote_write(h, backups[b], COMMIT, _word(commit), 0, 8)
    return done


@njit(nogil=True, cache=True)
def backup_run(region: np.ndarray, lb: lg.Logbook, words: np.ndarray, policy) -> int:
    """Accept entries from the own ring in order until the leader writes STOP."""
    w64 = region.view(np.uint64)
    w32 = region.view(np.uint32)
    max_payload = int(lb.meta[lg.LB_MAX_PAYLOAD])
    scratch = np.zeros(wire.entry_words(max_payload), dtype=np.uint64)
    state = backoff.backoff_state()
    while True:
        store_release(w64, HEARTBEAT // 8, now_ns())
        expected = int(lb.meta[lg.LB_LAST]) + 1
        got = 0
        while True:
            w = (RING + lg.slot_offset(lb, expected)) // 8
            if not lg.snapshot_entry(w64, w, expected, max_payload, scratch):
                break
            lg.accept_entry(lb, scratch, 0)
            expected += 1
            got += 1
        if got > 0:
            lg.sync(lb)
            store_release(w64, DONE // 8, expected - 1)  # own memory: the leader reads it
            store_release(words, ctl.COMMITTED, expected - 1)
            backoff.backoff_reset(state)
        elif load_acquire(w64, STOP // 8) != 0:
            return STOPPED
        elif policy.futex == 0 or state[0] < policy.spins + policy.yields:
            backoff.backoff_idle(policy, state)
        else:  # announce the sleep, look once more, then sleep until woken (or timeout)
            seen = load_acquire(w32, WAKE // 4)
            store_release(w64, SLEEPING // 8, 1)
            full_fence()
            w = (RING + lg.slot_offset(lb, expected)) // 8
            if not lg.snapshot_entry(w64, w, expected, max_payload, scratch):
                backoff.backoff_idle(policy, state, region.ctypes.data + WAKE, seen)
            store_release(w64, SLEEPING // 8, 0)


def backup_policy(replicas: int) -> backoff.BackoffPolicy:
    """Spin when every replica has a CPU; otherwise spin briefly, then futex-sleep (the
    leader wakes us; the timeout keeps the heartbeat fresh)."""
    if backoff.policy_for(replicas) == backoff.SPIN_ONLY:
        return backoff.SPIN_ONLY
    return backoff.BackoffPolicy(spins=200, yields=5, sleep_ns=50_000_000, futex=1)


def leader_policy(replicas: int) -> backoff.BackoffPolicy:
    """Spin when every replica has a CPU; otherwise spin briefly, then keep yielding the
    CPU to the backups it waits for (sleeping would add a timer tick to every entry)."""
    if backoff.policy_for(replicas) == backoff.SPIN_ONLY:
        return backoff.SPIN_ONLY
    return backoff.BackoffPolicy(spins=500, yields=1 << 62, sleep_ns=0, futex=0)


def leader_main(args, control: ctl.Control, lb: lg.Logbook) -> int:
    backups = np.arange(1, args.replicas, dtype=np.int64)
    size = region_size(args.slots, args.max_payload)
    transport = make("shm", args.group, 0, size, [int(b) for b in backups],
                     max_replicas=max(16, args.replicas))
    h = transport.numba_handle()
    alive = np.ones(backups.size, dtype=np.int64)
    wakes = np.zeros(backups.size, dtype=np.int64)
    policy = leader_policy(args.replicas)
    fsync = args.durability == "fsync"
    leader_run(h, backups[:0], lb, 0, 1, 8, np.zeros(1, np.int64), control.words, fsync,
               alive[:0], wakes[:0], policy)  # compile before READY

    def run_once(rounds, window, payload, samples, words):
        return leader_run(h, backups, lb, rounds, window, payload, samples, words, fsync,
                          alive, wakes, policy)

    try:
        code = common.serve_commands(args, control, run_once)
        stop = np.zeros(8, dtype=np.uint8)
        stop[0] = 1
        for b in backups:
            transport.write(int(b), STOP, stop)
        common.write_state(args.run_dir, args.id, lb)
    finally:
        transport.close()
    return code


def backup_main(args, control: ctl.Control, lb: lg.Logbook) -> int:
    size = region_size(args.slots, args.max_payload)
    transport = make("shm", args.group, args.id, size, [0], max_replicas=max(16, args.replicas))
    policy = backup_policy(args.replicas)
    try:
        dummy = np.zeros(RING + 8, dtype=np.uint8)
        dummy[STOP] = 1
        backup_run(dummy, lg.new_logbook(1, 8, lg.open_storage("memory", "x", 0, None, 8)),
                   control.words, policy)  # compile before READY
        control.set_state(ctl.READY)
        reason = backup_run(transport.local, lb, control.words, policy)
        common.write_state(args.run_dir, args.id, lb, reason=int(reason))
    finally:
        transport.close()
    return 0


def main() -> None:
    common.run_replica(__doc__.splitlines()[0], leader_main, backup_main, addresses=False)


if __name__ == "__main__":
    main()
