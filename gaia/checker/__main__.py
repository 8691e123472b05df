"""`python -m gaia.checker FILE...`: check recorded histories and print verdicts and times.

Formats by suffix: `.jsonl` (our recorder), `.log` (Jepsen etcd), `.txt`/`.edn` (EDN kv).
Exit status: 0 all linearizable, 1 some history illegal, 3 some verdict unknown.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from gaia.checker.formats import parse_edn_kv, parse_jepsen_log
from gaia.checker.history import Operation, load_history
from gaia.checker.linearizability import KV, REGISTER, Model, check
from gaia.errors import ConfigError, GaiaError, report

_KV_KINDS = {"get", "put", "append"}


def load_any(path: Path) -> tuple[list[Operation], Model]:
    """Parse a history by its suffix and pick the model its op kinds imply."""
    if not path.is_file():
        raise ConfigError(
            f"history file {path} does not exist", "pass a path to a recorded history"
        )
    if path.suffix == ".log":
        return parse_jepsen_log(path), REGISTER
    if path.suffix in (".txt", ".edn"):
        return parse_edn_kv(path), KV
    if path.suffix == ".jsonl":
        ops = load_history(path)
        return ops, KV if any(op.kind in _KV_KINDS for op in ops) else REGISTER
    raise ConfigError(
        f"cannot tell the format of {path}", "use .jsonl (recorder), .log (Jepsen) or .txt/.edn"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gaia.checker", description=__doc__)
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--budget", type=float, default=60.0, help="seconds per history")
    parser.add_argument("--witness", action="store_true", help="explain illegal verdicts")
    args = parser.parse_args(argv)
    worst = 0
    total = 0.0
    try:
        for path in args.files:
            ops, model = load_any(path)
            started = time.monotonic()
            result = check(ops, model, budget_s=args.budget)
            elapsed = time.monotonic() - started
            total += elapsed
            print(f"{path.name}\t{len(ops)} ops\t{model.name}\t{result.verdict}\t{elapsed:.3f} s")
            if args.witness and result.witness is not None:
                print(result.witness.describe())
            worst = max(worst, {"ok": 0, "illegal": 1, "unknown": 3}[result.verdict])
    except GaiaError as exc:
        report(exc)
        return exc.exit_code
    print(f"total\t{len(args.files)} histories\t{total:.3f} s")
    return worst


if __name__ == "__main__":
    sys.exit(main())
