"""CoreWorkload's decisions: operation mix, keys, fields, values and scan lengths."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest

from workloads import properties as P
from workloads.ackcounter import SharedState
from workloads.core import (
    INSERT,
    LOAD,
    OP_NAMES,
    READ,
    READMODIFYWRITE,
    UPDATE,
    CoreWorkload,
    deterministic_value,
)
from workloads.javamath import build_key_name, string_hashcode


def make(overrides: dict[str, str], client: int = 0) -> CoreWorkload:
    base = {"recordcount": "1000", "operationcount": "1000", "requestdistribution": "uniform"}
    config = P.validate({**base, **overrides})
    shared = SharedState.create(1, config.insertstart, config.recordcount)
    return CoreWorkload(config, shared.counters, shared.window, client)


def test_operation_mix_is_within_a_binomial_confidence_interval():
    mix = {
        "readproportion": 0.4,
        "updateproportion": 0.3,
        "insertproportion": 0.1,
        "scanproportion": 0.15,
        "readmodifywriteproportion": 0.05,
    }
    w = make({k: str(v) for k, v in mix.items()} | {"maxscanlength": "5"})
    n = 100_000
    counts = Counter(OP_NAMES[w.plan(load=False).op] for _ in range(n))
    expected = dict(
        zip(("READ", "UPDATE", "INSERT", "SCAN", "READMODIFYWRITE"), mix.values(), strict=True)
    )
    for op, p in expected.items():
        sd = math.sqrt(n * p * (1 - p))
        assert abs(counts[op] - n * p) <= 5 * sd, (op, counts[op])
    assert set(counts) == set(expected)


def test_load_keys_follow_the_shared_counter_from_insertstart():
    w = make({"insertstart": "500", "insertcount": "100"})
    ops = [w.plan(load=True) for _ in range(5)]
    assert [o.op for o in ops] == [LOAD] * 5
    assert [o.keynum for o in ops] == [500, 501, 502, 503, 504]
    assert [o.key for o in ops] == [build_key_name(k) for k in range(500, 505)]
    assert all(len(o.values) == 10 for o in ops)
    ordered = make({"insertorder": "ordered", "zeropadding": "8"})
    assert ordered.plan(load=True).key == "user00000000"


def test_run_phase_keys_stay_within_the_acknowledged_limit():
    w = make(
        {
            "readproportion": "0.5",
            "insertproportion": "0.5",
            "updateproportion": "0",
            "requestdistribution": "zipfian",
        }
    )
    inserted = []
    for _ in range(2000):
        op = w.plan(load=False)
        if op.op == INSERT:
            inserted.append(op.keynum)  # never acknowledged: the limit stays at 999
        else:
            assert 0 <= op.keynum <= 999
    assert inserted == list(range(1000, 1000 + len(inserted)))


def test_values_are_ycsb_random_bytes_of_the_configured_length():
    w = make({"fieldcount": "3", "fieldlength": "600"})
    op = w.plan(load=True)
    assert sorted(op.values) == ["field0", "field1", "field2"]
    data = np.frombuffer(b"".join(op.values.values()), dtype=np.uint8)
    assert len(data) == 1800 and data.min() >= 32 and data.max() <= 127
    groups = data[: 1800 // 6 * 6].reshape(-1, 6)
    # RandomByteIterator's masks per position in a group of six: 31, 63, 95, 31, 63, 95
    for pos, mask in enumerate((31, 63, 95, 31, 63, 95)):
        assert groups[:, pos].max() <= 32 + mask
        assert groups[:, pos].max() >= 32 + mask - 3  # every value range is actually used


def test_uniform_field_lengths_and_single_field_updates():
    w = make(
        {
            "fieldlengthdistribution": "uniform",
            "minfieldlength": "5",
            "fieldlength": "20",
            "readproportion": "0",
            "updateproportion": "1",
            "readallfields": "false",
        }
    )
    seen_fields, lengths = set(), []
    for _ in range(3000):
        op = w.plan(load=False)
        assert op.op == UPDATE and len(op.values) == 1
        ((name, value),) = op.values.items()
        seen_fields.add(name)
        lengths.append(len(value))
    assert seen_fields == {f"field{i}" for i in range(10)}
    assert min(lengths) == 5 and max(lengths) == 20


def test_read_fields_single_or_all():
    single = make({"readallfields": "false", "readproportion": "1", "updateproportion": "0"})
    op = single.plan(load=False)
    assert op.op == READ and len(op.read_fields) == 1
    assert (
        make({"readproportion": "1", "updateproportion": "0"}).plan(load=False).read_fields is None
    )
    by_name = make({"readallfieldsbyname": "true", "readproportion": "1", "updateproportion": "0"})
    assert by_name.plan(load=False).read_fields == [f"field{i}" for i in range(10)]


@pytest.mark.parametrize("dist", ["uniform", "zipfian"])
def test_scan_lengths_stay_within_bounds(dist):
    w = make(
        {
            "readproportion": "0",
            "updateproportion": "0",
            "scanproportion": "1",
            "minscanlength": "3",
            "maxscanlength": "40",
            "scanlengthdistribution": dist,
        }
    )
    lengths = np.array([w.plan(load=False).scan_length for _ in range(20_000)])
    assert lengths.min() == 3 and lengths.max() <= 40
    if dist == "uniform":
        assert lengths.max() == 40 and abs(lengths.mean() - 21.5) < 0.5
    else:
        assert np.mean(lengths <= 5) > 0.3  # zipfian favours short scans


def test_read_modify_write_draws_its_own_write_values():
    w = make(
        {
            "readproportion": "0",
            "updateproportion": "0",
            "readmodifywriteproportion": "1",
            "writeallfields": "true",
        }
    )
    op = w.plan(load=False)
    assert op.op == READMODIFYWRITE and len(op.values) == 10 and op.read_fields is None


def test_deterministic_values_follow_java_hashcode_chaining():
    value = deterministic_value("user1", "field0", 40)
    assert len(value) == 40 and value.startswith("user1:field0:")
    first = "user1:field0"
    assert value.startswith(f"{first}:{string_hashcode(first)}")
    w = make({"dataintegrity": "true", "fieldlength": "30"})
    op = w.plan(load=True)
    assert op.values["field3"] == deterministic_value(op.key, "field3", 30).encode()


def test_clients_draw_different_streams():
    a = [make({}, client=0).plan(load=False).keynum for _ in range(1)]
    w0, w1 = make({}, client=0), make({}, client=1)
    s0 = [w0.plan(load=False).keynum for _ in range(20)]
    s1 = [w1.plan(load=False).keynum for _ in range(20)]
    assert s0 != s1 and a[0] == s0[0]


def test_exponential_keys_count_back_from_the_newest_record():
    w = make({"requestdistribution": "exponential", "readproportion": "1", "updateproportion": "0"})
    keys = np.array([w.plan(load=False).keynum for _ in range(20_000)])
    assert keys.max() <= 999 and keys.min() >= 0
    # exponential.percentile=95 of draws fall within recordcount * exponential.frac of the top
    assert np.mean(keys >= 999 - 1000 * 0.8571428571) > 0.93
    assert np.mean(keys >= 900) > np.mean(keys < 100) * 3


def test_hotspot_and_sequential_key_choosers_through_the_workload():
    hot = make({"requestdistribution": "hotspot", "readproportion": "1", "updateproportion": "0"})
    keys = np.array([hot.plan(load=False).keynum for _ in range(20_000)])
    assert 0.77 < np.mean(keys < 200) < 0.83
    seq = make(
        {
            "requestdistribution": "sequential",
            "readproportion": "1",
            "updateproportion": "0",
            "recordcount": "3",
        }
    )
    assert [seq.plan(load=False).keynum for _ in range(5)] == [0, 1, 2, 0, 1]
