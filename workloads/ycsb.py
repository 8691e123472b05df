"""One YCSB experiment end to end: properties, infrastructure, load, run, report, record.

`run_ycsb(YcsbOptions(...))` is what `invoke ycsb` and `python -m workloads` call:
  1. merge the workload file (a-f or a path), extra -P files, the command-line sizes
     (--records, --ops, --threads, --target) and -p overrides, and validate them all
     before anything starts (bad input: one ConfigError line);
  2. obtain the server from the --infra provider (infra.py);
  3. load phase, then run phase (either can be skipped), each printed in YCSB's text
     format; with `external=True` the real YCSB runs the phases instead (external.py);
  4. build the result record (experiment "ycsb") and save it with analysis.store.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from analysis.records import ResultRecord
from analysis.store import save_record
from gaia.errors import ConfigError, GaiaError
from workloads import bindings, infra
from workloads import external as external_ycsb
from workloads.parse import parse_text, to_record
from workloads.properties import WorkloadConfig, load, validate
from workloads.report import build_record, export_text
from workloads.runner import PhaseResult, PhaseSpec, run_phase


@dataclass
class YcsbOptions:
    app: str
    workload: str = "a"
    infra: str = "none"
    records: int | None = None
    ops: int | None = None
    threads: int = 1
    procs: int = 1
    target: int | None = None
    host: str = "127.0.0.1"
    port: int = 0
    run_dir: Path | None = None
    files: list[str] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)
    load: bool = True
    run: bool = True
    record_writes: Path | None = None
    save: bool = True
    external: bool = False
    image: str = external_ycsb.DEFAULT_IMAGE
    status: bool | None = None


@dataclass
class YcsbOutcome:
    record: ResultRecord
    path: Path | None
    load_text: str = ""
    run_text: str = ""
    load: PhaseResult | None = None
    run: PhaseResult | None = None


def _base(opts: YcsbOptions) -> dict[str, str]:
    base: dict[str, str] = {}
    if opts.records is not None:
        base["recordcount"] = str(opts.records)
    if opts.ops is not None:
        base["operationcount"] = str(opts.ops)
    if opts.target is not None:
        base["target"] = str(opts.target)
    base["threadcount"] = str(max(1, opts.threads))  # all clients, over --procs processes
    if opts.record_writes is not None:
        base["gaia.recordwrites"] = str(opts.record_writes)
    base["dotransactions"] = "true" if opts.run else "false"  # Client's -load / -t
    return base


def configure(opts: YcsbOptions) -> WorkloadConfig:
    """Every input checked up front: counts, properties, binding name, infra name."""
    for name, value, lo in (
        ("--threads", opts.threads, 1),
        ("--procs", opts.procs, 1),
        ("--records", opts.records, 1),
        ("--ops", opts.ops, 0),
        ("--target", opts.target, 0),
    ):
        if value is not None and value < lo:
            raise ConfigError(f"{name} {value} is below {lo}", f"give {name} a value >= {lo}")
    bindings.canonical(opts.app)
    infra.get(opts.infra)
    if not opts.load and not opts.run:
        raise ConfigError("both phases are skipped", "run the load phase, the run phase or both")
    return load(opts.workload, opts.files, opts.overrides, _base(opts))


def _print(out: TextIO, phase: str, text: str) -> None:
    print(f"# YCSB {phase} phase", file=out)
    out.write(text)
    out.flush()


def _export(config: WorkloadConfig, text: str, load_before_run: bool) -> None:
    """YCSB's `exportfile`: the report also goes to that file (the load phase's to
    `<exportfile>.load` when both phases run in one invocation)."""
    if config.exportfile:
        path = Path(config.exportfile + (".load" if load_before_run else ""))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def _settings(opts: YcsbOptions, target: infra.Target) -> dict[str, Any]:
    return {
        "workload": opts.workload,
        "threads": opts.threads,
        "procs": opts.procs,
        "binding": bindings.canonical(opts.app),
        "endpoint": target.endpoint.describe(),
        "infra_details": target.details,
        "runner": "external" if opts.external else "gaia",
    }


def run_ycsb(opts: YcsbOptions, out: TextIO | None = None) -> YcsbOutcome:
    out = out or sys.stdout
    config = configure(opts)
    app = bindings.canonical(opts.app)
    rundir = opts.run_dir or config.get("gaia.rundir")
    options = infra.InfraOptions(
        host=opts.host,
        port=opts.port,
        run_dir=Path(rundir) if rundir else None,
        failover_timeout=float(config.get("gaia.failover.timeout") or 30),
        extra=infra.extra_options(config.props),
    )
    with infra.get(opts.infra)(app, options) as target:
        if target.props:  # the infrastructure's settings, under the user's own
            config = validate({**target.props, **config.props})
        if opts.external:
            return _run_external(opts, config, app, target, out)
        outcome = YcsbOutcome(record=None, path=None)  # type: ignore[arg-type]
        writes = config.get("gaia.recordwrites")  # set by --record-writes or -p
        record_path = Path(writes) if writes else None
        for is_load, enabled in ((True, opts.load), (False, opts.run)):
            if not enabled:
                continue
            spec = PhaseSpec(
                app, target.endpoint, config, is_load, config.threadcount, opts.procs, record_path
            )
            result = run_phase(spec, show_status=opts.status)
            text = export_text(result, config)
            _print(out, spec.phase, text)
            _export(config, text, is_load and opts.run)
            if is_load:
                outcome.load, outcome.load_text = result, text
            else:
                outcome.run, outcome.run_text = result, text
        main = outcome.run or outcome.load
        main_text = outcome.run_text if outcome.run else outcome.load_text
        assert main is not None
        outcome.record = build_record(
            main,
            main_text,
            config,
            app=app,
            infra=target.infra,
            settings=_settings(opts, target),
            load=outcome.load if outcome.run else None,
            load_text=outcome.load_text,
        )
        outcome.record.config["phase"] = "run" if outcome.run else "load"
    if opts.save:
        outcome.path = save_record(outcome.record)
    return outcome


def _run_external(
    opts: YcsbOptions, config: WorkloadConfig, app: str, target: infra.Target, out: TextIO
) -> YcsbOutcome:
    kind = external_ycsb.launcher()
    if kind is None:
        raise GaiaError(
            "no Java YCSB here: no `ycsb` on PATH and no Docker engine answers",
            "install YCSB (bin/ycsb on PATH) or Docker, or drop --external",
        )
    texts = {}
    for phase, enabled in (("load", opts.load), ("run", opts.run)):
        if enabled:
            texts[phase] = external_ycsb.run_phase(
                kind,
                phase,
                app,
                config.props,
                target.endpoint,
                config.threadcount,
                opts.target,
                opts.image,
            )
            _print(out, phase, texts[phase])
    main = texts.get("run") or texts["load"]
    record = to_record(
        parse_text(main),
        app=app,
        infra=target.infra,
        config={"properties": dict(config.props), **_settings(opts, target)},
        source=f"external-ycsb ({kind})",
    )
    if "run" in texts and "load" in texts:
        record.metrics["load"] = to_record(parse_text(texts["load"]), app=app).metrics["run"]
    outcome = YcsbOutcome(
        record=record, path=None, load_text=texts.get("load", ""), run_text=texts.get("run", "")
    )
    if opts.save:
        outcome.path = save_record(record)
    return outcome
