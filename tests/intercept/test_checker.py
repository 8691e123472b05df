"""The output checker's comparison logic on synthetic snapshots (no servers)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from gaia.intercept import ring_layout as L
from gaia.intercept.checker import OutputChecker, fnv1a64, known_command
from gaia.intercept.events import Event, encode_batch
from gaia.intercept.ring import Snapshot


def snapshots(conn_id: int, answers: list[tuple[int, bytes]], splits: list[int] | None = None
              ) -> list[Snapshot]:
    """What a shim records for answers (log index, bytes); `splits[i]` bytes of answer i
    are written only after the next input arrived (a reply written in pieces)."""
    stream = b"".join(a for _, a in answers)
    ends, total = [], 0
    for i, (_, answer) in enumerate(answers):
        total += len(answer)
        late = splits[i] if splits and i + 1 < len(answers) else 0
        ends.append(total - min(late, len(answer)))
    out, prev = [], 0
    for (index, _), end in zip(answers, ends, strict=True):
        seg = stream[prev:end]
        out.append(Snapshot(conn_id, index, end, fnv1a64(stream[:end]), False, len(seg),
                            fnv1a64(seg)))
        prev = end
    return out


answers_st = st.lists(st.binary(min_size=1, max_size=40), min_size=1, max_size=12)


@settings(max_examples=80, deadline=None)
@given(answers_st, st.data())
def test_the_same_answers_split_differently_are_not_a_divergence(answers, data):
    numbered = [(i * 3 + 2, a) for i, a in enumerate(answers)]
    splits = data.draw(st.lists(st.integers(0, 40), min_size=len(answers),
                                max_size=len(answers)))
    checker = OutputChecker()
    checker.add("leader", snapshots(7, numbered))
    checker.add("backup", snapshots(7, numbered, splits))
    report = checker.check()
    assert report.divergences == []
    assert report.compared == len(answers)


@settings(max_examples=80, deadline=None)
@given(answers_st, st.data())
def test_a_changed_answer_is_reported_at_its_input(answers, data):
    bad = data.draw(st.integers(0, len(answers) - 1))
    numbered = [(i * 3 + 2, a) for i, a in enumerate(answers)]
    changed = list(numbered)
    changed[bad] = (numbered[bad][0], numbered[bad][1] + b"!")
    checker = OutputChecker()
    checker.add("leader", snapshots(7, numbered))
    checker.add("backup", snapshots(7, changed))
    report = checker.check()
    assert [(d.conn_id, d.log_index) for d in report.divergences] == [(7, numbered[bad][0])]
    assert report.unexpected == report.divergences


def test_divergence_quotes_the_input_and_names_a_known_command():
    class OneEntryLog:
        payload = encode_batch([Event(L.EV_DATA, 5, b"*1\r\n$4\r\nTIME\r\n"),
                                Event(L.EV_DATA, 6, b"*1\r\n$4\r\nPING\r\n")])

        def commit_index(self) -> int:
            return 1

        def entry(self, index: int) -> bytes:
            return self.payload

        def wait_commit(self, after: int, timeout: float) -> int:
            return 1

    checker = OutputChecker("redis", OneEntryLog())
    checker.add("a", [Snapshot(5, 1, 3, 1, False, 3, 1)])
    checker.add("b", [Snapshot(5, 1, 3, 2, False, 3, 2)])
    (div,) = checker.check().divergences
    assert div.input_preview == b"*1\r\n$4\r\nTIME\r\n"
    assert div.known == "TIME"
    assert "known non-deterministic TIME" in div.describe()


def test_known_commands_per_app():
    assert known_command("redis", b"*1\r\n$9\r\nRANDOMKEY\r\n") == "RANDOMKEY"
    assert known_command("redis", b"*3\r\n$3\r\nSET\r\n$4\r\ntime\r\n$1\r\n1\r\n") is None
    assert known_command("redis", b"PING\r\nspop s\r\n") == "SPOP"
    assert known_command("redis", b"*1\r\n$4\r\nPING\r\n*1\r\n$4\r\ntime\r\n") == "TIME"
    assert known_command("redis", b"*2\r\n$3\r\nGET\r\n$8\r\ntimeless\r\n") is None
    assert known_command("mariadb", b"\x03SELECT rand ( )") == "RAND"
    assert known_command("mariadb", b"\x03SELECT operand FROM t") is None
    assert known_command("mongodb", b"\x10hello\x00\x01\x00\x00\x00") == "hello"


def test_fnv1a64_matches_the_published_test_vector():
    assert fnv1a64(b"") == 0xCBF29CE484222325
    assert fnv1a64(b"a") == 0xAF63DC4C8601EC8C


class LateRing:
    """A ring whose last snapshot shows up only at the second read (a backup's shim
    snapshots an answer when the close arrives, after the replayer applied it)."""

    def __init__(self, records: list[Snapshot], late: int) -> None:
        self.records, self.late, self.reads = records, late, 0

    def snapshots(self, start: int = 0) -> tuple[list[Snapshot], int, int]:
        self.reads += 1
        visible = len(self.records) - (self.late if self.reads == 1 else 0)
        return self.records[start:visible], visible, 0


def test_settled_read_waits_for_a_backup_answer_that_is_late():
    numbered = [(1, b"+OK\r\n"), (2, b"$3\r\n0.5\r\n")]
    changed = [numbered[0], (2, b"$3\r\n0.7\r\n")]
    leader, backup = LateRing(snapshots(7, numbered), 0), LateRing(snapshots(7, changed), 1)
    checker = OutputChecker()
    checker.add_rings_settled({"leader": leader, "backup": backup}, quiet=0.01)
    report = checker.check()
    assert backup.reads >= 2
    assert [(d.conn_id, d.log_index) for d in report.divergences] == [(7, 2)]


def test_settled_read_does_not_wait_for_inputs_before_a_late_joiner():
    numbered = [(1, b"+OK\r\n"), (2, b"+OK\r\n"), (3, b"+OK\r\n")]
    joiner = LateRing(snapshots(7, numbered)[1:], 0)
    checker = OutputChecker()
    checker.add_rings_settled({"leader": LateRing(snapshots(7, numbered), 0),
                               "joiner": joiner}, timeout=30, quiet=0.01)
    assert joiner.reads == 2  # covered at once; one more read to see nothing new arrives
    assert checker.check().compared == 2
