"""One PySyncObj replica (Raft, in Python) serving a replicated dict, driven like the
baselines: a control block, RUN commands executed by whichever replica leads.

PySyncObj is a library, not a server: writes are method calls on a replica's object
(`ReplDict.set(key, value, sync=True)` returns once committed), so the load generator
runs inside the leading replica's process and latency is measured there. Batching is off
(`appendEntriesUseBatch=False`: with it a write waits ~100 ms for the batch). Its journal
(`journalFile`) is written through an mmap and not msync'ed per entry; on tmpfs, as in
the comparison, that equals the others' fsync. Dynamic membership changes are off.
"""

from __future__ import annotations

import hashlib
import threading
import time

import numpy as np

from gaia.baselines import control as ctl
from gaia.baselines import node as common

TICK_S = 0.005


def _conf(args, data_dir):
    from pysyncobj import SyncObjConf

    files = {}
    if data_dir is not None:
        data_dir.mkdir(parents=True, exist_ok=True)
        files = {"journalFile": str(data_dir / "journal"),
                 "fullDumpFile": str(data_dir / "dump")}
    # Elections tolerate 9 replicas time-sharing 2 cores (defaults: 0.4 .. 1.4 s).
    return SyncObjConf(appendEntriesUseBatch=False, dynamicMembershipChange=False,
                       raftMinTimeout=1.0, raftMaxTimeout=3.0, connectionTimeout=3.5,
                       commandsWaitLeader=True, **files)


def digest(items: dict) -> str:
    h = hashlib.blake2b(digest_size=8)
    for key in sorted(items):
        h.update(f"{key}={items[key]!r};".encode())
    return h.hexdigest()


def run_writes(table, prefix: str, rounds: int, window: int, payload: int,
               samples: np.ndarray, words: np.ndarray) -> int:
    """`window` threads issue `rounds` synchronous writes in total; samples[i] = ns."""
    value = "x" * payload
    counter = iter(range(rounds))
    lock = threading.Lock()
    failures = []

    def client() -> None:
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            start = time.perf_counter_ns()
            try:
                table.set(f"{prefix}-{i}", value, sync=True, timeout=30)
            except Exception as exc:  # no leader / timeout: the run ends here
                failures.append(exc)
                return
            samples[i] = time.perf_counter_ns() - start
            words[ctl.COMMITTED] += 1

    threads = [threading.Thread(target=client) for _ in range(window)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done = int((samples > 0).sum())
    samples[:done] = samples[samples > 0]
    return -done if failures else done


def main() -> None:
    p = common.parser(__doc__.splitlines()[0])
    p.add_argument("--addresses", required=True)
    args = p.parse_args()
    args.elected = True

    def body() -> int:
        from pysyncobj import SyncObj
        from pysyncobj.batteries import ReplDict

        control = ctl.Control(ctl.control_path(args.run_dir, args.id), create=False)
        addresses = args.addresses.split(",")
        data_dir = args.data_dir / f"r{args.id}" if args.data_dir else None
        table = ReplDict()
        node = SyncObj(addresses[args.id], [a for i, a in enumerate(addresses) if i != args.id],
                       conf=_conf(args, data_dir), consumers=[table])
        stop = threading.Event()

        def watch_leadership() -> None:
            while not stop.wait(TICK_S):
                control.words[ctl.LEADER] = int(node._isLeader() and node.isReady())
                control.words[ctl.APPLIED] = node.raftLastApplied

        watcher = threading.Thread(target=watch_leadership, daemon=True)
        watcher.start()
        def run_once(rounds, window, payload, samples, words):
            prefix = f"r{args.id}-{int(words[ctl.CMD_SEQ])}"  # keys unique across leaders
            return run_writes(table, prefix, rounds, window, payload, samples, words)

        try:
            code = common.serve_commands(args, control, run_once)
        finally:
            stop.set()
            watcher.join()
            items = table.rawData()
            status = node.getStatus()
            node.destroy()
        common.write_state_dict(args.run_dir, args.id, last=int(status.get("commit_idx", 0)),
                                digest=digest(items), keys=len(items))
        return code

    common.main_guard(body, lambda: ctl.control_path(args.run_dir, args.id))


if __name__ == "__main__":
    main()
