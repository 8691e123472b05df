"""Low-level building blocks for numba hot loops shared by APUS, the shim ring and VM sync:
atomic loads/stores with explicit memory ordering, and syscalls (clock, futex, yield,
sleep, CPU pinning) callable from nopython code."""
