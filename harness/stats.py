"""Confidence intervals for timings measured in rounds: a BCa bootstrap over rounds (scipy.stats.bootstrap).

A timing metric is one positive value per round (seconds, examples/s, or the ratio of two things timed
in the same round). Its point estimate is the geometric mean over rounds, and its interval a bias-corrected
and accelerated (BCa) bootstrap of the mean of the logs, mapped back: ratios are judged on the log scale,
where 2x faster and 2x slower are the same distance. The resampling is seeded, so the same rounds always
give the same interval.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

RESAMPLES = 9999
METHOD = (f"BCa bootstrap over rounds (scipy.stats.bootstrap, {RESAMPLES:,} resamples) of the geometric mean "
          "of the per-round values")


@dataclass(frozen=True)
class Interval:
    """A point estimate, its confidence interval and the rounds behind it."""

    estimate: float
    low: float
    high: float
    rounds: int
    confidence: float = 0.95

    @property
    def defined(self) -> bool:
        return math.isfinite(self.low) and math.isfinite(self.high)

    def text(self, unit: str = "") -> str:
        """``3.72x (95% CI 3.31-4.12, 7 rounds)``; unit ``%`` shows a fraction as a percentage."""
        if not math.isfinite(self.estimate):
            return "-"
        scale = 100 if unit == "%" else 1
        est, low, high = (_num(v * scale) for v in (self.estimate, self.low, self.high))
        rounds = f"{self.rounds} round{'s' if self.rounds != 1 else ''}"
        if not self.defined:
            return f"{est}{unit} (no interval, {rounds})"
        return f"{est}{unit} ({self.confidence:.0%} CI {low}-{high}, {rounds})"

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _num(v: float) -> str:
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"


def is_finite_number(v: Any) -> bool:
    """Is ``v`` a finite int or float (not a bool)?"""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def geomean(values: Sequence[float]) -> float:
    """Geometric mean of positive per-round values (the point estimate of ``interval``, without the bootstrap).

    NaN when there are no values or one is not a positive finite number.
    """
    x = np.asarray(values, dtype=float)
    if x.size == 0 or not np.all(np.isfinite(x)) or np.any(x <= 0):
        return math.nan
    return float(np.exp(np.log(x).mean()))


def interval(values: Sequence[float], confidence: float = 0.95, seed: int = 0) -> Interval:
    """Geometric mean of positive per-round values and its BCa bootstrap interval.

    Fewer than two rounds, or a value that is not a positive finite number, gives an undefined (NaN) interval;
    rounds that are all equal give a zero-width one.
    """
    from scipy import stats  # about 1 s to import: only when an interval is computed, not for `harness list`

    x = np.asarray(values, dtype=float)
    n = int(x.size)
    estimate = geomean(x)
    if math.isnan(estimate):  # no values, or one that is not a positive finite number
        return Interval(math.nan, math.nan, math.nan, n, confidence)
    logs = np.log(x)
    if n < 2:
        return Interval(estimate, math.nan, math.nan, n, confidence)
    if np.ptp(logs) == 0:
        return Interval(estimate, estimate, estimate, n, confidence)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scipy warns on degenerate resamples of very few rounds
        res = stats.bootstrap((logs,), np.mean, confidence_level=confidence, method="BCa", n_resamples=RESAMPLES,
                              random_state=np.random.default_rng(seed))
    low, high = (float(np.exp(v)) for v in res.confidence_interval)
    if not (math.isfinite(low) and math.isfinite(high)):
        return Interval(estimate, math.nan, math.nan, n, confidence)
    return Interval(estimate, min(low, estimate), max(high, estimate), n, confidence)


def _bootstrap(samples: tuple[np.ndarray, ...], statistic, confidence: float, seed: int) -> tuple[float, float]:
    from scipy import stats

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = stats.bootstrap(samples, statistic, confidence_level=confidence, method="BCa", n_resamples=RESAMPLES,
                              random_state=np.random.default_rng(seed), vectorized=True)
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


def ratio_interval(a: Sequence[float], b: Sequence[float], confidence: float = 0.95, seed: int = 0) -> Interval:
    """The ratio of the geometric means of ``b`` and ``a`` (two independent sets of rounds) and its BCa interval:
    the difference of their mean logs, turned back.

    ``rounds`` is the smaller of the two counts. Undefined (NaN) with fewer than two rounds on a side; when each
    side's rounds are all equal, the interval is the ratio itself.
    """
    ga, gb = geomean(a), geomean(b)
    if math.isnan(ga) or math.isnan(gb):
        return Interval(math.nan, math.nan, math.nan, min(len(a), len(b)), confidence)
    d = difference_interval(np.log(np.asarray(a, dtype=float)), np.log(np.asarray(b, dtype=float)), confidence, seed)
    estimate = gb / ga
    if not d.defined:
        return Interval(estimate, math.nan, math.nan, d.rounds, confidence)
    return Interval(estimate, min(math.exp(d.low), estimate), max(math.exp(d.high), estimate), d.rounds, confidence)


def _around(estimate: float, low: float, high: float, n: int, confidence: float) -> Interval:
    """A bootstrap's bounds as an interval holding its estimate; undefined where the bootstrap gave none."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return Interval(estimate, math.nan, math.nan, n, confidence)
    return Interval(estimate, min(low, estimate), max(high, estimate), n, confidence)


def mean_interval(values: Sequence[float], confidence: float = 0.95, seed: int = 0) -> Interval:
    """The arithmetic mean of ``values`` (differences, say, which may be negative) and its BCa interval.

    Fewer than two values give an undefined interval; two or more that are all equal, a zero-width one.
    """
    x = np.asarray(values, dtype=float)
    n = int(x.size)
    if n == 0 or not np.all(np.isfinite(x)):
        return Interval(math.nan, math.nan, math.nan, n, confidence)
    estimate = float(x.mean())
    if n < 2:
        return Interval(estimate, math.nan, math.nan, n, confidence)
    if np.ptp(x) == 0:
        return Interval(estimate, estimate, estimate, n, confidence)
    low, high = _bootstrap((x,), lambda v, axis: v.mean(axis), confidence, seed)
    return _around(estimate, low, high, n, confidence)


def difference_interval(a: Sequence[float], b: Sequence[float], confidence: float = 0.95, seed: int = 0) -> Interval:
    """mean(b) - mean(a) of two independent sets of values (seeds, say) and its BCa interval.

    ``rounds`` is the smaller count; fewer than two on a side give an undefined interval, sides that are each
    constant a zero-width one.
    """
    xa, xb = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    n = int(min(xa.size, xb.size))
    if n == 0 or not (np.all(np.isfinite(xa)) and np.all(np.isfinite(xb))):
        return Interval(math.nan, math.nan, math.nan, n, confidence)
    estimate = float(xb.mean() - xa.mean())
    if n < 2:
        return Interval(estimate, math.nan, math.nan, n, confidence)
    if np.ptp(xa) == 0 and np.ptp(xb) == 0:
        return Interval(estimate, estimate, estimate, n, confidence)
    low, high = _bootstrap((xb, xa), lambda x, y, axis: x.mean(axis) - y.mean(axis), confidence, seed)
    return _around(estimate, low, high, n, confidence)
