"""A1-A13 through the task: every shipped worked-example reference holds exactly."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.spec import load_spec
from harness.tasks import worked_examples
from harness.tracking import Recorder
from harness.verdict import check_one

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


class NullRecorder(Recorder):
    def __init__(self, seed: int = 0):
        super().__init__(run_id="-", device="cpu", seed=seed)

    def log_json(self, name, obj):
        self.logged = (name, obj)


@pytest.mark.parametrize("name", ["worked-convolution", "worked-pooling", "worked-lenet-shapes"])
def test_shipped_references_hold(name):
    spec = load_spec(EXPERIMENTS / f"{name}.yaml")
    measured = worked_examples.run(spec.settings, NullRecorder())
    for ref in spec.references:
        ok, off = check_one(ref, measured[ref.metric])
        assert ok, f"{ref.source.ref} {ref.metric}: {measured[ref.metric]} off by {off}"


def test_shapes_layer_by_layer_a12():
    shapes = worked_examples.lenet_examples()["lenet_d2l_shapes"]
    assert shapes[0] == [1, 6, 28, 28] and shapes[2] == [1, 6, 14, 14] and shapes[5] == [1, 16, 5, 5]
    assert shapes[6] == [1, 400] and shapes[-1] == [1, 10]


def test_library_agreement_on_random_cases():
    cases = [worked_examples.RandomCase(c_in=2, height=9, width=7, c_out=3, kh=3, kw=2),
             worked_examples.RandomCase(c_in=1, height=4, width=4, c_out=1, kh=4, kw=4)]
    gaps = worked_examples.library_agreement(cases, seed=3)
    assert gaps["max_abs_diff_conv"] < 1e-4 and gaps["max_abs_diff_maxpool"] == 0
    assert gaps["max_abs_diff_avgpool"] < 1e-5
