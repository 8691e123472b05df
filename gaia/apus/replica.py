"""`python -m gaia.apus.replica --run-dir D --id N`: one APUS replica process.

Started by `gaia apus up` (and restarted by tests and fault campaigns) through
gaia.proc.spawn; reads the group's spec from D/group.json, keeps its durable state in
D/r<N>/, writes its status there and, as leader, D/deployment.json. SIGTERM stops it
cleanly; SIGKILL is what the fault campaigns use.

`serve()` is the process body every replica flavour shares (plain, gated for a
replicated server, moving under TRIPOD): they differ only in their runner class.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gaia.errors import GaiaError, report


def replica_args(prog: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    """--run-dir (the APUS group dir) and --id, as every replica process takes them."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--run-dir", required=True, type=Path, help="the APUS group dir")
    parser.add_argument("--id", required=True, type=int)
    return parser.parse_args(argv)


def serve(runner: Any, ready: str = "replica") -> int:
    """Run a ReplicaRunner (or subclass) until SIGTERM/SIGINT; a GaiaError becomes one
    line and its exit code; the runner's durable state is closed cleanly either way."""
    def stop(signum: int, frame: object) -> None:
        runner.stop = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        runner.setup()
        print(f"{ready} {runner.id} ready (group {runner.spec.group_id})", flush=True)
        runner.run()
    except GaiaError as exc:
        report(exc)
        return exc.exit_code
    finally:
        if runner.core is not None:
            runner.shutdown()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = replica_args("python -m gaia.apus.replica", argv)
    from gaia.apus.runtime.node import ReplicaRunner

    return serve(ReplicaRunner(args.run_dir, args.id))


if __name__ == "__main__":
    sys.exit(main())
