"""Intervals over rounds: the geometric mean, a seeded BCa bootstrap, and the cases with too little to go on."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.stats import Interval, geomean, interval


def lognormal_rounds(center: float, sigma: float, n: int, seed: int = 0) -> list[float]:
    return (center * np.exp(np.random.default_rng(seed).normal(0, sigma, n))).tolist()


def test_estimate_is_the_geometric_mean_and_lies_inside():
    values = [2.0, 8.0, 4.0]
    iv = interval(values)
    assert iv.estimate == pytest.approx(4.0) and iv.rounds == 3
    assert iv.low <= iv.estimate <= iv.high and iv.defined


def test_same_rounds_same_interval():
    values = lognormal_rounds(3.7, 0.2, 9)
    assert interval(values) == interval(values)


def test_more_rounds_narrow_the_interval():
    few, many = interval(lognormal_rounds(3.7, 0.2, 6)), interval(lognormal_rounds(3.7, 0.2, 60))
    assert (many.high / many.low) < (few.high / few.low)
    assert many.low < 3.7 < many.high


def test_interval_is_symmetric_in_ratio_direction():
    """A ratio and its inverse give mirrored intervals: 2x faster and 2x slower are the same distance."""
    values = lognormal_rounds(2.0, 0.3, 12)
    a, b = interval(values), interval([1 / v for v in values])
    assert a.estimate == pytest.approx(1 / b.estimate)
    assert a.low == pytest.approx(1 / b.high, rel=0.05) and a.high == pytest.approx(1 / b.low, rel=0.05)


@pytest.mark.parametrize("values", [[], [1.0], [1.0, math.nan], [1.0, -2.0], [0.0, 1.0]])
def test_too_little_or_invalid_gives_no_interval(values):
    iv = interval(values)
    assert not iv.defined and iv.rounds == len(values)
    assert "no interval" in iv.text("x") or iv.text("x") == "-"


def test_equal_rounds_give_a_zero_width_interval():
    iv = interval([3.0, 3.0, 3.0])
    assert (iv.estimate, iv.low, iv.high) == pytest.approx((3.0, 3.0, 3.0))


def test_text():
    assert Interval(3.72, 3.31, 4.12, 7).text("x") == "3.72x (95% CI 3.31-4.12, 7 rounds)"
    assert Interval(23573.2, 21000.0, 26000.4, 5).text(" ex/s") == "23,573 ex/s (95% CI 21,000-26,000, 5 rounds)"
    assert Interval(0.257, 0.234, 0.27, 8).text("%") == "25.7% (95% CI 23.4-27, 8 rounds)"


@pytest.mark.parametrize("values", [[2.0, 8.0, 4.0], [3.0], [3.0, 3.0], lognormal_rounds(3.7, 0.2, 9), [],
                                    [1.0, math.nan], [1.0, math.inf], [1.0, -2.0], [0.0, 1.0]])
def test_geomean_is_the_interval_s_estimate(values):
    """The point estimate alone, without the bootstrap: the same number, NaN where the interval's is NaN."""
    expected = interval(values).estimate
    got = geomean(values)
    assert got == expected or (math.isnan(got) and math.isnan(expected))


def test_ratio_interval_of_two_sets_of_rounds():
    from harness.stats import ratio_interval

    a, b = [1.0, 1.1, 0.9, 1.05], [2.0, 2.1, 1.9, 2.2, 2.05]
    iv = ratio_interval(a, b)
    assert iv.estimate == pytest.approx(geomean(b) / geomean(a)) and iv.rounds == 4
    assert iv.low < iv.estimate < iv.high and 1.7 < iv.low and iv.high < 2.4
    assert ratio_interval(a, b) == iv  # seeded: the same rounds, the same interval
    assert ratio_interval([2.0, 2.0], [3.0, 3.0]).low == pytest.approx(1.5, rel=1e-12)  # constant sides: no spread
    assert math.isnan(ratio_interval([1.0], [2.0]).low)  # one round: no interval
    assert math.isnan(ratio_interval([1.0, -1.0], [2.0, 2.0]).estimate)


def test_mean_and_difference_intervals_take_signs():
    from harness.stats import difference_interval, mean_interval

    iv = mean_interval([-0.02, -0.01, -0.03, -0.015])
    assert iv.estimate == pytest.approx(-0.01875) and iv.low < iv.estimate < iv.high < 0
    assert mean_interval([0.0, 0.0, 0.0]).high == 0.0 and math.isnan(mean_interval([0.1]).low)
    d = difference_interval([0.80, 0.81, 0.79], [0.70, 0.71, 0.69, 0.70])
    assert d.estimate == pytest.approx(-0.1) and d.high < 0
    assert math.isnan(difference_interval([0.8], [0.7]).low)
