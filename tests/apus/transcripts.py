"""Data-driven protocol scenarios (etcd-raft style): commands in, state and events out.

A file in testdata/ is a series of blocks:

    <command> [args]
    ----
    <expected output lines>

separated by blank lines; `#` lines are comments. Run with APUS_REWRITE=1 to rewrite the
expected outputs from what the code does now (then read the diff!).
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from gaia.apus import fastpath as fp
from gaia.apus import wire
from gaia.apus.simulator import SimConfig, Simulator
from gaia.intercept.events import decode_batch

REWRITE = os.environ.get("APUS_REWRITE") == "1"


class Driver:
    def __init__(self) -> None:
        self.sim: Simulator | None = None

    def run(self, line: str) -> list[str]:
        cmd, *args = shlex.split(line)
        kv = dict(a.split("=", 1) for a in args if "=" in a)
        pos = [a for a in args if "=" not in a]
        if cmd == "new":
            self.sim = Simulator(SimConfig(
                replicas=int(kv.get("replicas", 3)), durability=kv.get("durability", "memory"),
                seed=int(kv.get("seed", 0)), election_ticks=int(kv.get("election", 3))))
            self.sim.log_events = True
            return ["ok"]
        sim = self.sim
        assert sim is not None, "start with `new`"
        leader = sim.leader()
        backup = next((n.id for n in sim.nodes if n.alive and n is not leader), None)
        down = next((n.id for n in sim.nodes if not n.alive), None)
        names = {"leader": leader.id if leader else None, "backup": backup, "down": down}
        pos = [str(names[a]) if names.get(a) is not None else a for a in pos]
        start = len(sim.trace)
        out: list[str] = []
        if cmd == "elect":
            sim.bootstrap()
        elif cmd == "round":
            for _ in range(int(pos[0]) if pos else 1):
                sim.round()
        elif cmd == "stabilize":
            for _ in range(int(kv.get("rounds", 6))):
                sim.round()
        elif cmd == "propose":
            t = sim.propose(int(pos[0]), pos[1].encode())
            out.append(f"ticket {t}")
        elif cmd == "request":
            index = sim.nodes[int(pos[0])].core.request(pos[1].encode())
            out.append(f"index {index}")
        elif cmd == "replies":
            core = sim.nodes[int(pos[0])].core
            got = core.replies(int(pos[1]))
            out += [f"r{p}: {got[p].decode(errors='replace')}" for p in sorted(got)]
        elif cmd in ("crash", "restart", "poll", "tick"):
            for _ in range(int(kv.get("times", 1))):
                getattr(sim, cmd)(int(pos[0]))
        elif cmd == "isolate":
            for other in range(sim.cfg.replicas):
                if other != int(pos[0]):
                    sim.cut.add(frozenset((int(pos[0]), other)))
        elif cmd == "heal":
            sim.heal()
        elif cmd == "late":
            sim.late_write()
        elif cmd == "settle":
            out.append(f"committed through {sim.settle()}")
        elif cmd == "status":
            out += [self._status(n) for n in sim.nodes]
        elif cmd == "log":
            node = sim.nodes[int(pos[0])]
            log = node.core.log
            out += [self._entry(log.entry(i)) for i in range(log.first, log.last + 1)]
        else:
            raise ValueError(f"unknown command {cmd!r}")
        sim.check()
        return sim.trace[start:] + out

    @staticmethod
    def _status(node) -> str:
        c = node.core
        state = "down" if not node.alive else c.role_name()
        return (f"r{node.id} {state} view={c.view} commit={c.commit} last={c.last} "
                f"first={c.log.first} applied={c.applied}"
                + (f" leader=r{int(c.st[fp.S_LEADER])}" if node.alive and c.normal and
                   not c.is_leader else ""))

    @staticmethod
    def _entry(e) -> str:
        if e.kind == wire.K_EVENTS:
            body = ",".join(ev.payload.decode(errors="replace") for ev in decode_batch(e.payload))
        else:
            body = e.payload.decode(errors="replace")
        kind = {wire.K_EVENTS: "events", wire.K_NOOP: "noop", wire.K_CONFIG: "config",
                wire.K_REQUEST: "request", wire.K_APP: "app"}.get(e.kind, str(e.kind))
        return f"{e.index} v{e.view} {kind} {body}".rstrip()


def run_file(path: Path) -> None:
    blocks = path.read_text().split("\n\n")
    driver = Driver()
    rewritten = []
    failures = []
    for block in blocks:
        lines = block.strip("\n").split("\n")
        head = [ln for ln in lines if not ln.startswith("#")]
        if not head or not head[0].strip():
            rewritten.append(block.strip("\n"))
            continue
        comments = [ln for ln in lines if ln.startswith("#")]
        command = head[0]
        expected = head[2:] if len(head) > 1 and head[1] == "----" else []
        got = driver.run(command)
        if got != expected:
            failures.append(f"{path.name}: `{command}`\n  expected:\n    "
                            + "\n    ".join(expected) + "\n  got:\n    " + "\n    ".join(got))
        rewritten.append("\n".join([*comments, command, "----", *got]))
    if REWRITE:
        path.write_text("\n\n".join(rewritten) + "\n")
    elif failures:
        raise AssertionError("\n".join(failures))
