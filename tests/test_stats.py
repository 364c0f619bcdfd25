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
