"""YCSB properties: parsing, merging (-P files, -p overrides), defaults and validation.

The format is Java's `.properties` as YCSB reads it: `key=value` (also `key: value` or
`key value`), `#` and `!` comment lines, a trailing backslash continues a line. Files
given with `-P` are merged in order (a later file wins) and every `-p key=value` wins
over all files, as site.ycsb.Client.parseArguments does.

Defaults are CoreWorkload's and Client's. Validation is stricter than Java's, on purpose:
Java silently treats an unknown property, `readallfields=yes` or proportions summing to
0.9 as something else; here each is a `ConfigError` naming the property and the fix.
Accepted names: the properties YCSB documents (Client, CoreWorkload, measurements), the
properties of the four bindings GAIA ports (redis.*, memcached.*, db.*/jdbc.*, mongodb.*),
and GAIA's own `gaia.*` ones. Anything else is taken for a typo and rejected with the
nearest known name as a suggestion.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from gaia.errors import ConfigError
from workloads.javamath import INT_MAX

WORKLOAD_CLASSES = {
    "site.ycsb.workloads.CoreWorkload",
    "com.yahoo.ycsb.workloads.CoreWorkload",
    "CoreWorkload",
}
REQUEST_DISTRIBUTIONS = ("uniform", "zipfian", "latest", "hotspot", "sequential", "exponential")
FIELD_LENGTH_DISTRIBUTIONS = ("constant", "uniform", "zipfian")
SCAN_LENGTH_DISTRIBUTIONS = ("uniform", "zipfian")
OPERATIONS = ("READ", "UPDATE", "INSERT", "SCAN", "READMODIFYWRITE")
PROPORTION_KEYS = {
    "READ": "readproportion",
    "UPDATE": "updateproportion",
    "INSERT": "insertproportion",
    "SCAN": "scanproportion",
    "READMODIFYWRITE": "readmodifywriteproportion",
}
PROPORTION_TOLERANCE = 1e-9

# name -> default (None: no default). Client, CoreWorkload and Measurements properties.
CORE_DEFAULTS: dict[str, str | None] = {
    # site.ycsb.Client
    "workload": "site.ycsb.workloads.CoreWorkload",
    "db": None,
    "recordcount": "0",
    "operationcount": "0",
    "insertcount": None,
    "insertstart": "0",
    "threadcount": "1",
    "target": "0",
    "maxexecutiontime": "0",
    "status.interval": "10",
    "label": "",
    "dotransactions": "true",
    "exporter": "site.ycsb.measurements.exporter.TextMeasurementsExporter",
    "exportfile": None,
    # site.ycsb.measurements
    "measurementtype": "hdrhistogram",
    # GAIA's default is "both" (YCSB's is "op"): the intended series costs nothing here.
    "measurement.interval": "both",
    "measurement.trackjvm": "false",
    "measurement.histogram.verbose": "false",
    "hdrhistogram.percentiles": "50,95,99",
    "hdrhistogram.fileoutput": "false",
    "hdrhistogram.output.path": "",
    "histogram.buckets": "1000",
    "timeseries.granularity": "1000",
    "reportlatencyforeacherror": "false",
    "latencytrackederrors": None,
    "spin.sleep": "false",
    # site.ycsb.workloads.CoreWorkload
    "table": "usertable",
    "fieldcount": "10",
    "fieldnameprefix": "field",
    "fieldlengthdistribution": "constant",
    "fieldlength": "100",
    "minfieldlength": "1",
    "fieldlengthhistogram": "hist.txt",
    "readallfields": "true",
    "readallfieldsbyname": "false",
    "writeallfields": "false",
    "dataintegrity": "false",
    "readproportion": "0.95",
    "updateproportion": "0.05",
    "insertproportion": "0.0",
    "scanproportion": "0.0",
    "readmodifywriteproportion": "0.0",
    "requestdistribution": "uniform",
    "zeropadding": "1",
    "minscanlength": "1",
    "maxscanlength": "1000",
    "scanlengthdistribution": "uniform",
    "insertorder": "hashed",
    "hotspotdatafraction": "0.2",
    "hotspotopnfraction": "0.8",
    "core_workload_insertion_retry_limit": "0",
    "core_workload_insertion_retry_interval": "3",
    "exponential.percentile": "95",
    "exponential.frac": "0.8571428571",
}
# Features GAIA's port does not have: the property is accepted only at a value that asks
# for nothing more (YCSB's default), so no setting is silently ignored. The first three
# are in YCSB's workload_template without effect on CoreWorkload.
ACCEPTED_ONLY: dict[str, tuple[str, ...]] = {
    "maxscanrate": ("0",),
    "scanoptimelimit": ("0",),
    "discardscannedrecord": ("false",),
    "hdrhistogram.fileoutput": ("false",),
    "measurement.trackjvm": ("false",),
    "memcached.protocol": ("text",),
    "redis.cluster": ("false",),
    "db.batchsize": ("0", "-1", "1"),
    "jdbc.batchupdateapi": ("false",),
    "jdbc.autocommit": ("true",),
    "batchsize": ("1",),
}

BINDING_PROPERTIES = {
    "redis.host", "redis.port", "redis.password", "redis.cluster", "redis.timeout",
    "memcached.hosts", "memcached.shutdownTimeoutMillis", "memcached.objectExpirationTime",
    "memcached.checkOperationStatus", "memcached.readBufferSize", "memcached.opTimeoutMillis",
    "memcached.failureMode", "memcached.protocol",
    "db.driver", "db.url", "db.user", "db.passwd", "db.batchsize",
    "jdbc.fetchsize", "jdbc.autocommit", "jdbc.batchupdateapi",
    "mongodb.url", "mongodb.upsert", "batchsize",
}  # fmt: skip

# GAIA's own properties.
GAIA_DEFAULTS: dict[str, str | None] = {
    "gaia.seed": "0",  # base seed; client i draws from seed + i
    "gaia.recordwrites": None,  # JSON-lines file of acknowledged writes (writelog.py)
    "gaia.failover.timeout": "30",  # seconds to wait for a new leader (run-dir endpoints)
    "gaia.rundir": None,  # deployment run directory (leader-aware endpoints)
    "gaia.status": "true",  # live status line
}

KNOWN = set(CORE_DEFAULTS) | set(ACCEPTED_ONLY) | BINDING_PROPERTIES | set(GAIA_DEFAULTS)


# -- reading -----------------------------------------------------------------------------


def parse_text(text: str, source: str = "<text>") -> dict[str, str]:
    """Parse Java properties text into an ordered dict (later duplicates win)."""
    props: dict[str, str] = {}
    logical: list[str] = []
    for raw in text.splitlines():
        line = raw.strip() if not logical else raw.lstrip()
        if not logical and (not line or line[0] in "#!"):
            continue
        if line.endswith("\\") and not line.endswith("\\\\"):
            logical.append(line[:-1])
            continue
        logical.append(line)
        whole = "".join(logical)
        logical = []
        key, value = _split_pair(whole)
        if not key:
            raise ConfigError(f"{source}: cannot read the line {whole!r}", "write it as key=value")
        props[key] = value
    return props


def _split_pair(line: str) -> tuple[str, str]:
    for i, ch in enumerate(line):
        if ch in "=:" or ch.isspace():
            key = line[:i].strip()
            rest = line[i:].lstrip()
            if rest[:1] in ("=", ":"):
                rest = rest[1:]
            return key, rest.strip()
    return line.strip(), ""


def workload_file(name: str) -> Path:
    """`a`, `workloada` or a path -> the property file (workloads a-f ship with GAIA)."""
    path = Path(name)
    if path.is_file():
        return path
    short = name.lower().removeprefix("workload")
    if len(short) == 1 and short in "abcdef":
        return Path(str(resources.files("workloads") / "files" / f"workload{short}"))
    raise ConfigError(
        f"no workload file {name!r}",
        "pass one of a-f (YCSB's core workloads) or the path of a properties file",
    )


def read_file(path: Path) -> dict[str, str]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(
            f"cannot read the properties file {path} ({exc.strerror})",
            "check the path given with -P",
        ) from None
    return parse_text(text, str(path))


def parse_override(item: str) -> tuple[str, str]:
    """`-p key=value` -> (key, value); Java requires the '='."""
    key, sep, value = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"-p {item!r} is not key=value", "write e.g. -p operationcount=99999")
    return key.strip(), value.strip()


def merge(
    files: Iterable[Path | str] = (),
    overrides: Iterable[str] = (),
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Files in order (later wins), then `base` (e.g. --records), then -p overrides."""
    props: dict[str, str] = {}
    for f in files:
        props.update(read_file(Path(f)))
    props.update(base or {})
    for item in overrides:
        key, value = parse_override(item)
        props[key] = value
    return props


# -- typed access ------------------------------------------------------------------------


def suggest(name: str) -> str:
    close = difflib.get_close_matches(name, sorted(KNOWN), n=1, cutoff=0.6)
    if close:
        return f"did you mean `{close[0]}`?"
    return "see workloads/files/ or YCSB's workload_template for the property names"


def check_known(props: Mapping[str, str]) -> None:
    """Every name is YCSB's or GAIA's; `gaia.infra.*` ones the --infra provider checks."""
    for name in props:
        if name not in KNOWN and not name.startswith("gaia.infra."):
            raise ConfigError(f"unknown property `{name}`", suggest(name))
    for name, accepted in ACCEPTED_ONLY.items():
        if name in props and props[name].strip().lower() not in accepted:
            raise ConfigError(
                f"`{name}={props[name]}` is not implemented by GAIA's YCSB port",
                f"remove it or set it to {accepted[0]}",
            )


class Reader:
    """Typed getters over raw properties, with GAIA's defaults and one-line errors."""

    def __init__(self, props: Mapping[str, str]):
        self.props = dict(props)
        self.defaults = {**CORE_DEFAULTS, **GAIA_DEFAULTS}

    def raw(self, name: str) -> str | None:
        value = self.props.get(name)
        return value if value is not None else self.defaults.get(name)

    def string(self, name: str) -> str:
        value = self.raw(name)
        return "" if value is None else value

    def integer(self, name: str, lo: int | None = None, hi: int = INT_MAX) -> int:
        text = self.string(name)
        try:
            value = int(text.strip())
        except ValueError:
            raise ConfigError(
                f"`{name}={text}` is not an integer", f"give {name} a whole number"
            ) from None
        if (lo is not None and value < lo) or value > hi:
            bounds = f"between {lo} and {hi}" if lo is not None else f"at most {hi}"
            raise ConfigError(f"`{name}={value}` is out of range", f"use a value {bounds}")
        return value

    def number(self, name: str, lo: float | None = None, hi: float | None = None) -> float:
        text = self.string(name)
        try:
            value = float(text.strip())
        except ValueError:
            raise ConfigError(
                f"`{name}={text}` is not a number", f"give {name} a decimal number"
            ) from None
        if math.isnan(value) or (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ConfigError(f"`{name}={text}` is out of range", f"use a value in [{lo}, {hi}]")
        return value

    def boolean(self, name: str) -> bool:
        text = self.string(name).strip().lower()
        if text not in ("true", "false"):
            raise ConfigError(f"`{name}={self.string(name)}` is not a boolean", "use true or false")
        return text == "true"

    def choice(self, name: str, options: tuple[str, ...], what: str) -> str:
        value = self.string(name).strip()
        if value not in options:
            raise ConfigError(
                f"unknown {what} `{value}` (property `{name}`)",
                f"use one of: {', '.join(options)}",
            )
        return value


# -- the validated configuration ---------------------------------------------------------


@dataclass
class WorkloadConfig:
    """Everything CoreWorkload and the client read from the properties, typed and checked."""

    props: dict[str, str]
    table: str
    fieldcount: int
    fieldnames: list[str]
    fieldlengthdistribution: str
    fieldlength: int
    minfieldlength: int
    readallfields: bool
    readallfieldsbyname: bool
    writeallfields: bool
    dataintegrity: bool
    proportions: dict[str, float]
    requestdistribution: str
    zeropadding: int
    minscanlength: int
    maxscanlength: int
    scanlengthdistribution: str
    orderedinserts: bool
    hotspotdatafraction: float
    hotspotopnfraction: float
    exponential_percentile: float
    exponential_frac: float
    insertion_retry_limit: int
    insertion_retry_interval: int
    recordcount: int
    operationcount: int
    insertstart: int
    insertcount: int
    threadcount: int
    target: int
    maxexecutiontime: int
    dotransactions: bool
    measurement_interval: str
    percentiles: list[float]
    histogram_verbose: bool
    reportlatencyforeacherror: bool
    latencytrackederrors: set[str]
    seed: int
    status: bool
    label: str
    exportfile: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def load_opcount(self) -> int:
        """Client.initDb: the load phase inserts insertcount if given, else recordcount."""
        if "insertcount" in self.props:
            return self.insertcount
        return self.recordcount

    def get(self, name: str) -> str | None:
        """A raw property (bindings read theirs with this), default applied."""
        return Reader(self.props).raw(name)


def _percentiles(text: str) -> list[float]:
    try:
        values = [float(p) for p in text.split(",") if p.strip()]
    except ValueError:
        raise ConfigError(
            f"`hdrhistogram.percentiles={text}` is not a list of numbers",
            "write e.g. 50,95,99",
        ) from None
    if not values or any(not 0 < v <= 100 for v in values):
        raise ConfigError(
            f"`hdrhistogram.percentiles={text}` needs values in (0, 100]", "write e.g. 95,99"
        )
    return values


def _proportions(r: Reader) -> dict[str, float]:
    props = {op: r.number(key, lo=0.0, hi=1.0) for op, key in PROPORTION_KEYS.items()}
    total = sum(props.values())
    if abs(total - 1.0) > PROPORTION_TOLERANCE:
        listing = ", ".join(f"{PROPORTION_KEYS[op]}={v:g}" for op, v in props.items() if v)
        raise ConfigError(
            f"operation proportions sum to {total:.12g}, not 1 ({listing or 'all zero'})",
            "make read/update/insert/scan/readmodifywrite proportions add up to 1",
        )
    return props


def validate(props: Mapping[str, str]) -> WorkloadConfig:
    """Check every property and build the typed configuration (raises ConfigError)."""
    check_known(props)
    r = Reader(props)
    workload = r.string("workload")
    if workload not in WORKLOAD_CLASSES:
        raise ConfigError(
            f"workload class `{workload}` is not supported",
            "GAIA ports site.ycsb.workloads.CoreWorkload only",
        )
    if r.string("measurementtype") != "hdrhistogram":
        raise ConfigError(
            f"measurementtype `{r.string('measurementtype')}` is not supported",
            "use measurementtype=hdrhistogram (GAIA records HdrHistograms in ns)",
        )
    exporter = r.string("exporter")
    if not exporter.endswith("TextMeasurementsExporter"):
        raise ConfigError(
            f"exporter `{exporter}` is not supported", "GAIA writes YCSB's text format only"
        )
    recordcount = r.integer("recordcount", lo=0, hi=(1 << 63) - 1)
    if recordcount == 0:
        recordcount = INT_MAX  # CoreWorkload.init: 0 means Integer.MAX_VALUE
    insertstart = r.integer("insertstart", lo=0, hi=(1 << 63) - 1)
    if "insertcount" in props:
        insertcount = r.integer("insertcount", lo=0)
    else:
        insertcount = recordcount - insertstart
    if recordcount < insertstart + insertcount:
        raise ConfigError(
            f"insertstart ({insertstart}) + insertcount ({insertcount}) exceeds "
            f"recordcount ({recordcount})",
            "recordcount must be at least insertstart + insertcount",
        )
    if recordcount > INT_MAX:
        raise ConfigError(
            f"recordcount={recordcount} exceeds 2^31-1",
            "YCSB picks keys as Java ints; use at most 2147483647 records",
        )
    fieldcount = r.integer("fieldcount", lo=1)
    fieldlength = r.integer("fieldlength", lo=0)
    minfieldlength = r.integer("minfieldlength", lo=0)
    fld = r.choice(
        "fieldlengthdistribution", FIELD_LENGTH_DISTRIBUTIONS, "field length distribution"
    )
    if fld != "constant" and minfieldlength > fieldlength:
        raise ConfigError(
            f"minfieldlength ({minfieldlength}) > fieldlength ({fieldlength})",
            "make minfieldlength <= fieldlength",
        )
    dataintegrity = r.boolean("dataintegrity")
    if dataintegrity and fld != "constant":
        raise ConfigError(
            "dataintegrity=true needs fieldlengthdistribution=constant",
            "set fieldlengthdistribution=constant (YCSB exits on this too)",
        )
    minscan = r.integer("minscanlength", lo=0)
    maxscan = r.integer("maxscanlength", lo=0)
    if minscan > maxscan:
        raise ConfigError(
            f"minscanlength ({minscan}) > maxscanlength ({maxscan})",
            "make minscanlength <= maxscanlength",
        )
    insertorder = r.choice("insertorder", ("hashed", "ordered"), "insert order")
    dist = r.choice("requestdistribution", REQUEST_DISTRIBUTIONS, "request distribution")
    hot_data = r.number("hotspotdatafraction", lo=0.0, hi=1.0)
    hot_opn = r.number("hotspotopnfraction", lo=0.0, hi=1.0)
    if dist == "hotspot":
        _check_hotspot(insertcount, hot_data, hot_opn)
    percentile = r.number("exponential.percentile", lo=0.0, hi=100.0)
    if dist == "exponential" and not 0 < percentile < 100:
        raise ConfigError(
            f"exponential.percentile={percentile:g} must be strictly between 0 and 100",
            "use e.g. 95",
        )
    interval = r.choice("measurement.interval", ("op", "intended", "both"), "measurement interval")
    operationcount = r.integer("operationcount", lo=0)
    maxexec = r.integer("maxexecutiontime", lo=0)
    dotransactions = r.boolean("dotransactions")
    if dotransactions and operationcount == 0 and maxexec == 0:
        raise ConfigError(
            "operationcount=0 and maxexecutiontime=0 would run forever",
            "set operationcount (or --ops) or maxexecutiontime in seconds",
        )
    prefix = r.string("fieldnameprefix")
    tracked = r.raw("latencytrackederrors")
    return WorkloadConfig(
        props=dict(props),
        table=r.string("table"),
        fieldcount=fieldcount,
        fieldnames=[f"{prefix}{i}" for i in range(fieldcount)],
        fieldlengthdistribution=fld,
        fieldlength=fieldlength,
        minfieldlength=minfieldlength,
        readallfields=r.boolean("readallfields"),
        readallfieldsbyname=r.boolean("readallfieldsbyname"),
        writeallfields=r.boolean("writeallfields"),
        dataintegrity=dataintegrity,
        proportions=_proportions(r),
        requestdistribution=dist,
        zeropadding=r.integer("zeropadding", lo=0, hi=1000),
        minscanlength=minscan,
        maxscanlength=maxscan,
        scanlengthdistribution=r.choice(
            "scanlengthdistribution", SCAN_LENGTH_DISTRIBUTIONS, "scan length distribution"
        ),
        orderedinserts=insertorder == "ordered",
        hotspotdatafraction=hot_data,
        hotspotopnfraction=hot_opn,
        exponential_percentile=percentile,
        exponential_frac=r.number("exponential.frac", lo=0.0),
        insertion_retry_limit=r.integer("core_workload_insertion_retry_limit", lo=0),
        insertion_retry_interval=r.integer("core_workload_insertion_retry_interval", lo=0),
        recordcount=recordcount,
        operationcount=operationcount,
        insertstart=insertstart,
        insertcount=insertcount,
        threadcount=r.integer("threadcount", lo=1, hi=4096),
        target=r.integer("target", lo=0),
        maxexecutiontime=maxexec,
        dotransactions=dotransactions,
        measurement_interval=interval,
        percentiles=_percentiles(r.string("hdrhistogram.percentiles")),
        histogram_verbose=r.boolean("measurement.histogram.verbose"),
        reportlatencyforeacherror=r.boolean("reportlatencyforeacherror"),
        latencytrackederrors=set(tracked.split(",")) if tracked else set(),
        seed=r.integer("gaia.seed", lo=0, hi=(1 << 63) - 1),
        status=r.boolean("gaia.status"),
        label=r.string("label"),
        exportfile=r.raw("exportfile"),
    )


def _check_hotspot(insertcount: int, hot_data: float, hot_opn: float) -> None:
    """HotspotIntegerGenerator divides by both intervals: catch an empty one up front."""
    hot = int(insertcount * hot_data)
    cold = insertcount - hot
    if hot_opn > 0 and hot == 0:
        raise ConfigError(
            f"hotspotdatafraction={hot_data:g} of {insertcount} records leaves no hot record",
            "raise hotspotdatafraction or the record count",
        )
    if hot_opn < 1 and cold == 0:
        raise ConfigError(
            f"hotspotdatafraction={hot_data:g} leaves no cold record while "
            f"hotspotopnfraction={hot_opn:g} < 1",
            "lower hotspotdatafraction or set hotspotopnfraction=1",
        )


def load(
    workload: str | None = None,
    files: Iterable[str] = (),
    overrides: Iterable[str] = (),
    base: Mapping[str, str] | None = None,
) -> WorkloadConfig:
    """Workload name/file, extra -P files, --records-style base values, -p overrides."""
    paths: list[Path | str] = [workload_file(workload)] if workload else []
    paths.extend(files)
    return validate(merge(paths, overrides, base))
