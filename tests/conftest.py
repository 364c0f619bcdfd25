"""Shared fixtures; Ray and PostgreSQL tests need --run-scale (nox -s scale). Benchmarks follow pytest-benchmark's
own switches (nox -s tests runs each body once with --benchmark-disable)."""

from __future__ import annotations

import time

import pytest
import yaml


@pytest.fixture(autouse=True)
def specs_in_this_process(monkeypatch):
    """A suite's specs run in the test's own process (the pool is off), so that what a test patches applies; the
    pool's own tests ask for it with --jobs."""
    monkeypatch.setenv("HARNESS_JOBS", "1")


def pytest_addoption(parser):
    parser.addoption("--run-scale", action="store_true",
                     help="also run tests marked scale (a local Ray cluster, a PostgreSQL-backed MLflow server)")


def pytest_collection_modifyitems(config, items):
    run_scale = config.getoption("--run-scale")
    for item in items:
        if "scale" in item.keywords and not run_scale:
            item.add_marker(pytest.mark.skip(reason="scale: pass --run-scale (nox -s scale)"))


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A private MLflow store (SQLite in tmp_path) and working directory for one test."""
    monkeypatch.chdir(tmp_path)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "")  # the harness's own experiment (and restored after)
    return uri


@pytest.fixture
def one_thread():
    """Tiny models on one thread: as fast, and not slowed to a crawl when another process holds a core."""
    from harness.machine.timing import cpu_threads

    with cpu_threads(1):
        yield


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
        from harness.judging.rounds import Plan

        self.device, self.seed = device, seed
        self.plan = Plan(device=device) if plan is None else plan  # as Recorder: no plan, no timing claim
        self.rounds: list[tuple[int, dict]] = []
        self.tables: dict = {}
        self.series: dict = {}
        self.datasets: list[dict] = []

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

    def log_dataset(self, name, digest, source, profile, context="training"):
        self.datasets.append({"name": name, "digest": digest, "source": source, "profile": profile,
                              "context": context})


@pytest.fixture
def memory_recorder():
    """Build a ``MemoryRecorder(device, seed, plan)``."""
    return MemoryRecorder


def unit_of(spec_run_id: str, device: str = "cpu", seed: int = 0) -> str:
    """The run id of one (device, seed) unit under a spec run."""
    from harness.store import tracking

    units = tracking.unit_runs(spec_run_id)
    match = units[(units["tags.device"] == device) & (units["tags.seed"] == str(seed))]
    assert len(match) == 1, f"no single unit run for {device}, seed {seed} under {spec_run_id}"
    return match["run_id"].iloc[0]


CONV_SHAPES = [
    {"id": "edge", "n": 1, "c_in": 1, "h": 6, "w": 8, "c_out": 1, "kh": 1, "kw": 2},
    {"id": "small", "n": 1, "c_in": 1, "h": 10, "w": 10, "c_out": 1, "kh": 3, "kw": 3},
    {"id": "lenet_c1", "n": 8, "c_in": 1, "h": 12, "w": 12, "c_out": 3, "kh": 3, "kw": 3, "padding": 1},
]
TINY_CONV = {
    "name": "conv-throughput", "title": "tiny throughput run", "kind": "conv_throughput", "seeds": [0],
    "devices": ["cpu"], "deterministic": False, "timing": {"rounds": 10, "max_rounds": 10, "budget_s": 0},
    "settings": {"shapes": CONV_SHAPES, "implementations": ["loop", "unfold", "library"], "claim_shape": "small",
                 "lenet_shapes": ["lenet_c1"], "min_run_time": 0.01, "loop_budget_s": 0.02, "peak_n": 64,
                 "peak_min_run_time": 0.01},
    "headlines": ["library_over_loop_claim", "gflops.library.lenet_c1"],
    "references": [{"metric": "library_over_loop_claim", "source": "D2", "basis": "chosen before measuring",
                    "at_least": 0}],  # plumbing, not speed
}
TINY_EDGE = {
    "name": "edge-small", "title": "small edge kernel run", "kind": "edge_kernel", "section": "5.1", "seeds": [0, 1],
    "devices": ["cpu"], "settings": {"layer": "handwritten", "init": "randn", "lr": 0.01, "steps": 20,
                                     "checkpoints": [5, 20]},
    "references": [{"metric": "loss_drop_orders", "source": "B1", "basis": "chosen before measuring", "at_least": 2}],
}
SLEEP_S = 0.02  # the slowed unfold sleeps this long in every call: 100x and more its time on these shapes


@pytest.fixture(scope="session")
def two_suites(tmp_path_factory):
    """One store holding two suites of a tiny conv-throughput and edge-kernel spec: the second with ``unfold``
    slowed by a sleep inside it (a test-only stand-in); its report written after each suite."""
    from harness.cli import main
    from harness.kinds.conv_throughput import measure as conv_throughput

    root = tmp_path_factory.mktemp("two-suites")
    specs = root / "specs"
    specs.mkdir()
    for data in (TINY_CONV, TINY_EDGE):
        (specs / f"{data['name']}.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    uri = f"sqlite:///{root / 'mlflow.db'}"
    unfold = conv_throughput.FUNCS["unfold"]

    def slowed(*args):
        time.sleep(SLEEP_S)
        return unfold(*args)

    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setenv("MLFLOW_TRACKING_URI", uri)
        assert main(["reproduce", str(specs), "--out", str(root / "first")]) == 0
        mp.setitem(conv_throughput.FUNCS, "unfold", slowed)
        assert main(["reproduce", str(specs), "--out", str(root / "reports")]) == 0
    return root, uri
