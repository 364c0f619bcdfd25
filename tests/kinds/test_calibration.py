"""H4: the calibration kind runs the real rule under the spec's policy and reports its rates; the shipped spec."""

from __future__ import annotations

from pathlib import Path

from harness.judging.rounds import Plan
from harness.kinds.calibration import KIND
from harness.kinds.calibration.measure import Settings
from harness.schema import TimingPolicy
from harness.specs.spec import load_spec

from .memory_view import MemoryView, markdown_rows

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "experiments" / "calibration.yaml"


def measured(memory_recorder):
    rec = memory_recorder(plan=Plan(policy=TimingPolicy(rounds=8, max_rounds=30)))
    settings = Settings(noises=["lognormal"], truths=[1.0, 1.1, 1.25], trials=60)
    return KIND.run(settings, rec), rec


def test_rates_and_rounds_under_the_spec_policy(memory_recorder):
    out, rec = measured(memory_recorder)
    table = KIND.tables(MemoryView(load_spec(SPEC).resolved(), {("cpu", 0): (out, rec)}))["calibration"]
    assert list(table["truth_over_bound"]) == [1.0, 1.1, 1.25] and (table["trials"] == 60).all()
    assert 0 <= out["worst_wrong_at_bound"] <= 1
    assert out["worst_wrong_off_bound"] == table["worst_wrong_fraction"][1:].max()
    assert out["rounds_to_decision_25pct"] == table["median_rounds_to_decision"].iloc[2] >= 8
    assert out["decided_25pct"] == 1 - table["inconclusive_fraction"].iloc[2]


def test_the_metric_table_and_the_section(memory_recorder):
    out, rec = measured(memory_recorder)
    assert set(out) == set(KIND.names) and KIND.timings == {}
    assert {KIND.metric(n).unit for n in ("worst_wrong_at_bound", "worst_wrong_off_bound", "decided_25pct")} == {
        "fraction"}
    view = MemoryView(load_spec(SPEC).resolved(), {("cpu", 0): (out, rec)})
    table = KIND.tables(view)["calibration"]
    assert list(table.columns) == ["noise", "truth_over_bound", "trials", "reproduced_fraction",
                                   "not_reproduced_fraction", "inconclusive_fraction", "wrong_verdict",
                                   "worst_wrong_fraction", "nominal_fraction", "monte_carlo_se_fraction",
                                   "median_rounds_to_decision"]
    assert markdown_rows(KIND.section(view)) == len(table) + 2


def test_the_shipped_spec_is_a_self_check():
    spec = load_spec(SPEC)
    assert spec.kind == "calibration" and spec.timing == TimingPolicy()  # the default policy is what it checks
    assert {r.basis for r in spec.references} <= {"self-check", "chosen after measuring"}
