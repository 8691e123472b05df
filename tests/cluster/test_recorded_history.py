"""End to end: clients record a real Redis history while the nemesis pauses the server;
the checker accepts it, and rejects it once a stale read is planted into it.

This is the pipeline a fault campaign uses (recorder -> nemesis -> JSON lines -> checker),
on one unreplicated server in a namespace host, where linearizability must hold.
"""

from __future__ import annotations

import random
import shutil
import threading
import time
from pathlib import Path

import pytest

from gaia.checker.history import Operation, Recorder, load_history
from gaia.checker.linearizability import REGISTER, check
from gaia.cluster.nemesis import Nemesis, Node
from gaia.cluster.netns import NetnsCluster
from tests.cluster.helpers import wait_for_log

redis = pytest.importorskip("redis")
pytestmark = [
    pytest.mark.netns,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server not installed"),
]

CAS = """
if redis.call('get', KEYS[1]) == ARGV[1] then
  redis.call('set', KEYS[1], ARGV[2])
  return 1
end
return 0
"""
PORT = 6400


def client_loop(process: int, address: str, recorder: Recorder, stop: threading.Event) -> None:
    """Random reads, writes and compare-and-sets on three keys, every one recorded."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # No retries: a command re-sent after a timeout could take effect twice.
    conn = redis.Redis(
        host=address,
        port=PORT,
        socket_timeout=0.2,
        socket_connect_timeout=0.2,
        retry=Retry(NoBackoff(), 0),
    )
    cas = conn.register_script(CAS)
    rng = random.Random(process)
    while not stop.is_set():
        key, dice = f"k{rng.randrange(3)}", rng.random()
        try:
            if dice < 0.4:
                with recorder.op(process, "read", key) as op:
                    value = conn.get(key)
                    op.ok(None if value is None else int(value))
            elif dice < 0.8:
                value = rng.randrange(5)
                with recorder.op(process, "write", key, value) as op:
                    conn.set(key, value)
                    op.ok()
            else:
                old, new = rng.randrange(5), rng.randrange(5)
                with recorder.op(process, "cas", key, (old, new)) as op:
                    if cas(keys=[key], args=[old, new]) == 1:
                        op.ok()
                    else:
                        op.fail()
        except redis.RedisError:
            time.sleep(0.02)
    conn.close()


def test_redis_history_under_pauses_is_linearizable(cluster: NetnsCluster, tmp_path: Path):
    h1 = cluster["h1"]
    argv = ["redis-server", "--bind", h1.address, "--port", str(PORT), "--save", ""]
    argv += ["--appendonly", "no", "--protected-mode", "no"]
    server = h1.spawn("redis", argv, tmp_path / "redis.log")
    wait_for_log(server, "Ready to accept connections")
    recorder, stop = Recorder(), threading.Event()
    clients = [
        threading.Thread(target=client_loop, args=(p, h1.address, recorder, stop)) for p in range(3)
    ]
    for thread in clients:
        thread.start()
    with Nemesis([Node("h1", h1, process=server)]) as nemesis:
        for _ in range(2):
            time.sleep(0.4)
            paused = nemesis.pause(["h1"])
            time.sleep(0.5)  # longer than the clients' timeout: replies go missing
            paused.undo()
        time.sleep(0.4)
    stop.set()
    for thread in clients:
        thread.join(10)
    server.stop()

    history = load_history(recorder.save(tmp_path / "history.jsonl"))
    outcomes = {o: sum(op.outcome == o for op in history) for o in ("ok", "fail", "unknown")}
    assert outcomes["ok"] > 50 and outcomes["unknown"] >= 1, outcomes
    result = check(history, REGISTER, budget_s=60)
    assert result.verdict == "ok", result.summary()

    # plant a stale read after two acknowledged writes of values no client uses (0-4), so
    # no open (unknown) op can explain it: write 7, write 8, then read 7
    end = max(op.complete_ns or op.invoke_ns for op in history)
    key = history[-1].key
    stale = [
        Operation(9, "write", key, 7, None, end + 1, end + 2, "ok"),
        Operation(9, "write", key, 8, None, end + 3, end + 4, "ok"),
        Operation(9, "read", key, None, 7, end + 5, end + 6, "ok"),
    ]
    verdict = check(history + stale, REGISTER, budget_s=60)
    assert verdict.verdict == "illegal", verdict.summary()
    assert verdict.witness is not None and verdict.witness.blocked == stale[2]
