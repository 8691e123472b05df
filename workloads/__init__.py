"""GAIA's YCSB: a faithful Python port of YCSB's CoreWorkload, client and bindings.

Every application experiment is driven by YCSB; the Java YCSB cannot be built here, so
this package reproduces it, transcribing the semantics (never the code) of
site.ycsb.workloads.CoreWorkload, site.ycsb.generator.*, site.ycsb.Client/ClientThread/
DBWrapper, the HdrHistogram measurements and text exporter, and the redis, memcached,
JDBC and mongodb bindings. Each module's docstring names the Java behaviour it keeps.

    properties.py   -P/-p properties, defaults, validation (ConfigError, one line)
    files/          workloads a-f, YCSB's values
    javamath.py     Java long semantics: fnvhash64, buildKeyName, String.hashCode
    rng.py          seeded per-client random streams for the numba kernels
    generators.py   uniform, zipfian, scrambled zipfian, latest, hotspot, exponential, ...
    ackcounter.py   AcknowledgedCounterGenerator + the state clients share
    core.py         CoreWorkload: one numba call plans an operation
    client.py       DBWrapper (measured calls) and ClientThread (closed/open loop)
    measurements.py per-client HdrHistograms (ns), op + intended series, status counts
    runner.py       a load or run phase over N threads in P processes
    progress.py     the live status line
    report.py       YCSB's text report and the result record
    parse.py        YCSB text (ours or the Java YCSB's) -> result record
    bindings/       redis, memcached, mariadb (JDBC schema), mongodb; leader-aware
    writelog.py     recording acknowledged writes; the lost/stale-write checker
    infra.py        --infra providers (none; apus/tripod/vm add theirs)
    external.py     the real YCSB (ycsb on PATH or Docker) -- unverified here
    ycsb.py         one experiment end to end (invoke ycsb, python -m workloads)
"""
