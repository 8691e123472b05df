"""`invoke faults`: seeded fault campaigns against replicated servers.

    invoke faults --runs 10 --seed 1 --app redis --infra apus
    invoke faults --runs 20 --app mariadb --transport tcp --nemesis partition,loss,kill
    invoke faults --runs 3 --app redis --infra tripod --transport tcp --nemesis kill,partition

Each run: clients read, write and compare-and-set fresh keys while a seeded schedule of
faults plays; then the deployment is healed and judged (linearizability, acknowledged
writes lost on any replica, state digests, failover times). Prints one line per run and
a summary, saves a `faults` result record (summaries only; full histories stay under
results/faults-histories/), `--publish` copies the record into paper_figures/data/.
Exit code 0 only when every run is clean; Ctrl-C stops and removes everything.
"""

from __future__ import annotations

from invoke import task
from invoke.exceptions import Exit

from gaia.errors import friendly


@task(auto_shortflags=False, help={
    "runs": "number of runs",
    "seed": "campaign seed (run i is replayed with --seed S --first i --runs 1)",
    "first": "index of the first run",
    "app": "redis, memcached, mariadb or mongodb",
    "infra": "apus (replicated servers), tripod (with --transport tcp) or vm (the "
             "replicated VM pair; --nemesis kill)",
    "nemesis": "fault kinds: kill,pause,restart (any transport), partition,one-way,loss,"
               "rate (tcp only)",
    "transport": "shm (one host) or tcp (one network namespace per replica)",
    "replicas": "replicas of the group",
    "durability": "memory or fsync (the APUS log)",
    "run-s": "seconds in which a run's faults start",
    "clients": "client threads",
    "keys": "keys per run",
    "election-ms": "APUS election timeout (default: the infrastructure's)",
    "fresh": "a new deployment for every run",
    "publish": "copy the record into paper_figures/data/",
})
@friendly
def faults(c, runs=10, seed=1, first=0, app="redis", infra="apus",
           nemesis="kill,pause,restart", transport="shm", replicas=3, durability="memory",
           run_s="6", clients=4, keys=24, election_ms=0, fresh=False, publish=False):
    """Seeded fault campaigns: lost writes, linearizability, failover times, digests."""
    from gaia.faults.cli import build_options, execute

    options = build_options(runs, seed, app, infra, nemesis, transport, first=int(first),
                            replicas=int(replicas), durability=durability,
                            run_s=float(run_s), clients=int(clients), keys=int(keys),
                            election_ms=int(election_ms) or None, fresh=bool(fresh))
    code, _ = execute(options, publish=bool(publish))
    if code:
        raise Exit(code=code)


TASKS = [faults]
