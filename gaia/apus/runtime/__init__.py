"""Running APUS replicas as real processes: the group spec, the numba hot loop, the replica
process, the shared segments local readers map, and starting/stopping a whole group."""
