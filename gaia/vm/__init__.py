"""VM fault tolerance (proposal §2.3): leader and major-backup QEMU guests fed identical
inputs, synced by sending only the pages that diverged, found with Merkle trees.

Modules, from the bottom up:
- hashing     XXH64 / XXH3-64 in numba (page batches, prange); `xxh64()` for any buffer.
- merkle      trees over the union of two dirty sets (tree adjustment).
- channel     the leader <-> backup sync conversation as bytes (ComparisonChannel);
              `BackupEndpoint.handle` is what APUS calls on the backup, carrying the
              reply in its ack payload.
- track       Algorithm 1 (level-batched or per node), with comparison counts.
- pagesync    one sync of two paused PageStores: dirty detection, tree, Algorithm 1,
              copy, verification (IncompleteSyncError).
- process_backend, forkclone   the same pipeline over forked processes' memory.
- ordering    InputOrderer (APUS agrees on inbound frames) + LocalOrderer.
- apus_binding   the members on APUS: ApusOrderer, Algorithm 1 as APUS requests/replies,
              the major backup outranking the standby on failover.
- frames, switch   the frame switch: tap for clients, QEMU stream netdevs for VMs,
              output checker, backup gate, sync-on-SYN.
- guest, guest_mariadb, guest_python   guests from Debian packages (redis, memcached,
              mariadbd with a prepared datadir, SecantusDB on the host's CPython).
- qemu, qmp, sync, group   QEMU + QMP, clone / sync / standby / failover.
- runner, ycsb_infra   `invoke vm.sync-run` and `invoke ycsb --infra vm`.
- faults      `leader_kill_run`: the leader-VM kill the fault campaigns call.
"""
