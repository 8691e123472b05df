"""The leader-kill run's verdicts, computed from recordings (no VM)."""

from __future__ import annotations

from gaia.vm.faults import recovery_after, table_digest
from workloads.measurements import OK
from workloads.writelog import WriteRecord


def _write(end_ns: int, ok: bool) -> WriteRecord:
    return WriteRecord.from_json({"k": "user1", "op": "update", "f": {"field0": "ab"},
                                  "s": end_ns - 10, "e": end_ns, "ok": ok, "c": 0, "r": False})


def test_recovery_is_the_first_acknowledged_write_after_the_kill() -> None:
    writes = [_write(90, True), _write(2_000_000_100, False), _write(3_000_000_100, True),
              _write(2_500_000_100, True)]
    assert recovery_after(writes, 100) == 2.5
    assert recovery_after(writes[:2], 100) is None  # nothing acknowledged since: failed


class _Table:
    def __init__(self, rows):
        self.rows = rows

    def read(self, table, key, fields):
        return OK, dict(self.rows.get(key, {}))


def test_table_digest_sees_every_field_and_ignores_order() -> None:
    a = _Table({"k1": {"f0": b"x", "f1": b"y"}, "k2": {"f0": b"z"}})
    b = _Table({"k2": {"f0": b"z"}, "k1": {"f1": b"y", "f0": b"x"}})
    c = _Table({"k1": {"f0": b"x", "f1": b"Y"}, "k2": {"f0": b"z"}})
    assert table_digest(a, ["k1", "k2"]) == table_digest(b, ["k2", "k1", "k1"])
    assert table_digest(a, ["k1", "k2"]) != table_digest(c, ["k1", "k2"])
