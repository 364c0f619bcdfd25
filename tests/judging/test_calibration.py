"""The real sequential rule on synthetic rounds with a known truth: its wrong verdicts stay within their nominal rate.

``harness.judging.calibration.simulate`` runs ``run_rounds`` under a ``Plan`` and ``judge_timing``, the code a spec
uses, with a fake clock. Each wrong decisive verdict's rate must stay within its nominal rate (2.5% a side at 95%)
plus three Monte-Carlo standard errors; a rule that peeks at a fixed-sample interval after every round fails the same
check.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from harness.judging import calibration
from harness.judging.stats import Interval, median
from harness.schema import TimingPolicy

POLICY = TimingPolicy()  # the default a spec gets
TRIALS = 400


def tolerated(nominal: float, trials: int) -> float:
    return nominal + 3 * math.sqrt(nominal * (1 - nominal) / trials)


INDEPENDENT = [name for name, noise in calibration.NOISES.items() if noise.independent]


@pytest.mark.parametrize("noise", INDEPENDENT)
@pytest.mark.parametrize("truth", [1.0, 1.1, 1 / 1.1])
def test_each_wrong_verdict_stays_within_its_nominal_rate(noise, truth):
    out = calibration.simulate(calibration.NOISES[noise], truth, POLICY, TRIALS, seed=17)
    assert out.reproduced + out.missed + out.inconclusive == TRIALS
    for verdict, rate in out.wrong().items():
        assert rate <= tolerated(0.025, TRIALS), f"{verdict}: {rate:.1%} of {TRIALS} runs"


@pytest.mark.parametrize("truth", [1.25, 1 / 1.25])
def test_a_truth_25_percent_from_the_bound_is_decided_the_right_way(truth):
    out = calibration.simulate(calibration.NOISES["lognormal"], truth, POLICY, 200, seed=3)
    right = out.reproduced if truth > 1 else out.missed
    assert right / out.trials >= 0.95 and out.rounds_to_decision <= 20


def test_rounds_that_are_not_independent_break_the_guarantee():
    """AR(1) rounds (phi 0.6) on the bound: the rule is wrong far more often than 2.5% a side, which is why the
    calibration shows them for information and each timing claim's rounds are tested for independence."""
    out = calibration.simulate(calibration.NOISES["ar1-0.6"], 1.0, POLICY, 200, seed=17)
    assert min(out.wrong().values()) > tolerated(0.025, 200)


def test_ar1_noise_has_the_stated_autocorrelation_and_spread():
    rng = np.random.default_rng(2)
    x = np.stack([calibration.NOISES["ar1-0.6"].draw(rng, 400) for _ in range(200)])
    assert np.mean(x[:, 1:] * x[:, :-1]) / np.mean(x * x) == pytest.approx(0.6, abs=0.03)
    assert x.std() == pytest.approx(0.12, rel=0.05) and x[:, 0].std() == pytest.approx(0.12, rel=0.15)


def test_the_budget_and_max_rounds_stop_an_undecidable_claim():
    """On the bound the rule mostly stays inconclusive; with 1 s rounds the budget allows every round to 60."""
    out = calibration.simulate(calibration.NOISES["lognormal"], 1.0, POLICY, 100, seed=5)
    assert out.inconclusive >= 90


def naive_t(values, confidence=0.95) -> Interval:
    """A fixed-sample t interval on the log rounds: right for one look, wrong when looked at after every round."""
    x = np.log(np.asarray(values, dtype=float))
    n = x.size
    if n < 2:
        return Interval(math.nan, math.nan, math.nan, n, confidence)
    half = sps.t.ppf(0.5 + confidence / 2, n - 1) * x.std(ddof=1) / math.sqrt(n)
    return Interval(median(values), math.exp(x.mean() - half), math.exp(x.mean() + half), n, confidence)


def naive_p(values, lo, hi):
    """The p-values that dual to ``naive_t``: the level at which that interval first lies wholly outside (inside)."""
    x = np.log(np.asarray(values, dtype=float))
    n = x.size
    if n < 2:
        return 1.0, 1.0
    se = x.std(ddof=1) / math.sqrt(n)
    outside = max(math.log(lo) - x.mean() if lo > 0 else -math.inf, x.mean() - math.log(hi) if hi < math.inf
                  else -math.inf)
    inside = min(x.mean() - math.log(lo) if lo > 0 else math.inf, math.log(hi) - x.mean() if hi < math.inf
                 else math.inf)
    return (min(1.0, 2 * float(sps.t.sf(outside / se, n - 1))), min(1.0, 2 * float(sps.t.sf(inside / se, n - 1))))


def test_the_check_fails_a_rule_that_peeks_at_a_fixed_sample_interval(monkeypatch):
    """The same simulation with the naive interval (and its p-values, which the rule's looks read) in place of the
    confidence sequence: wrong far too often."""
    monkeypatch.setattr("harness.judging.significance.rounds_p", naive_p)
    monkeypatch.setattr("harness.judging.verdict.rounds_interval", naive_t)
    out = calibration.simulate(calibration.NOISES["lognormal"], 1.0, POLICY, 200, seed=17)
    assert max(out.wrong().values()) > tolerated(0.025, 200)


def test_noise_medians_centre_the_truth():
    rng = np.random.default_rng(0)
    for noise in calibration.NOISES.values():
        x = noise.draw(rng, 200_000) - noise.median
        assert abs(float(np.median(x))) < 0.002, noise.name
    assert calibration.NOISES["slow-spells"].median > 0  # the slow side pulls the median up, a little


def test_the_table_reports_each_condition():
    outcomes = [calibration.simulate(calibration.NOISES["t3"], t, POLICY, 50, seed=1) for t in (1.0, 1.25)]
    df = calibration.table(outcomes, 0.95)
    assert list(df["wrong verdict"]) == ["reproduced and not reproduced", "not reproduced"]
    assert df["nominal (fraction)"].tolist() == pytest.approx([0.025, 0.025]) and (df["trials"] == 50).all()
