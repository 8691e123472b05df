"""Properties: YCSB's file format, precedence, defaults, and one-line errors for bad input."""

from __future__ import annotations

import pytest

from gaia.errors import ConfigError
from workloads import properties as P

CORE = {"recordcount": "100", "operationcount": "100"}


def test_java_properties_format():
    text = (
        "# comment\n! also a comment\n\nrecordcount=10\nfieldcount : 3\n"
        "table   mytable\nfieldnameprefix=f\\\n  x\n"
    )
    assert P.parse_text(text) == {
        "recordcount": "10",
        "fieldcount": "3",
        "table": "mytable",
        "fieldnameprefix": "fx",
    }


def test_later_files_win_and_p_overrides_win_over_all(tmp_path):
    first, second = tmp_path / "one", tmp_path / "two"
    first.write_text("recordcount=1\nfieldcount=2\n")
    second.write_text("recordcount=3\n")
    props = P.merge([first, second], ["fieldcount=7"], base={"recordcount": "5"})
    assert props["recordcount"] == "5" and props["fieldcount"] == "7"
    props = P.merge([first, second], ["recordcount=9"], base={"recordcount": "5"})
    assert props["recordcount"] == "9"


def test_shipped_workloads_have_ycsbs_values():
    expected = {
        "a": ({"READ": 0.5, "UPDATE": 0.5}, "zipfian"),
        "b": ({"READ": 0.95, "UPDATE": 0.05}, "zipfian"),
        "c": ({"READ": 1.0}, "zipfian"),
        "d": ({"READ": 0.95, "INSERT": 0.05}, "latest"),
        "e": ({"SCAN": 0.95, "INSERT": 0.05}, "zipfian"),
        "f": ({"READ": 0.5, "READMODIFYWRITE": 0.5}, "zipfian"),
    }
    for name, (mix, dist) in expected.items():
        config = P.load(name)
        assert {k: v for k, v in config.proportions.items() if v} == mix
        assert config.requestdistribution == dist
        assert config.recordcount == 1000 and config.operationcount == 1000
    assert P.load("e").maxscanlength == 100


def test_core_workload_defaults():
    c = P.validate(CORE)
    assert (c.fieldcount, c.fieldlength, c.table, c.zeropadding) == (10, 100, "usertable", 1)
    assert c.readallfields and not c.writeallfields and not c.orderedinserts
    assert c.proportions["READ"] == 0.95 and c.requestdistribution == "uniform"
    assert c.percentiles == [50.0, 95.0, 99.0] and c.insertcount == 100
    assert P.validate({"operationcount": "5"}).recordcount == 2**31 - 1  # 0 -> MAX_VALUE


@pytest.mark.parametrize(
    ("props", "needle"),
    [
        ({"readproportin": "0.5"}, "did you mean `readproportion`"),
        ({"requestdistrbution": "zipfian"}, "did you mean `requestdistribution`"),
        ({"readproportion": "0.96"}, "sum to 1.01"),
        ({"readproportion": "0.5", "updateproportion": "0.4"}, "sum to 0.9"),
        ({"requestdistribution": "zipf"}, "unknown request distribution `zipf`"),
        ({"fieldlengthdistribution": "normal"}, "unknown field length distribution"),
        ({"scanlengthdistribution": "latest"}, "unknown scan length distribution"),
        ({"fieldcount": "ten"}, "`fieldcount=ten` is not an integer"),
        ({"readproportion": "lots"}, "is not a number"),
        ({"readallfields": "yes"}, "is not a boolean"),
        ({"insertorder": "random"}, "unknown insert order"),
        ({"insertstart": "90", "insertcount": "20"}, "exceeds recordcount"),
        ({"measurementtype": "histogram"}, "measurementtype `histogram` is not supported"),
        ({"maxscanrate": "5"}, "not implemented"),
        ({"operationcount": "0"}, "would run forever"),
        ({"requestdistribution": "hotspot", "hotspotdatafraction": "0.001"}, "no hot record"),
        ({"dataintegrity": "true", "fieldlengthdistribution": "uniform"}, "dataintegrity"),
    ],
)
def test_bad_input_is_one_clear_config_error(props, needle):
    with pytest.raises(ConfigError) as info:
        P.validate({**CORE, **props})
    line = info.value.one_line()
    assert needle in line and "\n" not in line and "fix:" in line


def test_proportions_within_the_tolerance_are_accepted():
    P.validate(
        {**CORE, "readproportion": "0.3", "updateproportion": "0.6", "insertproportion": "0.1"}
    )  # 0.30000000000000004 + ... floats


def test_bad_p_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not key=value"):
        P.merge([], ["recordcount"])
    with pytest.raises(ConfigError, match="cannot read the properties file"):
        P.merge([tmp_path / "nope"], [])
    with pytest.raises(ConfigError, match="no workload file"):
        P.workload_file("g")


def test_binding_and_gaia_properties_are_known():
    P.validate(
        {
            **CORE,
            "redis.host": "h",
            "memcached.hosts": "h:1",
            "db.url": "jdbc:mysql://h/x",
            "mongodb.url": "mongodb://h/ycsb",
            "gaia.seed": "3",
            "maxscanrate": "0",
        }
    )
