"""`invoke ycsb`: GAIA's YCSB (a port of YCSB's CoreWorkload) against one app.

    invoke ycsb --app redis --workload a --infra none --records 10000 --ops 100000 \\
                --threads 4 [--target N] [--procs N] [-p key=value ...] [-P file ...]

Loads `--records` records, runs `--ops` operations of workload a-f (or a properties file),
prints YCSB's text report per phase and saves a result record under results/ycsb/.
`--infra none` starts the app's server itself unless `--port` (an existing server) or
`--run-dir` (a deployment's leader, followed across failovers) is given.
"""

from __future__ import annotations

from pathlib import Path

from invoke import task

from gaia.errors import friendly


@task(
    iterable=["p", "P"],
    auto_shortflags=False,  # keeps -h for help; -p/-P are YCSB's own short options
    help={
        "app": "redis, memcached, mariadb or mongodb",
        "workload": "a-f (YCSB's core workloads) or a properties file",
        "infra": "where the server comes from: none (see workloads/infra.py)",
        "records": "recordcount, records loaded (0: the workload file's)",
        "ops": "operationcount, operations in the run phase (0: the workload file's)",
        "threads": "client threads in all (YCSB's threadcount)",
        "procs": "spread the client threads over this many processes",
        "target": "open loop at this many ops/s in all (0: closed loop)",
        "host": "host of an existing server (with --port)",
        "port": "port of an existing server (0: start one)",
        "run-dir": "deployment run directory: follow its leader",
        "p": "property override key=value (repeatable), as YCSB's -p",
        "P": "extra properties file (repeatable), as YCSB's -P",
        "phases": "load,run (default), load or run",
        "record-writes": "JSON-lines file recording every write (for a lost-write check)",
        "external": "run the real Java YCSB (needs `ycsb` on PATH or Docker)",
        "image": "Docker image of the real YCSB (with --external)",
        "seed": "base random seed (client i uses seed+i)",
        "no-save": "do not save a result record",
        "quiet": "no live status line",
    },
)
@friendly
def ycsb(
    c,
    app="redis",
    workload="a",
    infra="none",
    records=0,
    ops=0,
    threads=1,
    procs=1,
    target=0,
    host="127.0.0.1",
    port=0,
    run_dir="",
    p=None,
    P=None,
    phases="load,run",
    record_writes="",
    external=False,
    image="",
    seed=-1,
    no_save=False,
    quiet=False,
):
    """Run a YCSB workload (load + run) against an app; YCSB's report + a result record."""
    from gaia.errors import ConfigError
    from workloads.ycsb import YcsbOptions, run_ycsb

    wanted = {x.strip() for x in phases.split(",") if x.strip()}
    if not wanted or wanted - {"load", "run"}:
        raise ConfigError(
            f"--phases {phases!r} is not load, run or load,run",
            "use --phases load,run (default), load or run",
        )
    overrides = list(p or [])
    if seed >= 0:
        overrides.insert(0, f"gaia.seed={seed}")
    opts = YcsbOptions(
        app=app,
        workload=workload,
        infra=infra,
        records=records or None,
        ops=ops or None,
        threads=threads,
        procs=procs,
        target=target or None,
        host=host,
        port=port,
        run_dir=Path(run_dir) if run_dir else None,
        files=list(P or []),
        overrides=overrides,
        load="load" in wanted,
        run="run" in wanted,
        record_writes=Path(record_writes) if record_writes else None,
        save=not no_save,
        external=external,
        status=False if quiet else None,
    )
    if image:
        opts.image = image
    outcome = run_ycsb(opts)
    if outcome.path is not None:
        print(f"# result record: {outcome.path}")


TASKS = [ycsb]
