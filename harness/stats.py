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
