"""Making an unmodified server replicated (issue 5).

gaia_ring.h       the versioned shim <-> replica shared-memory contract (ring_layout.py
                  mirrors it for Python/numba); shim.c the LD_PRELOAD library, built by
                  build.shim_path(); SYSCALLS.md which calls the servers really use.
ring.py           create/map a ring; numba consumer functions for the replica's hot loop;
                  a Python producer; the connection table and output snapshots.
events.py         the batch encoding of events inside one log entry (the only one).
feed.py           what a backup consumes: CommittedLog / CommittedFeed protocols, LogFeed.
shmlog.py         a committed log in shared memory (tests, single-host runs).
local_commit.py   the replica side without consensus: ring -> ShmLog, in order.
replayer.py       feeds a backup's server one committed event at a time.
trust.py          a process's own (read-only) connections to a backup's server: the shim
                  runs a backup's input only from trusted local peers.
checker.py        compares per-connection output hashes across replicas.
local_group.py    all of it wired on one host (leader + backups) for tests and demos.
guard.py          checkpoints of a backup's server, log truncation, recovery of a replica
                  from checkpoint + log suffix (guard_log, guard_policy, guard_session,
                  checkpoint_store, checkpoint_transfer; guard_load/guard_bench measure it).
"""
