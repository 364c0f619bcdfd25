"""The recorder's helpers: what becomes a metric, batches within MLflow's limits, and the default plan."""

from __future__ import annotations

import math

import numpy as np
import pytest
from mlflow.entities import Metric, Param

from harness.judging.rounds import Plan
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
