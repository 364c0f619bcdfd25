"""Intervals with the coverage they state, at the sizes the harness uses (6-60 rounds, 1-10 seeds).

Rounds: the median round and a confidence sequence for it (valid at every round at once, for any distribution of
independent rounds). Seeds: the mean and Student's t interval, a printed draw against the t prediction interval, two
runs by paired differences or Welch. Too few values give an undefined interval that says why. docs/internals.md
("Timings and the sequential rule") has the method and why it was chosen.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

METHOD = ("confidence sequence for the median round (Robbins' mixture of sign tests: valid at whichever round the "
          "rounds stop, for any distribution of independent rounds)")
SEEDS_METHOD = "Student's t interval over seeds"
MAX_ROUNDS = 100_000


@dataclass(frozen=True)
class Interval:
    """A point estimate, its confidence interval and the values behind it (``rounds`` counts rounds or seeds)."""

    estimate: float
    low: float
    high: float
    rounds: int
    confidence: float = 0.95
    basis: str = "rounds"
    needed: int = 0  # an undefined interval: the fewest values that would give one (0: none would)

    @property
    def defined(self) -> bool:
        return math.isfinite(self.low) and math.isfinite(self.high)

    def count(self) -> str:
        noun = self.basis[:-1] if self.rounds == 1 and self.basis.endswith("s") else self.basis
        return f"{self.rounds} {noun}"

    def why_undefined(self) -> str:
        """``no interval: 6 rounds, 8 needed at 95%`` (or ``no interval, 1 seed``)."""
        if self.needed > self.rounds:
            return f"no interval: {self.count()}, {self.needed} needed at {self.confidence:.0%}"
        return f"no interval, {self.count()}"

    def text(self, unit: str = "") -> str:
        """``3.72x (95% CI 3.31-4.12, 12 rounds)``; unit ``%`` shows a fraction as a percentage."""
        if not math.isfinite(self.estimate):
            return "-"
        scale = 100 if unit == "%" else 1
        est, low, high = (number(v * scale) for v in (self.estimate, self.low, self.high))
        if not self.defined:
            return f"{est}{unit} ({self.why_undefined()})"
        dash = " to " if min(self.low, self.high) < 0 else "-"  # -0.0035 to -0.0005, not -0.0035--0.0005
        return f"{est}{unit} ({self.confidence:.0%} CI {low}{dash}{high}, {self.count()})"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def number(v: float) -> str:
    """3 significant digits, or whole numbers with separators from 1,000 on (never an exponent above 1)."""
    return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"


def is_finite_number(v: Any) -> bool:
    """Is ``v`` a finite int or float (not a bool)?"""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def median(values: Sequence[float]) -> float:
    """The median of per-round values (the point estimate of ``rounds_interval``); NaN when one is not finite."""
    x = np.asarray(values, dtype=float)
    if x.size == 0 or not np.all(np.isfinite(x)):
        return math.nan
    return float(np.median(x))


@functools.cache
def log_mixture(n: int) -> np.ndarray:
    """Robbins' mixture for one side after n rounds, on the log scale, for each count k = 0..n of rounds below a
    candidate median: M(k) = 2^n * 2 * integral over p in (1/2, 1) of p^k (1-p)^(n-k) dp.

    It is the likelihood ratio of k rounds out of n below the candidate against a fair coin, mixed over a uniform
    p. Under the true median it is a martingale that starts at 1, so by Ville's inequality it ever reaches 2 / alpha
    with probability at most alpha / 2, whatever the distribution of the rounds and whenever one stops.
    """
    from scipy import special  # imported when an interval is computed, not for `harness list`

    k = np.arange(n + 1)
    out = (n + 1) * math.log(2) + special.betaln(k + 1, n - k + 1) + np.log(special.betainc(n - k + 1, k + 1, 0.5))
    out.setflags(write=False)
    return out


@functools.cache
def _order(n: int, alpha: float) -> int:
    """The order statistic k (1-based) whose value bounds the median from above after n rounds, 0 if none does:
    the fewest rounds below a candidate at which ``log_mixture`` reaches 2 / alpha."""
    hit = np.nonzero(log_mixture(n) >= math.log(2 / alpha))[0]
    return int(hit[0]) if hit.size else 0


def count_p(n: int, k: int) -> float:
    """The level at which k of n rounds on one side of a value first exclude it from ``rounds_interval``: the
    interval at confidence 1 - a leaves the value out on that side exactly when a >= this (2 / M(k), at most 1)."""
    return min(1.0, 2 * math.exp(-log_mixture(n)[k])) if n <= MAX_ROUNDS else 1.0


def min_rounds(confidence: float = 0.95) -> int:
    """The fewest rounds at which ``rounds_interval`` is defined (8 at 95%): before that no round can decide.

    The first bound needs every round on one side, where Robbins' mixture is (2^(n+1) - 1) / (n + 1).
    """
    n = 1
    while (2 ** (n + 1) - 1) / (n + 1) < 2 / (1 - confidence):
        n += 1
    return n


def rounds_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """The median of per-round values and its anytime-valid interval: two order statistics of the rounds.

    Undefined with fewer rounds than ``min_rounds(confidence)`` or a value that is not a positive finite number.
    """
    x = np.sort(np.asarray(values, dtype=float))
    n = int(x.size)
    estimate = median(x)
    if math.isnan(estimate) or np.any(x <= 0):
        return Interval(math.nan, math.nan, math.nan, n, confidence)
    k = _order(n, 1 - confidence) if n <= MAX_ROUNDS else 0
    if not k:
        return Interval(estimate, math.nan, math.nan, n, confidence, needed=min_rounds(confidence))
    return Interval(estimate, float(x[n - k]), float(x[k - 1]), n, confidence)


def ratio_interval(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> Interval:
    """The ratio of the median rounds of ``b`` and ``a`` (two runs), bounded by each side's interval at half the
    error: B's low over A's high, B's high over A's low. ``rounds`` is the smaller count."""
    half = 1 - (1 - confidence) / 2
    ia, ib = rounds_interval(a, half), rounds_interval(b, half)
    n = min(ia.rounds, ib.rounds)
    if not (math.isfinite(ia.estimate) and math.isfinite(ib.estimate)):
        return Interval(math.nan, math.nan, math.nan, n, confidence)
    estimate = ib.estimate / ia.estimate
    if not (ia.defined and ib.defined):
        return Interval(estimate, math.nan, math.nan, n, confidence, needed=max(ia.needed, ib.needed))
    return Interval(estimate, ib.low / ia.high, ib.high / ia.low, n, confidence)


def _t(confidence: float, df: float) -> float:
    from scipy import stats

    return float(stats.t.ppf(0.5 + confidence / 2, df))


def _finite(values: Sequence[float]) -> np.ndarray | None:
    x = np.asarray(values, dtype=float)
    return x if x.size and np.all(np.isfinite(x)) else None


def _t_around_mean(values: Sequence[float], confidence: float, scale: float) -> Interval:
    """The mean over seeds +- t * sd * scale(n): undefined without two finite values, zero-width when all equal."""
    x = _finite(values)
    if x is None:
        return Interval(math.nan, math.nan, math.nan, len(values), confidence, "seeds")
    n, estimate = int(x.size), float(x.mean())
    if n < 2:
        return Interval(estimate, math.nan, math.nan, n, confidence, "seeds", needed=2)
    half = _t(confidence, n - 1) * float(x.std(ddof=1)) * scale(n)
    return Interval(estimate, estimate - half, estimate + half, n, confidence, "seeds")


def seeds_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """The mean over seeds (or of paired differences, which may be negative) and Student's t interval.

    Exact when the values are normal; one value gives none; values that are all equal, a zero-width one.
    """
    return _t_around_mean(values, confidence, lambda n: 1 / math.sqrt(n))


def prediction_interval(values: Sequence[float], confidence: float = 0.95) -> Interval:
    """Where one more seed's value falls: the mean over seeds +- t * sd * sqrt(1 + 1/n) (exact when normal).

    A single printed draw of the same experiment falls outside it with probability 1 - confidence.
    """
    return _t_around_mean(values, confidence, lambda n: math.sqrt(1 + 1 / n))


def welch_interval(a: Sequence[float], b: Sequence[float], confidence: float = 0.95) -> Interval:
    """mean(b) - mean(a) of two independent sets of seeds and Welch's t interval; ``rounds`` is the smaller count.

    Fewer than two values on a side give none; sides that are each constant, a zero-width one.
    """
    xa, xb = _finite(a), _finite(b)
    n = min(len(a), len(b))
    if xa is None or xb is None:
        return Interval(math.nan, math.nan, math.nan, n, confidence, "seeds")
    estimate = float(xb.mean() - xa.mean())
    if n < 2:
        return Interval(estimate, math.nan, math.nan, n, confidence, "seeds", needed=2)
    va, vb = xa.var(ddof=1) / xa.size, xb.var(ddof=1) / xb.size
    if va + vb == 0:
        return Interval(estimate, estimate, estimate, n, confidence, "seeds")
    df = (va + vb) ** 2 / (va ** 2 / (xa.size - 1) + vb ** 2 / (xb.size - 1))
    half = _t(confidence, df) * math.sqrt(va + vb)
    return Interval(estimate, estimate - half, estimate + half, n, confidence, "seeds")


def lag1(values: Sequence[float]) -> float:
    """The rounds' lag-1 autocorrelation (the sample ACF at lag 1): near 0 for independent rounds, positive when a
    slow spell of the machine spans several rounds. NaN with fewer than three rounds or no spread."""
    x = np.asarray(values, dtype=float)
    if x.size < 3 or not np.all(np.isfinite(x)):
        return math.nan
    d = x - x.mean()
    total = float(d @ d)
    return float(d[:-1] @ d[1:]) / total if total > 0 else math.nan


def runs_p(values: Sequence[float]) -> float:
    """Wald and Wolfowitz's runs test of the rounds above and below their median, two-sided, from the exact
    distribution of the number of runs (rounds on the median are left out). Too few runs: slow and fast spells;
    too many: alternation. NaN with fewer than two rounds on either side. (Written here, not taken from statsmodels:
    a dozen lines against a package the GPU node would have to carry.)"""
    from scipy.special import comb

    x = np.asarray(values, dtype=float)
    if not np.all(np.isfinite(x)):
        return math.nan
    side = x[x != np.median(x)] > np.median(x)
    a, b = int(side.sum()), int((~side).sum())
    if a < 2 or b < 2:
        return math.nan
    runs = 1 + int(np.count_nonzero(side[1:] != side[:-1]))
    r = np.arange(2, a + b + 1)
    half = r // 2
    even = 2 * comb(a - 1, half - 1) * comb(b - 1, half - 1)
    odd = comb(a - 1, half - 1) * comb(b - 1, half) + comb(a - 1, half) * comb(b - 1, half - 1)
    pmf = np.where(r % 2 == 0, even, odd) / comb(a + b, a)
    low, high = pmf[r <= runs].sum(), pmf[r >= runs].sum()
    return float(min(1.0, 2 * min(low, high)))
