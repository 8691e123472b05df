"""The asv configuration, every benchmark module's setup, and the runner's git plumbing.

No timings are asserted: the benchmarks' bodies run once to show they complete.
"""

from __future__ import annotations

import importlib
import inspect
import itertools
import json
import re
import subprocess
from pathlib import Path

import pytest

from analysis.records import ResultRecord
from gaia.bench.asvrun import (
    asv_run_command,
    benchmark_env,
    benchmark_modules,
    export_commit,
    interleaved,
    load_project,
    module_regex,
    resolve_commit,
)
from gaia.bench.history import HistoryPoint
from gaia.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
BENCH_DIR = REPO / "benchmarks"
MODULES = sorted(p.stem for p in BENCH_DIR.glob("bench_*.py"))
BENCH_PREFIXES = ("time_", "track_", "mem_", "peakmem_", "timeraw_")


def test_asv_config_is_json_naming_the_benchmark_dir():
    config = json.loads((REPO / "asv.conf.json").read_text())
    assert config["project"] == "gaia" and config["repo"] == "."
    assert config["benchmark_dir"] == "benchmarks" and BENCH_DIR.is_dir()
    assert config["environment_type"] == "virtualenv" and config["pythons"] == ["3.11"]
    assert config["branches"] == ["main"]
    for key in ("results_dir", "html_dir", "env_dir"):
        assert config[key].startswith(".asv/")  # .asv/ is git-ignored
    assert ".asv/" in (REPO / ".gitignore").read_text().split()


def test_asv_itself_accepts_the_config():
    from asv.config import Config

    config = Config.load(str(REPO / "asv.conf.json"))
    assert Path(config.benchmark_dir).name == "benchmarks"


def test_the_run_command_uses_this_virtualenv_and_files_results_under_the_commit():
    project = load_project(REPO)
    cmd = asv_run_command(
        project,
        "f" * 40,
        python="/v/bin/python",
        machine="box",
        bench=("PingPong",),
        attributes=("rounds=1",),
    )
    assert cmd[:4] == ["/v/bin/python", "-m", "asv", "run"]
    joined = " ".join(cmd)
    assert "--environment existing:/v/bin/python" in joined
    assert f"--set-commit-hash {'f' * 40}" in joined
    assert "--record-samples" in cmd and "--bench PingPong" in joined
    assert "--attribute rounds=1" in joined
    assert project.results_dir == REPO / ".asv" / "results"


def test_benchmarks_and_the_processes_they_spawn_import_the_measured_tree():
    env = benchmark_env(Path("/tmp/export-a"), {"PYTHONPATH": "/elsewhere", "HOME": "/root"})
    assert env["ASV_PYTHONPATH"] == env["PYTHONPATH"] == "/tmp/export-a"
    assert env["HOME"] == "/root"


def _benchmarks(module) -> list[tuple[object | None, str]]:
    """(class or None, attribute) of every asv benchmark in a module, as asv finds them."""
    found = []
    for name, value in vars(module).items():
        if name.startswith("_"):
            continue
        if inspect.isclass(value) and value.__module__ == module.__name__:
            found += [(value, attr) for attr in dir(value) if attr.startswith(BENCH_PREFIXES)]
        elif inspect.isfunction(value) and name.startswith(BENCH_PREFIXES):
            found.append((None, name))
    return found


def _param_sets(cls) -> list[tuple]:
    """asv's parameter combinations: `params` is one list or a list of lists."""
    params = getattr(cls, "params", [])
    if not params:
        return [()]
    if not all(isinstance(p, list | tuple) for p in params):
        params = [params]
    return list(itertools.product(*params))


def _set_up(module, cls, params: tuple = ()):
    """asv's order: setup_cache once, then setup(cache, *params) (or setup()). Returns
    the instance (or module) and the cache, or raises NotImplementedError to skip."""
    if cls is None:
        if hasattr(module, "setup"):
            module.setup()
        return module, ()
    instance = cls()
    cache = (instance.setup_cache(),) if hasattr(cls, "setup_cache") else ()
    if cache == (None,):
        cache = ()  # asv passes no cache argument for None
    if hasattr(cls, "setup"):
        instance.setup(*cache, *params)
    return instance, cache


class _FakeParams(dict):
    """Stands in for gaia.apus.bench.LatencyParams: keeps the keyword arguments."""

    def __init__(self, **kw):
        super().__init__(kw)


def _fake_run_apus(params: _FakeParams) -> list[ResultRecord]:
    """What run_apus returns, without starting a group (~30 s here)."""
    record = ResultRecord(
        "latency",
        infra="apus",
        transport=params["transport"],
        durability=params["durability"],
        config=dict(params),
    )
    record.metrics = {"p50_us": 4.5, "p99_us": 9.0, "ops_per_s": 120_000.0}
    return [record]


@pytest.fixture
def bench_apus(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))
    from benchmarks import bench_apus

    return bench_apus


@pytest.mark.parametrize("name", MODULES)
def test_each_benchmark_module_imports_and_sets_up_or_skips(name, monkeypatch, bench_apus):
    # The APUS group itself is started by `invoke bench`, not here (30 s, 3 processes).
    monkeypatch.setattr(bench_apus, "apus_benchmark", lambda: (_FakeParams, _fake_run_apus))
    module = importlib.import_module(f"benchmarks.{name}")
    benchmarks = _benchmarks(module)
    assert benchmarks, f"{name} defines no time_/track_ benchmark"
    for cls in {cls for cls, _ in benchmarks}:
        for params in _param_sets(cls):
            try:
                _set_up(module, cls, params)
            except NotImplementedError:
                continue  # asv records these as skipped


def test_poll_loop_benchmarks_complete_once(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO))
    from benchmarks import bench_pollloop as loop

    for cls, attr in [(loop.PingPongThreads, "time_round_trips"),
                      (loop.RingStream, "time_entries")]:  # fmt: skip
        instance, _ = _set_up(loop, cls)
        getattr(instance, attr)()  # raises if a side gave up or completed too few
    floor = loop.PingPongFloor()
    summary = floor.setup_cache()
    assert summary["n"] == loop.FLOOR_ROUNDS
    assert 0 < floor.track_p50(summary) <= floor.track_p99(summary)


def test_apus_tracks_read_the_latency_record(monkeypatch, bench_apus):
    monkeypatch.setattr(bench_apus, "apus_benchmark", lambda: (_FakeParams, _fake_run_apus))
    bench = bench_apus.ApusConsensus()
    measured = bench.setup_cache()
    bench.setup(measured)
    assert (bench.track_p50(measured), bench.track_p99(measured)) == (4.5, 9.0)
    assert bench.track_throughput(measured) == 120_000.0
    assert bench.track_p50.unit == bench.track_p99.unit == "µs"
    assert bench.track_throughput.unit == "ops/s"


def test_apus_benchmarks_skip_on_commits_without_apus(monkeypatch, bench_apus):
    monkeypatch.setattr(bench_apus, "apus_benchmark", lambda: None)
    bench = bench_apus.ApusConsensus()
    cache = bench.setup_cache()
    assert cache == {}  # not None: asv would then call setup() without it
    with pytest.raises(NotImplementedError, match="not in this commit"):
        bench.setup(cache)


def test_apus_configuration_is_one_latency_params_accepts(bench_apus):
    api = bench_apus.apus_benchmark()
    if api is None:
        pytest.skip("gaia.apus.bench does not import in this checkout")
    params = api[0](**bench_apus.CONFIG)
    assert (params.replicas, params.transport, params.durability) == (3, "shm", "memory")


def test_commits_resolve_and_export_without_touching_the_checkout(tmp_path: Path):
    head = resolve_commit(REPO, "HEAD")
    assert len(head) == 40
    status = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True,
                            text=True).stdout  # fmt: skip
    tree = export_commit(REPO, head, tmp_path / "tree")
    assert (tree / "pyproject.toml").exists() and not (tree / ".git").exists()
    after = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True,
                           text=True).stdout  # fmt: skip
    assert after == status


def test_an_unknown_revision_is_a_config_error():
    with pytest.raises(ConfigError, match="names no commit"):
        resolve_commit(REPO, "no-such-branch-xyz")


def test_history_plot_writes_png_and_pdf(tmp_path: Path):
    from paper_figures.latency_history import render

    points = [
        HistoryPoint(c * 40, i, name, value, "µs")
        for i, c in enumerate("abc")
        for name, value in (("bench_apus.ApusConsensus.track_p50", 3.0 + i),
                            ("bench_apus.ApusConsensus.track_p99", 9.0 + i))
    ]  # fmt: skip
    paths = render(points, tmp_path, subtitle="test")
    assert [p.suffix for p in paths] == [".png", ".pdf"]
    assert all(p.stat().st_size > 1000 for p in paths)
    with pytest.raises(ValueError, match="no benchmark values"):
        render([], tmp_path)


def test_commits_alternate_module_by_module_abba():
    plan = interleaved(["bench_a", "bench_b"], ["A", "B"], rounds=2)
    assert plan == [
        (0, "bench_a", "A"), (0, "bench_a", "B"), (0, "bench_b", "A"), (0, "bench_b", "B"),
        (1, "bench_a", "B"), (1, "bench_a", "A"), (1, "bench_b", "B"), (1, "bench_b", "A"),
    ]  # fmt: skip
    assert benchmark_modules(load_project(REPO)) == MODULES


def test_module_regex_selects_one_module_narrowed_by_the_user_regex():
    names = [
        "bench_pollloop.PingPongThreads.time_round_trips",
        "bench_pollloop.RingStream.time_entries",
        "bench_vm.time_xxh3_256mib",
        "bench_pollloop_extra.time_x",
    ]
    chosen = [n for n in names if re.search(module_regex("bench_pollloop"), n)]
    assert chosen == names[:2]
    narrowed = [n for n in names if re.search(module_regex("bench_pollloop", "Ring|xxh"), n)]
    assert narrowed == ["bench_pollloop.RingStream.time_entries"]
