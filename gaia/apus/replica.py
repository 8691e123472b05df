"""`python -m gaia.apus.replica --run-dir D --id N`: one APUS replica process.

Started by `gaia apus up` (and restarted by tests and fault campaigns) through
gaia.proc.spawn; reads the group's spec from D/group.json, keeps its durable state in
D/r<N>/, writes its status there and, as leader, D/deployment.json. SIGTERM stops it
cleanly; SIGKILL is what the fault campaigns use.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from gaia.errors import GaiaError, report


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gaia.apus.replica")
    parser.add_argument("--run-dir", required=True, type=Path)
    parser.add_argument("--id", required=True, type=int)
    args = parser.parse_args(argv)
    from gaia.apus.runtime.node import ReplicaRunner

    runner = ReplicaRunner(args.run_dir, args.id)

    def stop(signum: int, frame: object) -> None:
        runner.stop = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        runner.setup()
        print(f"replica {args.id} ready (group {runner.spec.group_id})", flush=True)
        runner.run()
    except GaiaError as exc:
        report(exc)
        return exc.exit_code
    finally:
        if runner.core is not None:
            runner.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
