"""H4: the calibration kind runs the real rule under the spec's policy and reports its rates; the shipped spec."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from harness.judging.rounds import Plan
from harness.kinds.calibration import KIND
from harness.kinds.calibration.settings import Settings
from harness.schema import TimingPolicy
from harness.specs.spec import load_spec

from .memory_view import MemoryView, markdown_rows

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "experiments" / "calibration.yaml"


SMALL = dict(noises=["lognormal"], truths=[1.0, 1.1, 1.25], trials=60, dependent_noises=["ar1-0.6"],
             dependent_trials=30, family_sizes=[1, 6], family_trials=300, timing_family_size=3,
             timing_family_trials=20, suite_sizes=[8], suite_shifted=2, suite_trials=100)


def measured(memory_recorder, **kw):
    rec = memory_recorder(plan=Plan(policy=TimingPolicy(rounds=8, max_rounds=30)))
    return KIND.run(Settings(**(SMALL | kw)), rec), rec


def test_rates_and_rounds_under_the_spec_policy(memory_recorder):
    out, rec = measured(memory_recorder)
    table = KIND.tables(MemoryView(load_spec(SPEC).resolved(), {("cpu", 0): (out, rec)}))["calibration"]
    assert list(table["truth_over_bound"]) == [1.0, 1.1, 1.25, 1.0] and list(table["trials"]) == [60, 60, 60, 30]
    assert list(table["independent_rounds"]) == [True, True, True, False]  # AR(1): on the bound, for information
    assert out["worst_wrong_at_bound"] == table["worst_wrong_fraction"].iloc[0]  # the AR(1) row is left out
    assert out["worst_wrong_off_bound"] == table["worst_wrong_fraction"][1:3].max()
    assert out["rounds_to_decision_25pct"] == table["median_rounds_to_decision"].iloc[2] >= 8
    assert out["decided_25pct"] == 1 - table["inconclusive_fraction"].iloc[2]


def test_the_metric_table_and_the_section(memory_recorder):
    out, rec = measured(memory_recorder)
    assert set(out) == set(KIND.names) and KIND.timings == {}
    assert {KIND.metric(n).unit for n in ("worst_wrong_at_bound", "worst_wrong_off_bound", "decided_25pct")} == {
        "fraction"}
    view = MemoryView(load_spec(SPEC).resolved(), {("cpu", 0): (out, rec)})
    table = KIND.tables(view)["calibration"]
    assert list(table.columns) == ["noise", "independent_rounds", "truth_over_bound", "trials", "reproduced_fraction",
                                   "not_reproduced_fraction", "inconclusive_fraction", "wrong_verdict",
                                   "worst_wrong_fraction", "nominal_fraction", "monte_carlo_se_fraction",
                                   "median_rounds_to_decision"]
    found = KIND.tables(view)
    assert markdown_rows(KIND.section(view)) == sum(len(df) + 2 for df in found.values())


def test_families_and_suites_are_tabled_with_the_issues_columns(memory_recorder):
    out, rec = measured(memory_recorder)
    fam = rec.tables["families"]
    assert {"family_size", "dependence", "shift", "trials", "spec_not_reproduced_fraction",
            "spec_reproduced_fraction"} <= set(fam.columns)
    draws = fam[fam["claims"] == "draws"]
    assert sorted(set(draws["family_size"])) == [1, 6] and set(draws["dependence"]) == {"independent", "correlated"}
    assert set(draws["shift"]) == {"0", "detectable"} and len(fam[fam["claims"] == "timings"]) == 2
    true = fam[fam["shift"] == "0"]
    worst = max((r.false_not_reproduced_fraction - 0.05) / r.monte_carlo_se_fraction for r in true.itertuples())
    assert out["family_false_miss_z"] == pytest.approx(worst)
    shifted = fam[fam["shift"] == "detectable"]
    assert out["family_caught_z"] == pytest.approx(min((r.caught_fraction - 0.8) / math.sqrt(0.16 / r.trials)
                                                        for r in shifted.itertuples()))
    suites = rec.tables["suites"]
    assert list(suites["shifted_specs"]) == [0, 2] and (suites["suite_size"] == 8).all()
    assert out["suite_fdr_z"] == pytest.approx(max((r.false_discovery_rate - 0.05) / r.monte_carlo_se_fraction
                                                   for r in suites.itertuples()))


def test_a_store_from_before_families_reads_its_one_table(memory_recorder):
    out, rec = measured(memory_recorder)
    spec = load_spec(SPEC).resolved()
    old = spec | {"settings": {k: v for k, v in spec["settings"].items() if not k.startswith(("family", "suite"))}}
    assert list(KIND.tables(MemoryView(old, {("cpu", 0): (out, rec)}))) == ["calibration"]


def test_the_shipped_spec_is_a_self_check():
    spec = load_spec(SPEC)
    assert spec.kind == "calibration" and spec.timing == TimingPolicy()  # the default policy is what it checks
    assert {r.basis for r in spec.references} <= {"self-check", "chosen after measuring"}
