"""The campaign engine on a system we control: one real redis-server playing a whole
deployment (its "replicas" are handles whose faults change nothing). A faithful system
gives clean runs; a planted failover to a stale state must be caught as lost writes and
a linearizability violation; a run that breaks is recorded and the next run gets a fresh
deployment, every deployment stopped."""

from __future__ import annotations

import pytest
import redis

import apps
from gaia.cluster.host import LocalHost
from gaia.cluster.nemesis import Node
from gaia.errors import GaiaError
from gaia.faults import campaign as campaign_module
from gaia.faults import systems
from gaia.faults.campaign import CampaignInterrupted, run_campaign
from gaia.faults.options import CampaignOptions
from gaia.faults.report import describe, to_record
from gaia.faults.systems import System


class Handle:
    """A replica process stand-in: faults on it are noted and do nothing else."""

    def __init__(self, name: str, on_fault) -> None:
        self.name, self.on_fault, self.signals = name, on_fault, []

    pid = 0

    def alive(self) -> bool:
        return True

    def signal(self, sig: int) -> None:
        self.signals.append(sig)
        self.on_fault()

    def kill(self) -> None:
        self.on_fault()

    def stop(self, timeout: float = 10.0) -> None:
        return None

    def log_tail(self, lines: int = 20) -> str:
        return ""


class OneRedis(System):
    kinds = ("kill", "pause", "restart")
    starts = 0
    stops = 0

    def __init__(self, options: CampaignOptions, run_dir, stale=False, break_recover=()):
        self.server = apps.get("redis")(data_dir=run_dir / "redis")
        self.stale, self.break_recover = stale, break_recover
        self.recovers = 0
        self.captured: dict[bytes, bytes] | None = None

    def start(self) -> None:
        type(self).starts += 1
        self.server.start()
        self.direct = redis.Redis(self.server.host, self.server.port)
        self._nodes = [Node(f"r{i}", LocalHost(), launch=lambda h=h: h, process=h)
                       for i, h in enumerate(Handle(f"r{i}", self.capture) for i in range(3))]

    def capture(self) -> None:
        """The planted bug: the state at the first fault is what a failover restores."""
        if self.stale and self.captured is None:
            self.captured = {k: self.direct.get(k) for k in self.direct.keys("f*")}

    def nodes(self):
        return self._nodes

    def leader(self):
        return "r0"

    def leader_endpoint(self):
        return self.server.host, self.server.port

    def endpoints(self):
        return {"r0": self.leader_endpoint()}

    def leader_changes(self):
        return []

    def recover(self, timeout: float = 240.0):
        self.recovers += 1
        if self.recovers in self.break_recover:
            raise GaiaError("replica r1 did not come back", "(planted)")
        if self.captured is not None:
            for key in self.direct.keys("f*"):
                if key not in self.captured:
                    self.direct.delete(key)
            for key, value in self.captured.items():
                self.direct.set(key, value)
            self.captured = None
        return []

    def digests(self):
        return {"r0": self.server.digest()}

    def stop(self) -> None:
        type(self).stops += 1
        self.server.stop()
        self.server.cleanup()


def options(**more) -> CampaignOptions:
    return CampaignOptions(infra="one-redis", run_s=1.2, tail_s=0.2, fault_s=(0.2, 0.5),
                           gap_s=(0.2, 0.5), keys=6, clients=3, leader_share=1.0, **more)


@pytest.fixture
def infra(tmp_path, monkeypatch):
    """Register OneRedis with the given behaviour; histories go under tmp_path."""
    monkeypatch.setattr(campaign_module, "RESULTS_DIR", tmp_path / "results")
    monkeypatch.setenv("GAIA_RUN_ROOT", str(tmp_path / "runs"))  # deployments' files
    OneRedis.starts = OneRedis.stops = 0

    def use(**behaviour) -> None:
        systems.register("one-redis", lambda opts, run_dir: OneRedis(opts, run_dir,
                                                                     **behaviour))

    yield use
    systems._INFRAS.pop("one-redis", None)


def test_a_faithful_system_gives_clean_runs(infra):
    infra()
    done = run_campaign(options(runs=3, seed=7))
    assert [r.index for r in done.results] == [0, 1, 2]
    for result in done.results:
        assert result.clean, result.line()
        assert result.faults and result.ops["ok"] > 0 and result.lost == 0
        assert result.failovers, "faults aimed at the leader are measured"
    assert done.deployments == 1 and OneRedis.stops == OneRedis.starts == 1
    histories = sorted(p.name for p in done.history_dir.iterdir())
    assert "run-0000.history.jsonl" in histories
    record = to_record(done)
    assert record.metrics["violations"] == 0 and record.metrics["clean_runs"] == 3
    assert "failover" in record.histograms
    assert len(record.metrics["runs_detail"]) == 3


def test_the_same_seed_gives_the_same_schedules(infra):
    infra()
    first = run_campaign(options(runs=2, seed=11))
    again = run_campaign(options(runs=1, seed=11, first=1))
    assert again.results[0].schedule == first.results[1].schedule
    assert first.results[0].schedule != first.results[1].schedule


def test_a_failover_to_a_stale_state_is_caught(infra):
    infra(stale=True)
    done = run_campaign(options(runs=1, seed=3))
    (result,) = done.results
    assert result.lost > 0 and result.verdict == "illegal", result.line()
    assert not result.clean
    assert "not clean" in describe(done) and "lost:" in describe(done)


def test_a_broken_run_is_recorded_and_the_next_run_gets_a_fresh_deployment(infra):
    infra(break_recover=(2,))
    done = run_campaign(options(runs=3, seed=5))
    assert [bool(r.error) for r in done.results] == [False, True, False]
    assert "did not come back" in done.results[1].error
    assert done.results[1].faults, "what happened before the break is kept"
    assert done.results[2].clean
    assert done.deployments == 2 and OneRedis.stops == OneRedis.starts == 2


def test_an_interrupted_campaign_keeps_the_runs_it_finished(infra):
    infra()

    def interrupt(result) -> None:
        raise KeyboardInterrupt  # Ctrl-C right after the first run

    with pytest.raises(CampaignInterrupted) as caught:
        run_campaign(options(runs=3, seed=7), on_result=interrupt)
    done = caught.value.campaign
    assert done.interrupted and [r.index for r in done.results] == [0]
    assert OneRedis.stops == OneRedis.starts == 1, "the deployment was stopped"
    assert to_record(done).metrics["interrupted"] is True
    assert "INTERRUPTED after 1 of 3 runs" in describe(done)
