"""A1-A15 through the kind: every shipped worked-example reference holds exactly, and every output is declared."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.judging.verdict import check_one
from harness.kinds.worked_examples import KIND, measure
from harness.specs.spec import load_spec
from harness.store.tracking import Recorder

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


class NullRecorder(Recorder):
    def __init__(self, seed: int = 0):
        super().__init__(run_id="-", device="cpu", seed=seed)

    def log_json(self, name, obj):
        self.logged = (name, obj)


@pytest.mark.parametrize("name", ["worked-convolution", "worked-pooling", "worked-lenet-shapes", "worked-batch-norm",
                                  "worked-skip-blocks"])
def test_shipped_references_hold(name):
    spec = load_spec(EXPERIMENTS / f"{name}.yaml")
    measured = KIND.run(spec.settings, NullRecorder())
    for ref in spec.references:
        ok, off = check_one(ref, measured[ref.metric])
        assert ok, f"{ref.source.ref} {ref.metric}: {measured[ref.metric]} off by {off}"


def test_the_metric_table_is_what_run_returns_and_logs():
    rec = NullRecorder()
    measured = KIND.run(measure.Settings(random_cases=[measure.RandomCase(c_in=1, height=4, width=4, c_out=1,
                                                                          kh=2, kw=2)]), rec)
    assert set(KIND.names) == set(measured) and rec.logged == ("outputs", measured)
    assert KIND.timings == {} and KIND.curves == ()
    assert {m.name for m in KIND.metrics if m.better == "lower"} == {
        "conv1x1_abs_diff", "max_abs_diff_conv", "max_abs_diff_maxpool", "max_abs_diff_avgpool",
        "bn_train_max_abs_diff", "bn_moving_mean_max_abs_diff", "bn_lenet_max_abs_diff"}


def test_no_tables_and_no_section_beyond_the_verdicts():
    assert KIND.tables(None) == {} and KIND.section(None) == ""


def test_shapes_layer_by_layer_a12():
    shapes = measure.lenet_examples()["lenet_d2l_shapes"]
    assert shapes[0] == [1, 6, 28, 28] and shapes[2] == [1, 6, 14, 14] and shapes[5] == [1, 16, 5, 5]
    assert shapes[6] == [1, 400] and shapes[-1] == [1, 10]


def test_library_agreement_on_random_cases():
    cases = [measure.RandomCase(c_in=2, height=9, width=7, c_out=3, kh=3, kw=2),
             measure.RandomCase(c_in=1, height=4, width=4, c_out=1, kh=4, kw=4)]
    gaps = measure.library_agreement(cases, seed=3)
    assert gaps["max_abs_diff_conv"] < 1e-4 and gaps["max_abs_diff_maxpool"] == 0
    assert gaps["max_abs_diff_avgpool"] < 1e-5


def test_batch_norm_examples_see_the_bessel_factor_and_repeat_for_a_seed():
    a, b = measure.batch_norm_examples(seed=1), measure.batch_norm_examples(seed=1)
    assert a == b and abs(a["bn_moving_var_ratio"] - 8 / 7) < 1e-4
    assert 0 < a["bn_train_max_abs_diff"] < 1e-5 and 0 < a["bn_lenet_max_abs_diff"] < 1e-5  # rounding, not zero


def test_skip_examples_are_the_pages_shapes():
    assert measure.skip_examples() == {"residual_shapes": [[4, 3, 6, 6], [4, 6, 3, 3]],
                                       "dense_block_shapes": [[4, 23, 8, 8], [4, 10, 4, 4]]}
