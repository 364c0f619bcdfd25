"""H4: the calibration kind runs the real rule under the spec's policy and reports its rates; the shipped spec."""

from __future__ import annotations

from pathlib import Path

from harness.rounds import Plan
from harness.schema import TimingPolicy
from harness.spec import load_spec
from harness.tasks import calibration

ROOT = Path(__file__).resolve().parents[2]


def test_rates_and_rounds_under_the_spec_policy(memory_recorder):
    rec = memory_recorder(plan=Plan(policy=TimingPolicy(rounds=8, max_rounds=30)))
    settings = calibration.Settings(noises=["lognormal"], truths=[1.0, 1.1, 1.25], trials=60)
    out = calibration.run(settings, rec)
    table = rec.tables["calibration"]
    assert list(table["truth / bound"]) == [1.0, 1.1, 1.25] and (table["trials"] == 60).all()
    assert 0 <= out["worst_wrong_at_bound"] <= 1
    assert out["worst_wrong_off_bound"] == table["worst wrong (fraction)"][1:].max()
    assert out["rounds_to_decision_25pct"] == table["median rounds to a decision"].iloc[2] >= 8
    assert out["decided_25pct"] == 1 - table["inconclusive (fraction)"].iloc[2]


def test_the_shipped_spec_is_a_self_check():
    spec = load_spec(ROOT / "experiments" / "calibration.yaml")
    assert spec.kind == "calibration" and spec.timing == TimingPolicy()  # the default policy is what it checks
    assert {r.basis for r in spec.references} <= {"self-check", "chosen after measuring"}
