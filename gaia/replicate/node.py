"""`python -m gaia.replicate.node --run-dir D --id N`: an APUS replica behind a serve gate.

It is the runtime's replica process (gaia.apus.runtime.node.ReplicaRunner) with one
change: what it publishes to its input ring. The runtime publishes LEADER as soon as it
leads; here it publishes LEADER only while the local agent has opened the serve gate
(gate.py) for the current view, and BACKUP otherwise, so the server's shim keeps
treating input as replayed until the agent has executed the old view's committed suffix.
D is the APUS group's directory (the deployment's apus/).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from gaia.apus.replica import replica_args, serve
from gaia.apus.runtime.node import ReplicaRunner
from gaia.replicate.gate import ServeGate


class GatedReplicaRunner(ReplicaRunner):
    gate: ServeGate | None = None

    def setup(self) -> None:
        self.gate = ServeGate.create(self.spec.group_id, self.id)
        super().setup()

    def _serves(self) -> bool:
        gate_open = self.gate is not None and self.gate.view == self.core.view
        return self.core.is_leader and gate_open

    def shutdown(self) -> None:
        super().shutdown()
        if self.gate is not None:
            self.gate.shut()
            self.gate.unlink()


def main(argv: Sequence[str] | None = None) -> int:
    args = replica_args("python -m gaia.replicate.node", argv)
    return serve(GatedReplicaRunner(args.run_dir, args.id), ready="gated replica")


if __name__ == "__main__":
    sys.exit(main())
