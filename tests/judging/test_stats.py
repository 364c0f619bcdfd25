"""Intervals: their arithmetic, the cases with too little to go on, and their coverage at the sizes the harness uses.

The coverage tests draw values with a known truth and count misses; each asserts the miss rate within its nominal
rate plus three Monte-Carlo standard errors (and, for the exact t intervals, not far below it either).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.judging import stats
from harness.judging.stats import (
    Interval,
    median,
    min_rounds,
    prediction_interval,
    ratio_interval,
    rounds_interval,
    seeds_interval,
    welch_interval,
)


def within(misses: int, trials: int, nominal: float) -> bool:
    """A miss count at most its nominal rate plus three Monte-Carlo standard errors."""
    return misses / trials <= nominal + 3 * math.sqrt(nominal * (1 - nominal) / trials)


def test_rounds_interval_is_the_median_between_two_order_statistics():
    """12 rounds at 95%: Robbins' mixture reaches 2 / 0.05 = 40 with 11 rounds on one side (52.4), not with 10
    (9.4), so the bounds are the 2nd smallest and the 2nd largest round."""
    values = [5.0, 1.0, 4.0, 2.0, 3.0, 9.0, 7.0, 8.0, 6.0, 10.0, 11.0, 12.0]
    iv = rounds_interval(values)
    assert iv.estimate == median(values) == 6.5 and iv.rounds == 12
    assert (iv.low, iv.high) == (2.0, 11.0)


def robbins_mixture(n: int, k: int) -> float:
    """2^n * 2 * the integral over p in (1/2, 1) of p^k (1-p)^(n-k), by quadrature (not the beta functions)."""
    from scipy import integrate

    return 2 ** n * 2 * integrate.quad(lambda p: p ** k * (1 - p) ** (n - k), 0.5, 1)[0]


@pytest.mark.parametrize("n", [8, 9, 12, 20, 33, 60])
@pytest.mark.parametrize("alpha", [0.05, 0.025])
def test_the_order_statistic_is_the_first_where_the_mixture_reaches_two_over_alpha(n, alpha):
    k = stats._order(n, alpha)
    below = [robbins_mixture(n, j) >= 2 / alpha for j in range(n + 1)]
    assert k == (below.index(True) if any(below) else 0)


def test_the_first_defined_interval_needs_every_round_on_one_side():
    assert [min_rounds(c) for c in (0.9, 0.95, 0.975, 0.99)] == [7, 8, 9, 11]
    for confidence in (0.9, 0.95, 0.99):
        n = min_rounds(confidence)
        assert stats._order(n, 1 - confidence) == n and stats._order(n - 1, 1 - confidence) == 0


def test_too_few_rounds_say_how_many_are_needed():
    iv = rounds_interval([3.0, 3.1, 2.9, 3.2, 3.0, 3.1])
    assert not iv.defined and iv.needed == 8 and iv.estimate == pytest.approx(3.05)
    assert iv.text("x") == "3.05x (no interval: 6 rounds, 8 needed at 95%)"


@pytest.mark.parametrize("values", [[], [1.0, math.nan] * 5, [1.0, -2.0] * 5, [0.0, 1.0] * 5])
def test_invalid_rounds_give_no_estimate(values):
    iv = rounds_interval(values)
    assert not iv.defined and math.isnan(iv.estimate) and iv.text("x") == "-"


def test_equal_rounds_give_a_zero_width_interval():
    iv = rounds_interval([3.0] * 10)
    assert (iv.estimate, iv.low, iv.high) == (3.0, 3.0, 3.0)


def test_a_ratio_and_its_inverse_give_mirrored_intervals():
    values = (2.0 * np.exp(np.random.default_rng(1).normal(0, 0.3, 21))).tolist()
    a, b = rounds_interval(values), rounds_interval([1 / v for v in values])
    assert a.estimate == pytest.approx(1 / b.estimate)
    assert a.low == pytest.approx(1 / b.high) and a.high == pytest.approx(1 / b.low)


@pytest.mark.parametrize("noise", ["lognormal", "t3", "slow-spells"])
def test_the_rounds_interval_covers_the_median_at_every_round_at_once(noise):
    """Streams of 60 rounds looked at after every round from the 8th: the truth left the interval at some round in
    at most 5% of them (2.5% each side), whatever the noise."""
    from harness.judging.calibration import NOISES

    rng, trials, below, above = np.random.default_rng(7), 400, 0, 0
    for _ in range(trials):
        x = np.exp(NOISES[noise].draw(rng, 60) - NOISES[noise].median)  # true median 1
        ivs = [rounds_interval(x[:n]) for n in range(8, 61)]
        below += any(iv.high < 1 for iv in ivs)
        above += any(iv.low > 1 for iv in ivs)
    assert within(below, trials, 0.025) and within(above, trials, 0.025)


def test_ratio_interval_bounds_the_ratio_of_medians_from_both_sides():
    a, b = [1.0, 1.1, 0.9, 1.05, 0.95, 1.02, 0.98, 1.01, 0.99], [2.0, 2.1, 1.9, 2.2, 2.05, 1.95, 2.02, 1.98, 2.01]
    iv = ratio_interval(a, b)
    assert iv.estimate == pytest.approx(2.01 / 1.0) and iv.rounds == 9
    # 9 rounds at 97.5% a side: each side's interval is its smallest to its largest round
    assert (iv.low, iv.high) == pytest.approx((1.9 / 1.1, 2.2 / 0.9))
    short = ratio_interval(a[:8], b)
    assert not short.defined and short.needed == 9  # 97.5% a side needs 9 rounds


def test_ratio_interval_covers_the_true_ratio():
    rng, trials, misses = np.random.default_rng(3), 1000, 0
    for _ in range(trials):
        a, b = np.exp(rng.normal(0, 0.1, 12)), 1.2 * np.exp(0.08 * rng.standard_t(3, 15))
        iv = ratio_interval(a, b)
        misses += not iv.low <= 1.2 <= iv.high
    assert within(misses, trials, 0.05)


@pytest.mark.parametrize("n", [3, 5, 10])
def test_seeds_interval_has_its_coverage_at_few_seeds(n):
    """Student's t is exact for normal values: misses near 5%, neither far above nor far below."""
    rng, trials = np.random.default_rng(n), 4000
    misses = sum(not (iv.low <= 0.8 <= iv.high)
                 for iv in (seeds_interval(rng.normal(0.8, 0.01, n)) for _ in range(trials)))
    assert within(misses, trials, 0.05) and misses / trials >= 0.05 - 3 * math.sqrt(0.05 * 0.95 / trials)


def test_prediction_interval_holds_one_more_draw_95_percent_of_the_time():
    rng, trials = np.random.default_rng(11), 4000
    misses = 0
    for _ in range(trials):
        x = rng.normal(0.8, 0.015, 4)
        iv = prediction_interval(x[:3])
        misses += not iv.low <= x[3] <= iv.high
    assert within(misses, trials, 0.05) and misses / trials >= 0.05 - 3 * math.sqrt(0.05 * 0.95 / trials)


def test_welch_interval_covers_a_difference_of_unequal_spreads():
    rng, trials, misses = np.random.default_rng(5), 4000, 0
    for _ in range(trials):
        iv = welch_interval(rng.normal(0.80, 0.005, 3), rng.normal(0.79, 0.02, 5))
        misses += not iv.low <= -0.01 <= iv.high
    assert within(misses, trials, 0.05)


def test_one_seed_gives_no_interval_and_says_so():
    iv = seeds_interval([0.8])
    assert not iv.defined and iv.text() == "0.8 (no interval: 1 seed, 2 needed at 95%)"
    assert not prediction_interval([0.8]).defined and not welch_interval([0.8], [0.7, 0.71]).defined


def test_seed_intervals_of_equal_values_and_of_signed_differences():
    assert seeds_interval([0.0, 0.0, 0.0]).high == 0.0
    iv = seeds_interval([0.79, 0.80, 0.81])  # mean 0.8, sd 0.01, t(0.975, 2 df) = 4.3027
    assert (iv.estimate, iv.low, iv.high) == pytest.approx((0.8, 0.8 - 4.3027 * 0.01 / 3 ** 0.5,
                                                            0.8 + 4.3027 * 0.01 / 3 ** 0.5), rel=1e-5)
    d = seeds_interval([-0.02, -0.01, -0.03, -0.015])
    assert d.estimate == pytest.approx(-0.01875) and d.low < d.estimate < d.high < 0 and d.basis == "seeds"
    assert welch_interval([0.8, 0.8], [0.7, 0.7]).low == pytest.approx(-0.1)


def test_text():
    assert Interval(3.72, 3.31, 4.12, 12).text("x") == "3.72x (95% CI 3.31-4.12, 12 rounds)"
    assert Interval(23573.2, 21000.0, 26000.4, 9).text(" ex/s") == "23,573 ex/s (95% CI 21,000-26,000, 9 rounds)"
    assert Interval(0.257, 0.234, 0.27, 8).text("%") == "25.7% (95% CI 23.4-27, 8 rounds)"
    assert Interval(0.80, 0.79, 0.81, 3, basis="seeds").text() == "0.8 (95% CI 0.79-0.81, 3 seeds)"
    below = Interval(-0.002, -0.0035, -0.0005, 10, basis="seeds")
    assert below.text() == "-0.002 (95% CI -0.0035 to -0.0005, 10 seeds)"
