"""The recorder's helpers: what becomes a metric, batches within MLflow's limits, and the default plan."""

from __future__ import annotations

import math

import mlflow
import numpy as np
import pytest
from mlflow.entities import Metric, Param

from harness.judging.rounds import Plan
from harness.store import tags as tag
from harness.store import tracking
from harness.store.tracking import Recorder, is_finite_number


@pytest.mark.parametrize("value,finite", [
    (1, True), (0.5, True), (-3.0, True), (np.float64(2.0), True),
    (math.nan, False), (math.inf, False), (-math.inf, False), (True, False), (False, False),
    ("1.0", False), (None, False), ([1.0], False),
])
def test_only_finite_ints_and_floats_are_numbers(value, finite):
    assert is_finite_number(value) is finite


class FakeClient:
    def __init__(self):
        self.calls: list[tuple[str, int, int]] = []

    def log_batch(self, run_id, metrics=(), params=()):
        self.calls.append((run_id, len(params), len(metrics)))


def test_batches_keep_within_mlflow_s_limits():
    client = FakeClient()
    params = [Param(f"p{i}", str(i)) for i in range(250)]
    metrics = [Metric("m", float(i), 0, i) for i in range(2001)]
    tracking.log_batches(client, "r", metrics, params)
    assert client.calls == [("r", 100, 0), ("r", 100, 0), ("r", 50, 0),
                            ("r", 0, 1000), ("r", 0, 1000), ("r", 0, 1)]


def test_nothing_to_send_sends_nothing():
    client = FakeClient()
    tracking.log_batches(client, "r", [])
    tracking.log_batches(client, "r", [], [])
    assert client.calls == []


def test_a_recorder_without_a_plan_gets_its_device_s_default():
    assert Recorder("r", "cuda", 0).plan == Plan(device="cuda")
    plan = Plan(device="cpu", policy=Plan().policy)
    assert Recorder("r", "cpu", 1, plan).plan is plan


def _spec_with_units(name: str, seeds: list[int]) -> str:
    with mlflow.start_run(tags={tag.ROLE: tag.SPEC, tag.SPEC_NAME: name}) as spec:
        for seed in seeds:
            with mlflow.start_run(nested=True, tags={tag.ROLE: tag.UNIT, "seed": str(seed)}):
                mlflow.log_metric(f"loss.{name}", seed)
    return spec.info.run_id


def test_one_read_of_the_store_answers_as_its_searches_do(store):
    """Inside ``one_read`` the spec and unit lookups filter one search: the same runs, order, columns and values."""
    tracking.connect()
    specs = [_spec_with_units("a", [0, 1, 2]), _spec_with_units("b", [5])]
    with mlflow.start_run(tags={tag.ROLE: tag.UNIT}):
        pass
    ended = mlflow.start_run(tags={tag.ROLE: tag.SPEC})
    mlflow.end_run("FAILED")  # not finished: found by neither

    def lookups():
        return [tracking.spec_runs()] + [tracking.unit_runs(s) for s in specs] + [tracking.unit_runs("none")]

    searched = lookups()
    with tracking.one_read():
        filtered = lookups()
    assert [len(df) for df in searched] == [2, 3, 1, 0]
    assert ended.info.run_id not in set(searched[0]["run_id"])
    for a, b in zip(searched, filtered):
        assert list(a.get("run_id", [])) == list(b.get("run_id", []))
        assert set(a.columns) == set(b.columns)
        if len(a):
            cols = sorted(c for c in a.columns if c.startswith(("tags.", "metrics.")) or c == "status")
            assert a[cols].astype(str).equals(b[cols].astype(str))
