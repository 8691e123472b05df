"""Acceptance: the checker's verdict on third-party histories with known verdicts.

102 real Jepsen etcd histories (register with read/write/cas, `expected.csv`) and the
Porcupine key-value histories (`-ok` linearizable, `-bad` not). Data: tests/checker/data
(MIT, see its LICENSE.md). `python -m gaia.checker tests/checker/data/...` prints times.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gaia.checker.formats import load_expected, parse_edn_kv, parse_jepsen_log
from gaia.checker.linearizability import KV, REGISTER, check

DATA = Path(__file__).parent / "data"
EXPECTED = load_expected(DATA / "jepsen-etcd" / "expected.csv")
# Generous: the slowest Jepsen history takes < 1 s here, c50-ok ~0.2 s.
BUDGET_S = 120.0


@pytest.mark.parametrize("log", sorted(EXPECTED))
def test_jepsen_etcd_history(log: str):
    result = check(parse_jepsen_log(DATA / "jepsen-etcd" / log), REGISTER, budget_s=BUDGET_S)
    assert result.verdict != "unknown", result.summary()
    assert result.linearizable is EXPECTED[log], result.summary()
    if not EXPECTED[log]:
        assert result.witness is not None


@pytest.mark.parametrize("name", ["c01", "c10", "c50"])
@pytest.mark.parametrize("expected", ["ok", "bad"])
def test_kv_history(name: str, expected: str):
    ops = parse_edn_kv(DATA / "kv" / f"{name}-{expected}.txt")
    result = check(ops, KV, budget_s=BUDGET_S)
    assert result.verdict == ("ok" if expected == "ok" else "illegal"), result.summary()
    if expected == "ok":
        assert len(result.partitions) == len({op.key for op in ops})
        for part in result.partitions:
            assert len(part.order) == part.ops  # a full linearization per key
