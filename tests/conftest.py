"""Shared fixtures; long runs need --run-slow, Ray and PostgreSQL tests --run-scale (nox -s scale), benchmarks
run only under --benchmark-only."""

from __future__ import annotations

import pytest
import torch
import yaml


def pytest_addoption(parser):
    parser.addoption("--run-slow", action="store_true", help="also run tests marked slow (full trainings)")
    parser.addoption("--run-scale", action="store_true",
                     help="also run tests marked scale (a local Ray cluster, a PostgreSQL-backed MLflow server)")


def pytest_collection_modifyitems(config, items):
    bench_only = config.getoption("benchmark_only", default=False)
    run_slow, run_scale = config.getoption("--run-slow"), config.getoption("--run-scale")
    for item in items:
        if "slow" in item.keywords and not run_slow:
            item.add_marker(pytest.mark.skip(reason="slow: pass --run-slow"))
        if "scale" in item.keywords and not run_scale:
            item.add_marker(pytest.mark.skip(reason="scale: pass --run-scale (nox -s scale)"))
        if "benchmark" in getattr(item, "fixturenames", ()) and not bench_only:
            item.add_marker(pytest.mark.skip(reason="benchmark: run with pytest --benchmark-only"))


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A private MLflow store (SQLite in tmp_path) and working directory for one test."""
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


@pytest.fixture
def one_thread():
    """Tiny models on one thread: as fast, and not slowed to a crawl when another process holds a core."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def write_spec(tmp_path):
    """Write spec data as ``tmp_path/<its name>.yaml`` and return the path."""

    def write(data: dict):
        path = tmp_path / f"{data['name']}.yaml"
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    return write


class MemoryRecorder:
    """A stand-in for ``tracking.Recorder`` that keeps what a task logs in memory (no MLflow)."""

    def __init__(self, device: str = "cpu", seed: int = 0, plan=None):
        from harness.rounds import Plan

        self.device, self.seed = device, seed
        self.plan = Plan(device=device) if plan is None else plan  # as Recorder: no plan, no timing claim
        self.rounds: list[tuple[int, dict]] = []
        self.tables: dict = {}
        self.series: dict = {}

    def log_round(self, number, values):
        self.rounds.append((number, dict(values)))

    def log_table(self, name, df):
        self.tables[name] = df

    def log_series(self, name, values, steps=None):
        self.series[name] = (list(steps or range(1, len(values) + 1)), list(values))

    def log_metric(self, name, value, step=0):
        self.series.setdefault(name, ([], []))
        self.series[name][0].append(step)
        self.series[name][1].append(value)

    def log_json(self, name, obj):
        self.tables[name] = obj


@pytest.fixture
def memory_recorder():
    """Build a ``MemoryRecorder(device, seed, plan)``."""
    return MemoryRecorder


def unit_of(spec_run_id: str, device: str = "cpu", seed: int = 0) -> str:
    """The run id of one (device, seed) unit under a spec run."""
    from harness import tracking

    units = tracking.unit_runs(spec_run_id)
    match = units[(units["tags.device"] == device) & (units["tags.seed"] == str(seed))]
    assert len(match) == 1, f"no single unit run for {device}, seed {seed} under {spec_run_id}"
    return match["run_id"].iloc[0]
