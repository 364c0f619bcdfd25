"""Each check's p-value and detectable shift: small cases worked out by hand, the duality with the intervals the
verdicts print, and the power a detectable shift is defined by, on simulated data with a known truth."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as sps

from harness.judging import significance, stats
from harness.judging.verdict import INCONCLUSIVE, MISSED, REPRODUCED, judge
from harness.schema import Reference


def ref(**kw) -> Reference:
    return Reference.model_validate({"metric": "m", "source": "C2", "basis": "chosen before measuring", **kw})


def test_count_p_by_hand():
    """Eight rounds all on one side: M(8) = 2^9 * B(9, 1) * I_0.5(1, 9) = 511 / 9, so p = 2 / M = 18 / 511; seven
    rounds all on one side give M = 255 / 8, p = 16 / 255 > 5% (no interval at 95% before 8 rounds)."""
    assert stats.count_p(8, 8) == pytest.approx(18 / 511)
    assert stats.count_p(7, 7) == pytest.approx(16 / 255)
    assert stats.count_p(8, 4) == 1.0  # half the rounds each side: no evidence at all


def test_rounds_p_by_hand():
    at_least_3 = (3.0, math.inf)
    assert significance.rounds_p([4.0] * 8, *at_least_3) == (1.0, pytest.approx(18 / 511))
    assert significance.rounds_p([2.0] * 8, *at_least_3) == (pytest.approx(18 / 511), 1.0)
    assert significance.rounds_p([2.0] * 4 + [4.0] * 4, *at_least_3) == (1.0, 1.0)
    assert significance.rounds_p([1.0, math.nan], *at_least_3) == (1.0, 1.0)  # no interval: nothing decided


@pytest.mark.parametrize("level", [0.05, 0.0125, 0.002])
def test_rounds_p_decides_exactly_where_the_interval_does(level):
    """p_miss <= a exactly when the confidence sequence at 1 - a lies wholly outside the claim, p_rep <= a when it
    lies wholly inside: the status the rule and the row print agree, whatever the level Holm hands down."""
    rng = np.random.default_rng(int(level * 1e4))
    for _ in range(400):
        x = np.round(np.exp(rng.normal(math.log(3), 0.2, rng.integers(5, 40))), 1)  # ties on the bound too
        lo, hi = [(3.0, math.inf), (-math.inf, 3.0), (2.9, 3.3)][rng.integers(3)]
        iv = stats.rounds_interval(x, 1 - level)
        want = (INCONCLUSIVE if not iv.defined else REPRODUCED if lo <= iv.low and iv.high <= hi
                else MISSED if iv.high < lo or iv.low > hi else INCONCLUSIVE)
        p_miss, p_rep = significance.rounds_p(x, lo, hi)
        assert want == (MISSED if p_miss <= level else REPRODUCED if p_rep <= level else INCONCLUSIVE)


def test_draw_p_by_hand():
    """Seeds 0, 1, 2 (mean 1, sd 1): a draw at 1 + t(0.975, 2) * sqrt(4/3) sits on the 95% prediction interval."""
    edge = 1 + sps.t.ppf(0.975, 2) * math.sqrt(4 / 3)
    assert float(significance.draw_p([0, 1, 2], [edge])) == pytest.approx(0.05)
    assert float(significance.draw_p([0, 1, 2], [1.0])) == 1.0
    pooled = 1 + sps.t.ppf(0.975, 2) * math.sqrt(1 / 2 + 1 / 3)  # two draws: their mean, sqrt(1/k + 1/n)
    assert float(significance.draw_p([0, 1, 2], [pooled - 0.1, pooled + 0.1])) == pytest.approx(0.05)
    assert float(significance.draw_p([0.5, 0.5], [0.5])) == 1.0 and float(significance.draw_p([0.5, 0.5], [0.6])) == 0
    assert math.isnan(float(significance.draw_p([0.5], [0.6])))


def test_a_draw_verdict_and_its_p_value_agree():
    rng = np.random.default_rng(4)
    for _ in range(200):
        seeds = rng.normal(0.8, 0.03, rng.integers(3, 8))
        v = judge(ref(draw=float(0.8 + rng.normal(0, 0.06))), "cpu", dict(enumerate(seeds)))
        assert (v.status == MISSED) == (v.p_value < 0.05)


def test_mean_p_by_hand_and_against_the_t_interval():
    """Seeds 0, 1, 2: se 1/sqrt(3); a claim at_least 1 + t(0.975, 2) / sqrt(3) has its 95% interval's top on it."""
    edge = 1 + sps.t.ppf(0.975, 2) / math.sqrt(3)
    assert significance.mean_p([0, 1, 2], edge, math.inf)[0] == pytest.approx(0.05)
    assert significance.mean_p([0, 1, 2], -math.inf, edge)[1] == pytest.approx(0.05)
    assert significance.mean_p([1, 1, 1], 1.0, math.inf) == (1.0, 0.0)  # on the bound, no spread: inside
    rng = np.random.default_rng(5)
    for _ in range(300):
        v = judge(ref(band=[0.78, 0.82], over="interval"), "cpu", dict(enumerate(rng.normal(0.8, 0.03, 4))))
        assert v.status == (MISSED if v.p_value <= 0.05 else REPRODUCED if v.p_reproduced <= 0.05 else INCONCLUSIVE)


def test_shifts_reach_the_normal_formula_with_many_seeds():
    """With many seeds the t's are normal: (z(1 - a/2) + z(0.8)) * sd * scale."""
    z = sps.norm.ppf(0.975) + sps.norm.ppf(0.8)
    assert significance.draw_shift(2000, 1.0, 0.05) == pytest.approx(z * math.sqrt(1 + 1 / 2000), rel=2e-3)
    assert significance.draw_shift(2000, 1.0, 0.05, k=4) == pytest.approx(z * math.sqrt(1 / 4 + 1 / 2000), rel=2e-3)
    assert significance.mean_shift(2000, 1.0, 0.05) == pytest.approx(z / math.sqrt(2000), rel=2e-3)


def test_a_shift_grows_as_the_level_falls_and_shrinks_with_seeds():
    three = significance.draw_shift(3, 1.0, 0.05)
    assert significance.draw_shift(3, 1.0, 0.05 / 6) > three > significance.draw_shift(10, 1.0, 0.05)
    assert significance.draw_shift(3, 2.0, 0.05) == pytest.approx(2 * three)  # in the metric's units
    assert math.isnan(significance.draw_shift(1, 1.0, 0.05))


@pytest.mark.parametrize("n,level", [(3, 0.05), (3, 0.05 / 6), (5, 0.05 / 9)])
def test_a_draw_shifted_by_its_detectable_shift_is_caught_80_percent_of_the_time(n, level):
    rng = np.random.default_rng(n)
    trials = 4000
    seeds = rng.standard_normal((trials, n))
    draws = rng.standard_normal((trials, 1)) + significance.draw_shift(n, 1.0, level)
    caught = float(np.mean(significance.draw_p(seeds, draws) <= level))
    assert caught == pytest.approx(0.8, abs=3 * math.sqrt(0.16 / trials))


def test_point_shifts_by_hand():
    """Seeds 0, 1, 2 (sd 1). On the mean: z(0.8) * 1 / sqrt(3) beyond the bound. On every seed, at_least: the rule
    passes with probability Phi(-d)^3 = 0.2 at d = -Phi^-1(0.2^(1/3)): it fails 80% of the time already inside."""
    assert significance.point_shift([0, 1, 2], 0.0, math.inf, every=False) == pytest.approx(
        sps.norm.ppf(0.8) / math.sqrt(3))
    assert significance.point_shift([0, 1, 2], 0.0, math.inf, every=True) == pytest.approx(
        -sps.norm.ppf(0.2 ** (1 / 3)))
    assert significance.point_shift([1, 1, 1], 0.0, 2.0, every=True) == 0.0
    assert math.isnan(significance.point_shift([1], 0.0, 2.0, every=True))


def test_rounds_shift_by_hand():
    """Eight rounds at 4 * exp(+-0.1): spread 1.4826 * 0.1; all 8 must fall below 3 (k = 8 at 5%), which they do
    with probability 0.8 when each does with probability 0.8^(1/8)."""
    x = 4 * np.exp(np.array([-0.1] * 4 + [0.1] * 4))
    step = math.exp(1.4826 * 0.1 * sps.norm.ppf(0.8 ** (1 / 8)))
    assert significance.rounds_shift(x, 3.0, math.inf, 0.05) == pytest.approx(3 - 3 / step, rel=1e-4)
    assert significance.rounds_shift(x, -math.inf, 5.0, 0.05) == pytest.approx(5 * step - 5, rel=1e-4)
    assert significance.rounds_shift(x[:7], 3.0, math.inf, 0.05) == math.inf  # no interval at 7 rounds
    assert significance.rounds_shift([4.0] * 8, 3.0, math.inf, 0.05) == 0.0


def test_runs_and_lag1_by_hand():
    """Eight rounds, four each side of the median: two runs have probability 2 / C(8, 4) = 2 / 70 each way."""
    assert stats.runs_p([1, 2, 3, 4, 5, 6, 7, 8]) == pytest.approx(2 * 2 / 70)
    assert stats.runs_p([1, 8, 2, 7, 3, 6, 4, 5]) == pytest.approx(2 * 2 / 70)  # eight runs: as unlikely
    assert stats.lag1([1, -1] * 5) == pytest.approx(-0.9)
    assert math.isnan(stats.runs_p([1, 1, 1, 2])) and math.isnan(stats.lag1([1, 2]))


def test_the_runs_test_keeps_its_level_on_independent_rounds():
    rng = np.random.default_rng(6)
    p = np.array([stats.runs_p(rng.normal(size=20)) for _ in range(2000)])
    assert np.mean(p <= 0.05) <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / 2000)
    ar = [stats.runs_p(np.cumsum(rng.normal(size=20))) for _ in range(300)]  # a random walk: long spells
    assert np.mean(np.array(ar) <= 0.05) > 0.5


def test_a_printed_curve_is_judged_epoch_by_epoch_as_one_claim():
    """Seeds 0, 1, 2 at each of two epochs: the curve's p-value is its smallest epoch's times the epochs."""
    seeds = {0: [0.0, 10.0], 1: [1.0, 11.0], 2: [2.0, 12.0]}
    edge = 1 + sps.t.ppf(0.975, 2) * math.sqrt(4 / 3)  # on epoch 1's 95% prediction interval: p 0.05
    v = judge(ref(metric="curve", draw=[edge, 11.0]), "cpu", seeds)
    assert v.p_value == pytest.approx(0.1) and v.status == REPRODUCED
    far = judge(ref(metric="curve", draw=[1.0, 30.0]), "cpu", seeds)
    assert far.status == MISSED and "outside at epoch 2" in far.detail
    assert judge(ref(metric="curve", draw=[1.0]), "cpu", seeds).status == MISSED  # a curve of another length
    with pytest.raises(ValueError, match="draw must be"):
        ref(draw=[])
