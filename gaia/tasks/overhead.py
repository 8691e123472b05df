"""`invoke overhead`: what replication costs each server (YCSB A, replicated vs alone).

    invoke overhead [--apps redis,memcached,mariadb,mongodb] [--full] [--replicas 3]
                    [--records N] [--ops N] [--seconds S] [--no-front-port]

Per app: saturation (closed loop) and a fixed open-loop load below it (half the
replicated saturation), the server alone and the leader of an APUS group, plus the
front port at the fixed load. Saves `app_overhead` result records, prints the ratios
(with the core count: everything shares this machine's cores) and renders the figure.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from invoke import task

from gaia.errors import ConfigError, friendly

APPS = ("redis", "memcached", "mariadb", "mongodb")


@task(help={
    "apps": "comma-separated servers (default: redis; --full: all four)",
    "full": "the full configuration (all four apps, longer runs)",
    "replicas": "replicas of the APUS group",
    "records": "YCSB records loaded (0: the mode's default)",
    "ops": "operations of the saturation run (0: the mode's default)",
    "seconds": "length of each fixed-load run (0: the mode's default)",
    "no-front-port": "skip the front-port measurement",
    "out": "directory for the figure (default results/figures)",
})
@friendly
def overhead(c, apps="", full=False, replicas=3, records=0, ops=0, seconds=0.0,
             no_front_port=False, out=""):
    """Replicated vs unreplicated throughput and p50/p99 latency per server."""
    from analysis.store import load_records
    from gaia.experiments.app_overhead import FULL, QUICK, describe, rows, run_config
    from gaia.paths import FIGURES_OUT_DIR
    from paper_figures.app_overhead import FIGURE

    cfg = FULL if full else QUICK
    if apps:
        chosen = tuple(a.strip() for a in apps.split(",") if a.strip())
        bad = [a for a in chosen if a not in APPS]
        if bad or not chosen:
            raise ConfigError(f"unknown app(s) {', '.join(bad) or repr(apps)}",
                              f"choose from {', '.join(APPS)}")
        cfg = replace(cfg, apps=chosen)
    if int(replicas) < 1:
        raise ConfigError(f"--replicas {replicas} is below 1", "use e.g. 3")
    cfg = replace(cfg, replicas=int(replicas), front_port=not no_front_port,
                  records=int(records) or cfg.records, saturation_ops=int(ops) or cfg.saturation_ops,
                  fixed_seconds=float(seconds) or cfg.fixed_seconds)
    paths = run_config(cfg)
    pairs = _pairs(paths)
    records = [r for r in load_records(experiment="app_overhead")
               if r.config.get("pair") in pairs]
    for row in rows(records):
        print(describe(row))
    figures = FIGURE.render(records, Path(out) if out else FIGURES_OUT_DIR)
    for path in figures:
        print(f"figure: {path}")


def _pairs(paths: list[Path]) -> set[str]:
    import json

    return {json.loads(p.read_text())["config"].get("pair", "") for p in paths}


TASKS = [overhead]
