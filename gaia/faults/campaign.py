"""A seeded campaign: N runs against one deployment (or a fresh one per run), each run
judged on its own, then one summary and one result record.

Nothing outlives a campaign: the deployment is stopped (processes, shared memory,
namespaces and their firewall rules) when the campaign ends, when a run breaks (the next
run gets a fresh deployment) and when it is interrupted (Ctrl-C, SIGTERM).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

from gaia.errors import GaiaError
from gaia.faults.engine import RunResult, run_once
from gaia.faults.options import CampaignOptions
from gaia.faults.systems import System, factory
from gaia.paths import RESULTS_DIR, new_run_dir

Progress = Callable[[str], None]


@dataclass
class Campaign:
    options: CampaignOptions
    results: list[RunResult] = field(default_factory=list)
    run_dir: Path = field(default_factory=Path)
    history_dir: Path = field(default_factory=Path)
    deployments: int = 0
    started: float = 0.0
    elapsed_s: float = 0.0
    interrupted: bool = False  # Ctrl-C / SIGTERM: fewer runs than options.runs


class CampaignInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM ended the campaign early; `campaign` holds the runs finished
    before it (everything was torn down already)."""

    def __init__(self, campaign: Campaign) -> None:
        super().__init__("interrupted")
        self.campaign = campaign


STOP = threading.Event()  # set by Ctrl-C or SIGTERM: the campaign winds down
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    STOP.set()
    raise KeyboardInterrupt(f"signal {signum}")


def _note(signum: int, frame: FrameType | None) -> None:
    STOP.set()


@contextmanager
def interruptible() -> Iterator[None]:
    """Ctrl-C and SIGTERM end the campaign (KeyboardInterrupt, STOP set), whatever a
    failing undo or heal raises meanwhile. Signal handlers belong to the main thread."""
    STOP.clear()
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _interrupt) for sig in _SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def shielded(teardown: Callable[[], None]) -> None:
    """Run a teardown that a Ctrl-C (or SIGTERM) must not cut short: the signal is
    noted (STOP) and acted on afterwards."""
    if threading.current_thread() is not threading.main_thread():
        teardown()
        return
    previous = {sig: signal.signal(sig, _note) for sig in _SIGNALS}
    try:
        teardown()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if STOP.is_set() and previous[signal.SIGINT] is _interrupt:
        raise KeyboardInterrupt("interrupted during a teardown")


def _deploy(options: CampaignOptions, run_dir: Path, number: int) -> System:
    # short names: replicas keep unix sockets below this dir (108-byte path limit)
    system = factory(options.infra)(options, run_dir / f"d{number}")
    try:
        system.start()
    except BaseException:
        shielded(system.stop)
        raise
    return system


def history_dir_for(options: CampaignOptions) -> Path:
    stamp = time.strftime("%Y%m%dT%H%M%S")
    return RESULTS_DIR / "faults-histories" / f"{stamp}-{options.app}-{options.infra}-" \
                                                f"{options.transport}-s{options.seed}"


def check(options: CampaignOptions) -> None:
    """Refuse a campaign that cannot run, before anything starts (one clear error)."""
    make = factory(options.infra)
    kinds = getattr(make, "kinds", None)
    options.validate(kinds) if kinds else options.validate()
    refuse = getattr(make, "refuse", None)
    if refuse is not None:
        refuse(options)


class Deployments:
    """The campaign's current deployment: made on demand, retired when worn or broken
    (its directory kept when one of its runs needs explaining)."""

    def __init__(self, options: CampaignOptions, run_dir: Path) -> None:
        self.options, self.run_dir = options, run_dir
        self.system: System | None = None
        self.count = 0
        self.runs = 0  # runs on the current one
        self.keep = False

    def current(self, progress: Progress) -> System:
        if self.system is None:
            o = self.options
            progress(f"deploying {o.app} on {o.infra} ({o.transport})")
            self.count += 1
            self.system = _deploy(o, self.run_dir, self.count)
        return self.system

    def ran(self, result: RunResult) -> None:
        assert self.system is not None
        self.runs += 1
        self.keep = self.keep or not result.clean
        o = self.options
        worn = o.redeploy_every and self.runs >= o.redeploy_every
        if result.error or o.fresh or not self.system.reusable or worn:
            self.retire()

    def retire(self) -> None:
        if self.system is not None:
            system, self.system = self.system, None
            shielded(system.stop)
            if not self.keep:
                system.remove()
        self.runs, self.keep = 0, False


def run_campaign(options: CampaignOptions, progress: Progress = lambda msg: None,
                 on_result: Callable[[RunResult], None] = lambda r: None) -> Campaign:
    """Every run of the campaign (see the module docstring)."""
    check(options)
    campaign = Campaign(options, run_dir=new_run_dir("fc"),
                        history_dir=history_dir_for(options), started=time.monotonic())
    campaign.history_dir.mkdir(parents=True, exist_ok=True)
    deployments = Deployments(options, campaign.run_dir)
    try:
        with interruptible():
            for index in options.indices():
                system = deployments.current(progress)
                progress(f"run {index} ({index - options.first + 1}/{options.runs})")
                result = _run(system, options, index, campaign.history_dir)
                campaign.results.append(result)
                on_result(result)
                deployments.ran(result)
    except KeyboardInterrupt as exc:
        campaign.interrupted = True
        interrupted = CampaignInterrupted(campaign)
        interrupted.__cause__ = exc
    else:
        interrupted = None
    finally:
        deployments.retire()
        if not any(campaign.run_dir.iterdir()):
            campaign.run_dir.rmdir()  # every deployment was clean and removed
        campaign.deployments = deployments.count
        campaign.elapsed_s = time.monotonic() - campaign.started
    if interrupted is not None:
        raise interrupted
    return campaign


def _run(system: System, options: CampaignOptions, index: int, history_dir: Path
         ) -> RunResult:
    """One run; a run that breaks is a result with its error, not the campaign's end
    (unless the campaign is being interrupted)."""
    result = RunResult(index, options.run_seed(index))  # kept, filled as far as it got
    try:
        return run_once(system, options, index, history_dir, STOP, result)
    except Exception as exc:
        if STOP.is_set():
            raise KeyboardInterrupt("interrupted") from exc
        text = exc.one_line() if isinstance(exc, GaiaError) else f"{type(exc).__name__}: {exc}"
        result.error = text
        result.witness = _description(system)
        return result


def _description(system: System) -> str:
    """The tail of what the deployment says about itself (for a broken run)."""
    try:
        return system.describe()[-4000:]
    except Exception as exc:
        return f"(no description: {exc})"


def totals(results: list[RunResult]) -> dict[str, Any]:
    """Campaign-wide numbers: verdicts, lost writes, digests, failover percentiles."""
    from gaia.faults.analysis import percentiles_ms

    verdicts: dict[str, int] = {}
    for r in results:
        key = "error" if r.error else r.verdict
        verdicts[key] = verdicts.get(key, 0) + 1
    unavailable = [f["unavailable_ms"] for r in results for f in r.failovers]
    election = [f["election_ms"] for r in results for f in r.failovers]
    as_ns = [None if v is None else int(v * 1e6) for v in unavailable]
    el_ns = [None if v is None else int(v * 1e6) for v in election]
    return {
        "runs": len(results),
        "clean_runs": sum(r.clean for r in results),
        "verdicts": verdicts,
        "violations": verdicts.get("illegal", 0),
        "lost_acknowledged_writes": sum(r.lost for r in results),
        "digests_equal_runs": sum(r.digests_equal for r in results if not r.error),
        "faults": sum(len(r.faults) for r in results),
        "leader_faults": len(unavailable),
        "failover_ms": percentiles_ms(as_ns),
        "election_ms": percentiles_ms(el_ns),
        "failover_unrecovered": sum(v is None for v in unavailable),
        "ops_ok": sum(r.ops.get("ok", 0) for r in results),
        "ops_unknown": sum(r.ops.get("unknown", 0) for r in results),
        "fault_errors": sum(len(r.fault_errors) for r in results),
    }
