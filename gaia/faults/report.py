"""A campaign as a result record (summaries per run, never full histories) and as text.

The record (experiment "faults" unless the options say otherwise) holds the options, the
campaign totals, one small summary per run (faults with their times, outcome counts,
verdict, lost writes, digests, failover samples; the throughput timeline only for the
first `timelines` runs) and two histograms in ns: `failover` (a fault hitting the leader
until clients got an operation acknowledged) and `election` (until a new leader was
named). Full histories stay under results/faults-histories/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from analysis.records import ResultRecord
from gaia.faults.campaign import Campaign, totals
from gaia.faults.engine import BUCKET_NS, RunResult

# the schedule is in `faults` as it really happened; `seed` regenerates it
_DROPPED = ("started_ns", "ended_ns", "history", "schedule", "replicas_checked")


def run_summary(result: RunResult, keep_timeline: bool) -> dict[str, Any]:
    data = result.summary()
    for name in _DROPPED:
        data.pop(name, None)
    if not keep_timeline:
        data.pop("throughput", None)
    data["digests"] = sorted(set(result.digests.values()))  # equal ones once
    data["replicas_digested"] = sorted(result.digests)
    return data


def to_record(campaign: Campaign) -> ResultRecord:
    options = campaign.options
    results = campaign.results
    record = ResultRecord(experiment=options.experiment, infra=options.infra, app=options.app,
                          transport=options.transport, durability=options.durability,
                          config=options.to_config())
    summary = totals(results)
    record.metrics.update(summary)
    record.metrics["elapsed_s"] = round(campaign.elapsed_s, 1)
    record.metrics["interrupted"] = campaign.interrupted
    record.metrics["deployments"] = campaign.deployments
    record.metrics["bucket_ms"] = BUCKET_NS // 1_000_000
    record.metrics["history_dir"] = str(campaign.history_dir)
    record.metrics["runs_detail"] = [run_summary(r, i < options.timelines)
                                     for i, r in enumerate(results)]
    seconds = sum((r.ended_ns - r.started_ns) / 1e9 for r in results if r.ended_ns)
    record.throughput = summary["ops_ok"] / seconds if seconds else None
    for name, field in (("failover", "unavailable_ms"), ("election", "election_ms")):
        values = [f[field] * 1e6 for r in results for f in r.failovers if f[field] is not None]
        if values:
            record.add_latencies_ns(name, values)
    return record


def describe(campaign: Campaign) -> str:
    """The campaign in a few lines (what `invoke faults` prints at the end)."""
    o = campaign.options
    t = totals(campaign.results)
    fo, el = t["failover_ms"], t["election_ms"]
    lines = [
        f"{t['runs']} runs of {o.app} on {o.infra} ({o.transport}), nemesis "
        f"{','.join(o.nemesis)}, seed {o.seed}, in {campaign.elapsed_s:.0f} s "
        f"({campaign.deployments} deployment(s))"
        + (f"; INTERRUPTED after {t['runs']} of {o.runs} runs" if campaign.interrupted else ""),
        f"linearizability: {t['verdicts']}; acknowledged writes lost: "
        f"{t['lost_acknowledged_writes']}; digests equal after healing in "
        f"{t['digests_equal_runs']} of {t['runs']} runs",
        f"faults: {t['faults']} ({t['leader_faults']} hit the leader, "
        f"{t['fault_errors']} could not be applied); ops: {t['ops_ok']} ok, "
        f"{t['ops_unknown']} unknown",
        f"failover (fault on the leader -> next acknowledged op): p50 {_ms(fo['p50'])}, "
        f"p99 {_ms(fo['p99'])} ({t['failover_unrecovered']} without recovery in the run); "
        f"new leader named: p50 {_ms(el['p50'])}, p99 {_ms(el['p99'])}",
    ]
    bad = [r for r in campaign.results if not r.clean]
    for r in bad[:5]:
        lines.append(f"  not clean: {r.line()}")
        if r.witness:
            lines += ["    " + w for w in r.witness.splitlines()[:12]]
        lines += [f"    lost: {x}" for x in r.lost_examples[:3]]
    lines.append(f"histories: {campaign.history_dir}")
    return "\n".join(lines)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def save(campaign: Campaign, publish: bool = False) -> list[Path]:
    """Save the record under results/ (and copy it into paper_figures/data/)."""
    from analysis.store import publish as publish_records
    from analysis.store import save_record

    path = save_record(to_record(campaign))
    return [path, *publish_records([path])] if publish else [path]
