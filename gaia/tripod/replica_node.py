"""`python -m gaia.tripod.replica_node --run-dir D --id N`: the APUS replica of one replica
of an R > 1 TRIPOD task.

It is the replicated-server layer's gated replica (gaia.replicate.node) plus what a
scheduler needs: members are REPLACED. When TRIPOD re-places a replica on another host
(its host died or was cut off), the new incarnation is a new APUS member (a new id,
state.apus_member_id) at a new address. The TRIPOD agent of every surviving replica
rewrites its group.json (members and addresses); this process then
  - maps the new member's address into its tcp transport, and
  - if it leads, changes the group's membership to the file's, one member at a time:
    first the departed incarnation is removed (so it can neither vote nor ack, even if
    it still runs behind a partition), then the new one is added; the leader syncs it
    and its server replays the committed log (catch-up).
D is the replica's APUS group directory.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence

from gaia.apus import fastpath as fp
from gaia.apus.messages import Config
from gaia.apus.replica import replica_args, serve
from gaia.apus.runtime.spec import SPEC_FILE, GroupSpec
from gaia.errors import GaiaError
from gaia.replicate.node import GatedReplicaRunner

CHECK_EVERY_NS = 100_000_000


class MovingReplicaRunner(GatedReplicaRunner):
    """Follows address changes of its peers in group.json (checked every 100 ms)."""

    _spec_mtime: int = 0
    _checked_at: int = 0

    def setup(self) -> None:
        self._spec_mtime = self._mtime()
        super().setup()

    def _mtime(self) -> int:
        try:
            return (self.run_dir / SPEC_FILE).stat().st_mtime_ns
        except OSError:
            return 0

    def _track_members(self) -> None:
        now = time.monotonic_ns()
        if now - self._checked_at >= CHECK_EVERY_NS:
            self._checked_at = now
            mtime = self._mtime()
            if mtime != self._spec_mtime:
                self._follow_addresses(mtime)
            self._reconfigure()
        super()._track_members()

    def _reconfigure(self) -> None:
        """Leader: move the membership one step towards the spec's replicas."""
        core = self.core
        if core is None or not core.is_leader or core.commit < int(core.st[fp.S_VIEW_START]):
            return
        if core.configs and core.configs[-1][0] > core.commit:
            return  # the previous change has not committed yet
        members = dict(core.config.members)
        wanted = set(self.spec.replicas)
        gone = sorted(set(members) - wanted - {self.id})
        new = sorted(wanted - set(members))
        if gone:
            del members[gone[0]]
        elif new:
            members[new[0]] = (True, True, 1)
        else:
            return
        try:
            core.change_config(Config(members))
        except GaiaError as exc:  # a view change in between: next check
            print(f"{time.time():.3f} r{self.id}: membership change deferred: {exc.problem}",
                  flush=True)
            return
        what = f"removed r{gone[0]}" if gone else f"added r{new[0]}"
        print(f"{time.time():.3f} r{self.id}: membership {what}", flush=True)

    def _follow_addresses(self, mtime: int) -> None:
        try:
            spec = GroupSpec.load(self.run_dir)
        except (GaiaError, ValueError, OSError):
            return  # being rewritten: next check
        self._spec_mtime = mtime
        if self.spec.transport != "tcp":
            return
        for peer, address in spec.addresses.items():
            if peer != self.id and self.spec.addresses.get(peer) != address:
                self.transport.remove_peer(peer)
                self.transport.add_peer(peer, address)
                print(f"{time.time():.3f} r{self.id}: member r{peer} at {address}", flush=True)
        self.spec = spec


def main(argv: Sequence[str] | None = None) -> int:
    args = replica_args("python -m gaia.tripod.replica_node", argv)
    return serve(MovingReplicaRunner(args.run_dir, args.id), ready="moving replica")


if __name__ == "__main__":
    sys.exit(main())
