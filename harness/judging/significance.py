"""What each random check says and what it could have caught: its p-value against the claim, and its detectable shift.

A p-value here is the level at which the check's own interval would first decide: the prediction interval of a
printed draw, the t interval of a mean over seeds, the confidence sequence of a timing's median round. Below the
level the verdict is reached, so the p-values are what Holm's step-down combines over a spec's claims
(``harness.judging.family``). The detectable shift is the smallest departure of the truth from what is claimed that
a check calls *not reproduced* with probability ``POWER``, at its sample size and level, under the model its interval
assumes (normal seeds; log-normal rounds, their spread read off the rounds by the median absolute deviation).

Arrays: values over seeds (or printed draws) lie on the last axis, so one call judges many simulated trials at once;
``harness.judging.calibration`` runs the same functions a spec run does.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from harness.judging.stats import _order, count_p

POWER = 0.8  # a detectable shift is caught this often


def _ratio(num: np.ndarray, den: np.ndarray, at_zero: float) -> np.ndarray:
    """num / den, where den is 0: +inf for num > 0, -inf for num < 0, ``at_zero`` for 0 / 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        zero = np.where(num > 0, math.inf, np.where(num < 0, -math.inf, at_zero))
        return np.where(den > 0, num / np.where(den > 0, den, 1), zero)


def draw_p(values: np.ndarray | Sequence[float], draws: np.ndarray | Sequence[float]) -> np.ndarray:
    """The predictive p-value of the mean of k printed draws against n seeds (two-sided): Student's t with n - 1
    degrees of freedom on (mean of draws - mean of seeds) / (sd of seeds * sqrt(1/k + 1/n)). Exact when seeds and
    draws are normal draws of one run; NaN with fewer than two seeds."""
    from scipy import stats

    x, d = np.asarray(values, dtype=float), np.asarray(draws, dtype=float)
    n, k = x.shape[-1], d.shape[-1]
    if n < 2:
        return np.full(x.shape[:-1], math.nan)
    gap = np.abs(d.mean(axis=-1) - x.mean(axis=-1))
    scale = x.std(axis=-1, ddof=1) * math.sqrt(1 / k + 1 / n)
    return 2 * stats.t.sf(_ratio(gap, scale, 0.0), n - 1)


def mean_p(values: Sequence[float], lo: float, hi: float) -> tuple[float, float]:
    """The mean over seeds against the claim's range [lo, hi] on its t interval: the p-value against "the mean lies in
    the range" (the level at which the interval first lies wholly outside) and against "it lies outside" (wholly
    inside). Both 1 with fewer than two seeds."""
    from scipy import stats

    x = np.asarray(values, dtype=float)
    n = x.size
    if n < 2 or not np.all(np.isfinite(x)):
        return 1.0, 1.0
    mean, se = x.mean(), np.asarray(x.std(ddof=1) / math.sqrt(n))
    outside, inside = np.asarray(max(lo - mean, mean - hi)), np.asarray(min(mean - lo, hi - mean))
    p_miss = 2 * stats.t.sf(_ratio(outside, se, -math.inf), n - 1)  # on the bound: inside (the range is closed)
    p_rep = 2 * stats.t.sf(_ratio(inside, se, math.inf), n - 1)
    return min(1.0, float(p_miss)), min(1.0, float(p_rep))


def rounds_p(values: Sequence[float], lo: float, hi: float) -> tuple[float, float]:
    """A timing's rounds against the claim's range [lo, hi] on the confidence sequence of their median
    (``stats.rounds_interval``): the interval at confidence 1 - a lies wholly below lo exactly when a is at least
    ``count_p`` of the rounds below lo, and so on. Returns (p against the claim holding, p against it failing)."""
    x = np.sort(np.asarray(values, dtype=float))  # NaN sorts last
    n = int(x.size)
    if n == 0 or not (x[0] > 0 and math.isfinite(x[-1])):
        return 1.0, 1.0
    below, up_to_hi = int(np.searchsorted(x, lo, "left")), int(np.searchsorted(x, hi, "right"))  # < lo, <= hi
    p_miss = min(count_p(n, below), count_p(n, n - up_to_hi))
    p_rep = max(count_p(n, n - below), count_p(n, up_to_hi))
    return p_miss, p_rep


def _solve(power, high: float) -> float:
    """The smallest shift in [0, high] with power(shift) >= POWER (power rising with the shift); inf if none."""
    from scipy import optimize

    if power(high) < POWER:
        return math.inf
    return float(optimize.brentq(lambda s: power(s) - POWER, 0.0, high, xtol=1e-10, rtol=1e-8))


def _t_power(crit: float, df: int, ncp: float, both: bool) -> float:
    """P(T > crit) (``both``: or T < -crit) for T non-central t with ``df`` degrees of freedom and non-centrality
    ``ncp`` >= 0. scipy's nct, or where it loses a tail (few degrees of freedom, large ncp: where these checks live):
    the far tail is below P(T < 0) = Phi(-ncp), nothing beside 80%, and the near one is the normal's tail averaged
    over the chi-distributed sd."""
    from scipy import stats

    upper = float(stats.nct.sf(crit, df, ncp))
    if not math.isfinite(upper):
        scale = crit / math.sqrt(df)
        upper = float(stats.chi(df).expect(lambda u: stats.norm.sf(scale * u - ncp)))
    lower = float(stats.nct.cdf(-crit, df, ncp)) if both else 0.0
    return upper + (lower if math.isfinite(lower) else 0.0)


def draw_shift(n: int, sd: float, level: float, k: int = 1) -> float:
    """The shift of the book's mean from the seeds' that the mean of k printed draws is called outside the seeds'
    prediction interval (at ``level``) ``POWER`` of the time: the non-central t's power, scaled by the seeds' sd."""
    from scipy import stats

    if n < 2 or not math.isfinite(sd):
        return math.nan
    crit, df = stats.t.ppf(1 - level / 2, n - 1), n - 1
    return _solve(lambda lam: _t_power(crit, df, lam, True), 1e4) * sd * math.sqrt(1 / k + 1 / n)


def mean_shift(n: int, sd: float, level: float) -> float:
    """How far beyond the claim's bound the true mean must lie for the t interval over n seeds (at ``level``) to
    lie wholly beyond it ``POWER`` of the time."""
    from scipy import stats

    if n < 2 or not math.isfinite(sd):
        return math.nan
    crit, df = stats.t.ppf(1 - level / 2, n - 1), n - 1
    return _solve(lambda lam: _t_power(crit, df, lam, False), 1e4) * sd / math.sqrt(n)


def point_shift(values: Sequence[float], lo: float, hi: float, every: bool) -> float:
    """A point check (every seed inside [lo, hi], or their mean): how far beyond the nearer bound the truth must lie
    for the check to fail ``POWER`` of the time, seeds normal with the sd they show. Negative where the rule fails
    that often even inside the range (a check stricter than its claim); NaN with fewer than two seeds."""
    from scipy import optimize, stats

    x = np.asarray(values, dtype=float)
    n = x.size
    if n < 2 or not np.all(np.isfinite(x)):
        return math.nan
    sd = float(x.std(ddof=1))
    if sd == 0:
        return 0.0
    scale = sd if every else sd / math.sqrt(n)

    def power(mu: float) -> float:
        inside = stats.norm.cdf((hi - mu) / scale) - stats.norm.cdf((lo - mu) / scale)
        return 1 - inside ** (n if every else 1)

    shifts = []
    reach = 20 * scale
    deepest = min((hi - lo) / 2, reach) if math.isfinite(hi - lo) else reach  # how far inside the range to look
    for bound, out in ((lo, -1), (hi, 1)):
        if not math.isfinite(bound):
            continue
        at = lambda s, b=bound, o=out: power(b + o * s) - POWER  # noqa: E731 - the shift beyond this bound
        shifts.append(-deepest if at(-deepest) >= 0 else float(optimize.brentq(at, -deepest, reach, xtol=1e-12)))
    return max(shifts)


def rounds_shift(values: Sequence[float], lo: float, hi: float, level: float) -> float:
    """How far beyond the claim's bound the true median round must lie for the confidence sequence at ``level``,
    after as many rounds as were measured, to lie wholly beyond it ``POWER`` of the time: rounds log-normal with the
    spread these rounds show (1.4826 x the median absolute deviation of their logs). Inf when no interval exists at
    that many rounds and that level: the check could not have failed."""
    from scipy import stats

    x = np.asarray(values, dtype=float)
    n = int(x.size)
    if n == 0 or not np.all(np.isfinite(x)) or np.any(x <= 0):
        return math.nan
    k = _order(n, level)
    if not k:
        return math.inf
    logs = np.log(x)
    spread = 1.4826 * float(np.median(np.abs(logs - np.median(logs))))
    # k of n rounds beyond the bound decide; the share q of rounds beyond it that makes that happen POWER of the time:
    # P(Binomial(n, q) >= k) = P(Beta(k, n - k + 1) <= q)
    share = float(stats.beta.ppf(POWER, k, n - k + 1))
    step = math.exp(spread * stats.norm.ppf(share))  # the true median that far beyond the bound, as a factor
    shifts = [b - b / step for b in (lo,) if math.isfinite(b)] + [b * step - b for b in (hi,) if math.isfinite(b)]
    return max(shifts)
