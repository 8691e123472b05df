"""Recording histories: outcomes, thread safety, persistence, third-party parsers."""

from __future__ import annotations

import itertools
import threading
from pathlib import Path

import pytest

from gaia.checker.formats import load_expected, parse_edn_kv, parse_jepsen_log
from gaia.checker.history import Operation, Recorder, load_history, save_history

DATA = Path(__file__).parent / "data"


def test_recorder_times_and_outcomes():
    ticks = iter(range(100, 200))
    rec = Recorder(clock=lambda: next(ticks))
    with rec.op(1, "write", "k", 5) as op:
        op.ok()
    with rec.op(2, "cas", "k", (5, 6)) as op:
        op.fail()
    with pytest.raises(TimeoutError), rec.op(3, "read", "k") as op:
        raise TimeoutError("no reply")
    pending = rec.invoke(4, "append", "k", "x")
    ops = rec.history()
    assert [(o.process, o.outcome) for o in ops] == [
        (1, "ok"),
        (2, "fail"),
        (3, "unknown"),
        (4, "unknown"),
    ]
    assert (ops[0].invoke_ns, ops[0].complete_ns) == (100, 101)
    assert ops[2].complete_ns is None and ops[3].complete_ns is None
    rec.complete(pending, "ok")
    assert rec.history()[3].outcome == "ok"
    with pytest.raises(ValueError, match="already completed"):
        rec.complete(pending, "ok")


def test_op_body_without_verdict_is_an_error():
    rec = Recorder()
    with pytest.raises(RuntimeError, match="without calling"), rec.op(0, "read", "k"):
        pass
    assert rec.history()[0].outcome == "unknown"


def test_bad_ops_are_rejected():
    with pytest.raises(ValueError, match="op kind"):
        Recorder().invoke(0, "delete", "k")
    with pytest.raises(ValueError, match="cas input"):
        Operation(0, "cas", "k", 5, None, 0, 1, "ok")
    with pytest.raises(ValueError, match="before it is invoked"):
        Operation(0, "read", "k", None, 1, 5, 4, "ok")


def test_recorder_is_thread_safe_and_round_trips(tmp_path: Path):
    rec = Recorder()

    def client(process: int) -> None:
        for i in range(200):
            with rec.op(process, "cas", "k", (i, i + 1)) as op:
                op.ok()
            with rec.op(process, "get", "k") as op:
                op.ok(f"v{i}")

    threads = [threading.Thread(target=client, args=(p,)) for p in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ops = rec.history()
    assert len(ops) == 1600
    for process in range(4):
        mine = [o for o in ops if o.process == process]
        assert len(mine) == 400
        # one client's ops never overlap: each starts after the previous one completed
        assert all(a.complete_ns <= b.invoke_ns for a, b in itertools.pairwise(mine))
    path = rec.save(tmp_path / "h.jsonl")
    assert load_history(path) == ops
    assert isinstance(load_history(path)[0].value, tuple)


def test_save_history_writes_one_op_per_line(tmp_path: Path):
    ops = [Operation("c1", "put", "a", "x", None, 1, 2, "ok")]
    path = save_history(ops, tmp_path / "one.jsonl")
    assert len(path.read_text().splitlines()) == 1
    assert load_history(path) == ops


def test_jepsen_log_parsing():
    ops = parse_jepsen_log(DATA / "jepsen-etcd" / "etcd_000.log")
    first = ops[0]
    assert (first.process, first.kind, first.output, first.outcome) == (3, "read", None, "ok")
    cas = [o for o in ops if o.kind == "cas"]
    assert cas[0].value == (3, 0) and cas[0].outcome == "ok"
    assert any(o.outcome == "fail" for o in cas)
    infos = [o for o in ops if o.outcome == "unknown"]
    assert infos and all(o.complete_ns is None for o in infos)
    assert all(o.value != ":timed-out" for o in infos)
    # the mixed tab/space separated lines of some logs parse too
    assert len(parse_jepsen_log(DATA / "jepsen-etcd" / "etcd_002.log")) > 50


def test_expected_csv_covers_102_logs():
    expected = load_expected(DATA / "jepsen-etcd" / "expected.csv")
    assert len(expected) == 102 and "etcd_095.log" not in expected
    assert all((DATA / "jepsen-etcd" / name).is_file() for name in expected)


def test_edn_kv_parsing():
    ops = parse_edn_kv(DATA / "kv" / "c01-ok.txt")
    assert len(ops) == 58
    append = ops[0]
    assert (append.kind, append.key, append.value, append.outcome) == (
        "append",
        "0",
        "x 0 0 y",
        "ok",
    )
    gets = [o for o in ops if o.kind == "get"]
    assert gets and all(o.value is None and isinstance(o.output, str) for o in gets)


def test_malformed_third_party_lines_are_reported(tmp_path: Path):
    orphan = tmp_path / "orphan.log"
    orphan.write_text("INFO  jepsen.util - 3\t:ok\t:read\t1\n")
    with pytest.raises(ValueError, match=r"orphan\.log:1: completion without an invocation"):
        parse_jepsen_log(orphan)
    odd = tmp_path / "odd.txt"
    odd.write_text(
        '{:process 0, :type :invoke, :f :get, :key "a", :value nil}\n'
        '{:process 0, :type :maybe, :f :get, :key "a", :value "x"}\n'
    )
    with pytest.raises(ValueError, match=r"odd\.txt:2: unknown op type :maybe"):
        parse_edn_kv(odd)
    garbage = tmp_path / "garbage.txt"
    garbage.write_text("hello\n")
    with pytest.raises(ValueError, match="not an op map"):
        parse_edn_kv(garbage)
