"""Baselines APUS is measured against (issue #6), sharing APUS's durability modes.

- `multipaxos/`: a traditional Multi-Paxos with a stable leader over TCP sockets (every
  message through the kernel; one accept round per entry).
- `dare/`: a DARE-style sole-leader protocol over the same shared-memory regions as APUS;
  the leader performs every remote write and read, backups never write remotely.

Both run as one process per replica (`node` modules) driven by `cluster.BaselineCluster`;
entries use APUS's record format (gaia.apus.wire) and durable log (gaia.apus.storage).
"""
