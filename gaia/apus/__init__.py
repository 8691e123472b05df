"""APUS: Paxos over one-sided writes into the other replicas' memory (objective 1).

Where things are:
  layout.py     the region every replica owns: per-sender blocks (heartbeat, ack, reply,
                doorbell, log ring, mailbox), identical on every replica
  wire.py       byte formats with checksums and trailing canaries (entries, blobs, acks)
  fastpath.py   the normal case (proposal Figure 2) as numba functions: L1 L2 L3 B1 B2
  core.py       the slow path as a pure value you poll() and tick(): view change,
                catch-up, snapshots, membership, recovery, request/reply
  logstore.py   the local log (shared memory, read by local committed-log readers)
  storage.py    durability: memory / fsync (group commit from numba), recovery
  simulator.py  the deterministic simulator and its invariant checker
  runtime/      replica processes, the hot loop, group start/stop, status files,
                in-process (embedded) replicas
  client.py     propose / read / find the leader;  reader.py  committed-log reader
  bench.py      `invoke latency --protocols apus`
  transport/    remote memory regions: shm, tcp, rdma (its own helper)
"""
