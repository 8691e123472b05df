"""`python -m gaia.replicate.agent --run-dir D --id N`: one replica's server and replayer.

The agent starts the replica's server under the shim once its APUS replica (node.py) is
up, feeds it every committed input in log order while it is a backup (Replayer over the
replica's own committed log), and acts on roles.decide():
  PROMOTE   replay up to the first entry of the new view (everything committed before
            it), hold the replayer there, open the serve gate for that view, wait for the
            ring to say LEADER, then end the replay connections (the new leader proposes
            their CLOSE, so every backup ends them too) — the server now serves clients;
  DEMOTE    kill the server (its client connections must not run unreplicated) and
            the APUS replica (a deposed replica must not stay a voter that may be
            elected while nothing here can serve); the replica comes back by a restart;
  SERVER_DIED / STEP_OUT  report the crash; a serving replica also kills its own APUS
            replica so that the group elects another leader.
It writes its state to r<N>/agent.json and answers digest/applied questions on
r<N>/agent.sock (control.py).
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import sys
import threading
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import asdict
from pathlib import Path
from typing import Any

from apps.base import Server
from gaia.apus.reader import CommittedLogReader
from gaia.apus.ringio import ring_name
from gaia.apus.runtime.spec import GroupSpec
from gaia.apus.runtime.status import ReplicaStatus, pid_alive, read_status
from gaia.errors import GaiaError, report
from gaia.intercept import ring_layout as RL
from gaia.intercept.checkpoint_store import Checkpoint, CheckpointError, CheckpointStore
from gaia.intercept.feed import LogFeed
from gaia.intercept.guard import Guard
from gaia.intercept.guard_session import Session, framing
from gaia.intercept.local_group import LocalReplica
from gaia.intercept.replayer import Replayer
from gaia.intercept.ring import Ring
from gaia.intercept.trust import trusting
from gaia.replicate import roles
from gaia.replicate.control import SOCKET_NAME, ControlServer
from gaia.replicate.gate import ServeGate
from gaia.replicate.guarding import make_guard, serve_checkpoints
from gaia.replicate.servers import after_start, make_server
from gaia.replicate.spec import ReplicateSpec
from gaia.replicate.status import (
    AGENT_FILE,
    BACKUP,
    DEPOSED,
    FAILED,
    PROMOTING,
    SERVING,
    STARTING,
    STOPPED,
    AgentStatus,
    read_agent_statuses,
    write_agent_status,
)

log = logging.getLogger(__name__)
POLL_S = 0.005
STATUS_EVERY_S = 0.5
REPLAY_TIMEOUT_S = 60.0


class AgentError(GaiaError):
    """Something that stops this replica from serving or replaying (reported, not raised
    to the user: the group goes on without it)."""


class ReplicaAgent:
    def __init__(self, run_dir: Path, replica: int, recover: bool = False) -> None:
        self.run_dir = Path(run_dir)
        self.recover = recover
        self.spec = ReplicateSpec.load(self.run_dir)
        self.id = replica
        self.dir = ReplicateSpec.replica_dir(self.run_dir, replica)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.apus_dir = ReplicateSpec.apus_dir(self.run_dir)
        self.group = GroupSpec.load(self.apus_dir)
        self.stop_event = threading.Event()
        self.status = AgentStatus(replica, os.getpid(), STARTING,
                                  host=self.spec.hosts.get(replica, "127.0.0.1"),
                                  app_port=self.spec.app_ports.get(replica))
        self.ring: Ring | None = None
        self.gate: ServeGate | None = None
        self.reader: CommittedLogReader | None = None
        self.server: Server | None = None
        self.member: LocalReplica | None = None  # what the guard works on
        self.guard: Guard | None = None
        self.checkpoints: Any = None  # CheckpointServer
        self.control: ControlServer | None = None
        self.lock = threading.RLock()  # one of: a step, a checkpoint, a digest
        self.exits = ExitStack()  # undone at shutdown
        self._status_at = 0.0
        self._guard_at = 0.0

    @property
    def replayer(self) -> Replayer | None:
        return self.member.replayer if self.member is not None else None

    @replayer.setter
    def replayer(self, value: Replayer | None) -> None:
        assert self.member is not None
        self.member.replayer = value

    # ------------------------------------------------------------------ lifecycle
    def run(self) -> int:
        self._write()
        self.control = ControlServer(self.dir / SOCKET_NAME, self.answer)
        try:
            self._attach()
            assert self.ring is not None
            # this process's own clients of its server (digest, snapshot, setup) may
            # give it input while it is a backup (gaia/intercept/trust.py)
            self.exits.enter_context(trusting(self.ring, self.spec.app_ports[self.id]))
            self._start_server()
            self._start_guard()
            # the whole log cannot be replayed once APUS compacted it: a checkpoint must
            compacted = self.reader is not None and self.reader.log.first > 1
            if not ((self.recover or compacted) and self._recover_from_peer()):
                self.replayer = self._new_replayer(after=0)
            self._set(BACKUP)
            while not self.stop_event.is_set():
                with self.lock:  # not while a checkpoint stops and restarts the server
                    self.step()
                self.stop_event.wait(POLL_S)
            return 0
        except GaiaError as exc:
            self._fail(exc.problem + (f" — fix: {exc.fix}" if exc.fix else ""))
            return exc.exit_code
        finally:
            self.shutdown()

    def _attach(self) -> None:
        """Map the APUS replica's ring, serve gate and committed log (it made them)."""
        deadline = time.monotonic() + self.spec.server_timeout
        problem = ""
        while time.monotonic() < deadline and not self.stop_event.is_set():
            try:
                ring = self.ring or Ring.open(ring_name(self.group.group_id, self.id))
                self.ring = ring
                if ring.state not in (RL.REPLICA_BACKUP, RL.REPLICA_LEADER):
                    raise GaiaError("the APUS replica has not published its role yet")
                self.gate = self.gate or ServeGate.open(self.group.group_id, self.id)
                self.reader = CommittedLogReader(self.group.group_id, self.id)
                return
            except GaiaError as exc:
                problem = exc.problem
                time.sleep(0.02)
        raise AgentError(f"replica {self.id}: its APUS replica did not come up within "
                         f"{self.spec.server_timeout:.0f} s ({problem})",
                         f"see {self.apus_dir}/r{self.id}/replica.log")

    def _start_server(self) -> None:
        data = self.dir / "data"
        shutil.rmtree(data, ignore_errors=True)  # a (re)started replica replays from scratch
        self.server = make_server(self.spec, self.id, data)
        try:
            self.server.start(timeout=self.spec.server_timeout)
            after_start(self.spec, self.server)
        except GaiaError as exc:
            raise AgentError(f"replica {self.id}: the {self.spec.name} server did not start: "
                             f"{exc.problem}", exc.fix or "read the server log in "
                             f"{data}") from None
        self.status.server_pid = self.server.pid
        self._write()

    def _new_replayer(self, after: int, sessions: Sequence[Session] = ()) -> Replayer:
        """A running replayer from entry after+1 (re-opening a checkpoint's sessions)."""
        assert self.reader is not None and self.ring is not None and self.server is not None
        return Replayer(LogFeed(self.reader), self.ring, self.server.port, host=self.server.host,
                        after=after, timeout=REPLAY_TIMEOUT_S, sessions=sessions,
                        framing=framing(self.spec.app) if self.spec.app else None,
                        alive=self.server.alive).start()

    # ------------------------------------------------------------------ the guard
    def _start_guard(self) -> None:
        """Checkpoints of this replica (when it is a backup), served to its peers."""
        assert self.ring is not None and self.server is not None and self.reader is not None
        self.member = LocalReplica(f"r{self.id}", self.ring, self.server)
        if self.spec.app is None:
            return  # a generic command has no snapshot
        store = CheckpointStore(self.dir / "checkpoints")
        self.checkpoints = serve_checkpoints(store, self.server.host,
                                             self.spec.checkpoint_ports.get(self.id, 0),
                                             take=self._checkpoint_for_peer)
        self.status.checkpoint_port = self.checkpoints.address[1]
        self.guard = make_guard(self.member, self.reader, store, self.spec.app,
                                self._new_replayer, self.spec.checkpoint_every)

    def _recover_from_peer(self) -> bool:
        """Restore the newest checkpoint a live backup serves and replay the log suffix
        after it (Guard.recover); False (full replay instead) when no peer has one."""
        assert self.guard is not None or self.spec.app is None
        if self.guard is None:
            return False
        for peer, where in self._checkpoint_sources():
            self.guard.fetch_from = where
            try:
                done = self.guard.recover()
            except CheckpointError as exc:
                log.warning("no checkpoint from r%d: %s", peer, exc.problem)
                continue
            self.status.recovered_from = (f"checkpoint {done.checkpoint.index} of "
                                          f"{done.checkpoint.source} + "
                                          f"{done.suffix_entries} entries")
            log.warning("replica %d recovered from %s", self.id, self.status.recovered_from)
            return True
        self.status.recovered_from = "the whole log (no peer checkpoint)"
        if self.server is not None and not self.server.alive():
            self._start_server()  # a failed attempt stopped it: replay into an empty one
            assert self.member is not None
            self.member.server = self.server
        return False

    def _checkpoint_for_peer(self) -> Checkpoint:
        """A checkpoint taken now for a peer that restarts after the group compacted its
        log (APUS compacts behind executed entries, not behind checkpoints): only a
        backup can pause its replay for one."""
        if self.guard is None or self.status.state != BACKUP:
            raise CheckpointError(f"replica {self.id} is {self.status.state}, not a backup: "
                                  "it cannot take a checkpoint now", "ask another replica")
        with self.lock:
            return self.guard.checkpoint()

    def _checkpoint_sources(self) -> list[tuple[int, tuple[str, int]]]:
        """(peer, (host, port)) of every guard that may serve a checkpoint: the backups
        whose status files this host holds, then the fixed ports of the spec (peers on
        other hosts), each once."""
        out = [(r, (a.host, a.checkpoint_port))
               for r, a in read_agent_statuses(self.run_dir, self.spec).items()
               if r != self.id and a.state == BACKUP and a.checkpoint_port]
        for r, port in sorted(self.spec.checkpoint_ports.items()):
            where = (self.spec.hosts.get(r, "127.0.0.1"), port)
            if r != self.id and where not in {w for _, w in out}:
                out.append((r, where))
        return out

    def shutdown(self) -> None:
        if self.checkpoints is not None:
            self.checkpoints.stop()
        if self.replayer is not None:
            self.replayer.stop()
        if self.server is not None:
            self.server.stop()
            if self.status.state not in (FAILED, DEPOSED):  # else kept for a post-mortem
                for kept in ("data", "checkpoints"):
                    shutil.rmtree(self.dir / kept, ignore_errors=True)
        if self.status.state not in (FAILED, DEPOSED):
            self._set(STOPPED)
        if self.control is not None:
            self.control.close()
        self.exits.close()
        for seg in (self.reader, self.gate, self.ring):
            if seg is not None:
                seg.close()

    # ------------------------------------------------------------------ one step
    def apus_status(self) -> ReplicaStatus | None:
        return read_status(self.apus_dir, self.id)

    def step(self) -> None:
        st = self.apus_status()
        role = st.role if st is not None and pid_alive(st.pid) else "down"
        seen = roles.Observed(
            state=self.status.state, apus_role=role, apus_view=st.view if st else 0,
            serving_view=self.status.view,
            server_alive=self.server is not None and self.server.alive(),
            replay_failed=self.replayer is not None and self.replayer.error is not None)
        action = roles.decide(seen)
        if action == roles.PROMOTE:
            self._promote(seen.apus_view)
        elif action == roles.DEMOTE:
            self._demote(role, seen.apus_view)
            self._step_out(st)
        elif action == roles.SERVER_DIED:
            self._server_died()
        elif action == roles.STEP_OUT:
            self._server_died()
            self._step_out(st)
        elif self.status.state == BACKUP:
            self._guard_round()
        self._track_applied()

    @staticmethod
    def _step_out(st: ReplicaStatus | None) -> None:
        """Kill this replica's APUS replica: nothing here can serve any more, so it must
        neither lead nor be elected (the group elects another leader among the rest)."""
        if st is not None and pid_alive(st.pid):
            os.kill(st.pid, signal.SIGKILL)

    def _guard_round(self) -> None:
        """Periodic checkpoints (spec.checkpoint_every entries) by the guard, between
        steps, so a snapshot that restarts the server never looks like a crash."""
        now = time.monotonic()
        if self.guard is None or not self.spec.checkpoint_every or now - self._guard_at < 0.5:
            return
        self._guard_at = now
        try:
            self.guard.tick()
        except GaiaError as exc:
            log.warning("guard: %s", exc.one_line())

    def _track_applied(self) -> None:
        """Let APUS compact what this replica has executed; report progress now and then."""
        if self.reader is None:
            return
        if self.status.state == SERVING:
            applied = self.reader.commit_index()  # the leader executes inputs at commit
        elif self.replayer is not None:
            applied = self.replayer.applied
        else:
            return
        self.reader.applied(applied)
        self.status.applied = applied
        if time.monotonic() - self._status_at > STATUS_EVERY_S:
            self._write()

    # ------------------------------------------------------------------ role changes
    def _still_leader(self, view: int) -> bool:
        st = self.apus_status()
        return st is not None and st.role == "leader" and st.view == view

    def _view_start(self, view: int) -> int | None:
        """A committed index at or after the first entry of `view` (the new leader's
        NOOP; every entry before it is committed too): the first one, or the replayer's
        position if it is past it already. None if leadership is lost meanwhile."""
        assert self.reader is not None and self.replayer is not None
        log_ = self.reader.log
        i = max(log_.first, self.replayer.applied)
        began = time.monotonic()
        noted = began
        while time.monotonic() - began < REPLAY_TIMEOUT_S and not self.stop_event.is_set():
            commit = self.reader.commit_index()
            while i <= commit:
                if log_.view_of(i) >= view:
                    return i
                i += 1
            if not self._still_leader(view):
                return None
            if time.monotonic() - noted > 2.0:
                noted = time.monotonic()
                log.warning("replica %d leads in view %d but its log commits only up to %d "
                            "(last %d of view %d) after %.0f s", self.id, view, commit,
                            log_.last, log_.view_of(log_.last), noted - began)
            self.reader.wait_commit(commit, 0.02)
        return None

    def _promote(self, view: int) -> None:
        assert self.replayer is not None and self.ring is not None and self.gate is not None
        began = time.monotonic()
        self._set(PROMOTING)
        start = self._view_start(view)
        if start is None:
            self._back_to_backup()
            return
        replayer = self.replayer
        replayer.pause_at(start)
        try:
            replayer.wait_quiesced(REPLAY_TIMEOUT_S)
        except (GaiaError, TimeoutError) as exc:
            raise AgentError(f"replica {self.id}: could not replay the committed suffix "
                             f"before taking over in view {view}: {exc}",
                             "see agent.log; restart the replica") from None
        self.ring.reclaim()
        self.gate.open_for(view)
        deadline = time.monotonic() + 5.0
        while self.ring.state != RL.REPLICA_LEADER:
            if not self._still_leader(view) or time.monotonic() > deadline:
                self.gate.shut()
                replayer.resume()
                self._back_to_backup()
                return
            time.sleep(0.0005)
        replayer.stop(close_connections=False)
        replayer.close_connections()  # proposed as CLOSE by the new leader
        self.replayer = None
        self.status.view = view
        self._set(SERVING)
        log.warning("replica %d serves in view %d from index %d (takeover %.1f ms)",
                    self.id, view, start, (time.monotonic() - began) * 1e3)

    def _back_to_backup(self) -> None:
        """Leadership was lost before the takeover finished: go on replaying."""
        self._set(BACKUP)

    def _demote(self, role: str, view: int) -> None:
        assert self.server is not None and self.gate is not None
        self.gate.shut()
        self.server.process.kill()  # type: ignore[attr-defined]
        self._release_log()
        self.status.error = (
            f"replica {self.id}: its APUS replica is {role} in view {view} while its server "
            f"served in view {self.status.view}; the server and the APUS replica were stopped "
            "so that no client input runs unreplicated and no deposed replica is elected "
            "— restart the replica to bring it back")
        self._set(DEPOSED)
        print(self.status.error, flush=True)

    def _server_died(self) -> None:
        assert self.server is not None
        proc = getattr(self.server, "process", None)
        code = proc.popen.poll() if proc is not None else None
        tail = proc.log_tail(3) if proc is not None else ""
        last = tail.strip().splitlines()[-1:] or ["(empty)"]
        self._fail(f"replica {self.id}: the {self.spec.name} server (pid "
                   f"{self.status.server_pid}) died with exit code {code} while this replica "
                   f"was {self.status.state} (every entry up to {self.status.applied} was "
                   f"executed); its log ends: {last[0].strip()}")

    def _release_log(self) -> None:
        """A replica that no longer executes must not hold back APUS's log compaction:
        give up its reader cursor (it comes back through a restart)."""
        if self.reader is not None:
            self.reader.close()
            self.reader = None

    def _fail(self, why: str) -> None:
        if self.replayer is not None:
            self.replayer.stop()
            self.replayer = None
        self._release_log()
        self.status.error = why
        self._set(FAILED)
        print(why, flush=True)

    # ------------------------------------------------------------------ reporting
    def _set(self, state: str) -> None:
        self.status.state = state
        self._write()

    def _write(self) -> None:
        self._status_at = time.monotonic()
        pid = self.server.pid if self.server is not None else None
        if pid:  # a restore or checkpoint may restart the server (kept when it died)
            self.status.server_pid = pid
        write_agent_status(self.dir / AGENT_FILE, self.status)

    def answer(self, request: dict[str, Any]) -> dict[str, Any]:
        """Control requests: status, digest, wait_applied {index, timeout}."""
        op = request.get("op")
        if op == "status":
            return asdict(self.status)
        if op == "digest":
            if self.server is None or not self.server.alive():
                raise GaiaError(f"replica {self.id} has no running server",
                                "check `gaia status`")
            with self.lock:
                return {"digest": self.server.digest()}
        if op == "wait_applied":
            index, timeout = int(request["index"]), float(request.get("timeout", 60))
            replayer = self.replayer
            if self.status.state == SERVING or replayer is None:
                return {"applied": self.status.applied}
            replayer.wait_applied(index, timeout)
            return {"applied": replayer.applied}
        if op == "checkpoint":
            if self.guard is None:
                raise GaiaError(f"replica {self.id} has no guard (a generic command)",
                                "replicate one of the known apps")
            with self.lock:
                ck = self.guard.checkpoint()
            return {"index": ck.index, "digest": ck.digest, "size": ck.size}
        raise GaiaError(f"unknown agent request {op!r}",
                        "use status, digest, wait_applied or checkpoint")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m gaia.replicate.agent")
    parser.add_argument("--run-dir", required=True, type=Path)
    parser.add_argument("--id", required=True, type=int)
    parser.add_argument("--recover", action="store_true",
                        help="restore a peer's newest checkpoint, then replay the suffix")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(message)s")
    agent = ReplicaAgent(args.run_dir, args.id, recover=args.recover)
    signal.signal(signal.SIGTERM, lambda *_: agent.stop_event.set())
    signal.signal(signal.SIGINT, lambda *_: agent.stop_event.set())
    try:
        return agent.run()
    except GaiaError as exc:
        report(exc)
        return exc.exit_code


if __name__ == "__main__":
    sys.exit(main())
