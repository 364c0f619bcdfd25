"""Reference + measurements over seeds -> a verdict: reproduced, not reproduced, inconclusive or skipped.

Exact and accuracy references are judged value by value, or on the t interval of the mean over seeds
(``over: interval``); a printed draw against the seeds' prediction interval. A timing reference is judged on
the interval of its rounds (``harness.judging.stats``). An interval verdict is reproduced when the whole interval
satisfies the claim, not reproduced when the whole interval violates it, inconclusive otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from harness.judging import significance
from harness.judging.stats import Interval, lag1, prediction_interval, rounds_interval, runs_p, seeds_interval
from harness.schema import Reference

REPRODUCED, MISSED, INCONCLUSIVE, SKIPPED = "reproduced", "not reproduced", "inconclusive", "skipped"
STATUSES = (REPRODUCED, MISSED, INCONCLUSIVE, SKIPPED)
INFO_ONLY = "info only"  # a spec whose gating claims were all skipped, but that measured information


def overall(verdicts: Iterable[Any]) -> str:
    """A spec's verdict from its rows (anything with ``status`` and ``gate``): not reproduced if a gating claim is,
    else inconclusive if one is, else reproduced if one is; with no gating claim judged, info only where an
    information-only one was, else skipped."""
    gating, info = [], []
    for v in verdicts:
        (gating if v.gate else info).append(v.status)
    for status in (MISSED, INCONCLUSIVE, REPRODUCED):
        if status in gating:
            return status
    return INFO_ONLY if any(s != SKIPPED for s in info) else SKIPPED


@dataclass(frozen=True)
class Verdict:
    """One reference checked on one device, over every seed that ran."""

    ref: str
    metric: str
    device: str
    expected: str
    measured: str
    tolerance: str
    status: str
    detail: str
    note: str = ""
    basis: str = ""  # where the expected value comes from (harness.schema.BASES)
    gate: bool = True  # on this verdict's device
    low: float = math.nan  # the interval of a timing or interval verdict, a draw's prediction interval
    high: float = math.nan
    rounds: int = 0
    estimate: float = math.nan  # that interval's point estimate (a median round, a mean over seeds)
    claimed: float = math.nan  # a printed draw's value (the mean of several draws of one run)
    p_value: float = math.nan  # against "the claim holds": the level at which its own interval first says not
    p_reproduced: float = math.nan  # against "the claim fails" (claims judged on an interval)
    adjusted_p: float = math.nan  # p_value after Holm over the family (harness.judging.family)
    family: int = 0  # the size of its family (claims judged at a level, gating on this device); 0: not in one
    own_status: str = ""  # the status at the claim's own confidence, before the family
    detectable_shift: float = math.nan  # what the check calls not reproduced POWER of the time (significance)
    useful: float = math.nan  # the largest departure the spec still counts as reproducing
    lag1: float = math.nan  # a timing's rounds: lag-1 autocorrelation
    runs_p: float = math.nan  # and the runs test's p-value (independence doubtful below 0.01)

    @property
    def gating_miss(self) -> bool:
        return self.gate and self.status == MISSED

    @property
    def gating_inconclusive(self) -> bool:
        return self.gate and self.status == INCONCLUSIVE

    @property
    def weak(self) -> bool:
        """A check that cannot catch a departure the spec calls too large to count as reproducing."""
        return self.detectable_shift > self.useful  # False where either is NaN

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self) | {"weak": self.weak}
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in out.items()}


def _flatten(value: Any) -> tuple[str, np.ndarray]:
    """A (possibly ragged) nested list as (its nesting shape, its leaves as floats)."""
    if isinstance(value, (list, tuple)):
        parts = [_flatten(v) for v in value]
        shape = "[" + ",".join(p[0] for p in parts) + "]"
        leaves = np.concatenate([p[1] for p in parts]) if parts else np.zeros(0)
        return shape, leaves
    return "x", np.asarray([value], dtype=float)


def _fmt(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    shape, leaves = _flatten(value)
    try:
        arr = np.asarray(value, dtype=float)
    except ValueError:
        return f"ragged list of {len(value)}, last {value[-1]}" if leaves.size > 8 else str(value)
    if arr.ndim == 0:
        return f"{float(arr):.6g}"
    if arr.size <= 8:
        return np.array2string(arr, precision=4, separator=", ", suppress_small=True).replace("\n", "")
    return f"array{tuple(arr.shape)}"


def expected_text(ref: Reference) -> str:
    c = ref.comparison
    if c in ("equals", "near"):
        return _fmt(getattr(ref, c))
    if c == "band":
        return f"[{_g(ref.band[0])}, {_g(ref.band[1])}]"
    if c == "draw":
        if isinstance(ref.draw, list):
            return f"{_fmt(ref.draw)} (one printed curve)"
        return f"{_g(ref.draw)} (one printed draw)"
    return ("<= " if c == "at_most" else ">= ") + _g(getattr(ref, c))


def _g(v: float) -> str:
    """4 significant digits, whole numbers with separators from 10,000 on (14,190, not 1.419e+04)."""
    return f"{v:,.0f}" if abs(v) >= 1e4 else f"{v:.4g}"


def tolerance_text(ref: Reference, confidence: float = 0.95) -> str:
    c = ref.comparison
    if c == "draw":
        return f"{confidence:.0%} prediction interval of the seeds"
    if ref.over == "interval":
        return f"whole {confidence:.0%} CI of the mean over seeds"
    if c == "equals":
        return "exact" if ref.atol == 0 else f"atol {ref.atol:g}"
    if c == "near":
        return " + ".join(t for t in (f"atol {ref.atol:g}" if ref.atol else "",
                                       f"rtol {ref.rtol:g}" if ref.rtol else "") if t) or "exact"
    if c == "band":
        return f"tol {ref.tol:g}" + (" on the mean" if ref.over == "mean" else " on every seed")
    return "bound" + (" on the mean" if ref.over == "mean" else " on every seed")


def check_one(ref: Reference, value: Any) -> tuple[bool, float]:
    """Does one measured value satisfy the reference? Also returns by how much it is off (0 when inside)."""
    c = ref.comparison
    if c in ("equals", "near"):
        want_shape, want = _flatten(getattr(ref, c))
        got_shape, got = _flatten(value)
        if got_shape != want_shape:
            return False, float("inf")
        diff = np.abs(got - want)
        ok = bool(np.all(diff <= ref.atol + ref.rtol * np.abs(want)))
        return ok, float(diff.max(initial=0.0))
    x = float(value)
    if not np.isfinite(x):
        return False, float("inf")
    if c == "at_most":
        return x <= ref.at_most, max(0.0, x - ref.at_most)
    if c == "at_least":
        return x >= ref.at_least, max(0.0, ref.at_least - x)
    lo, hi = ref.band[0] - ref.tol, ref.band[1] + ref.tol
    return lo <= x <= hi, max(0.0, lo - x, x - hi)


def _spread(values: list[Any]) -> str:
    if len(values) < 2:
        return ""
    arr = np.asarray(values, dtype=float)
    return f"mean {arr.mean():.4g}, sd {arr.std(ddof=1):.2g}, range [{arr.min():.4g}, {arr.max():.4g}]"


def _base(ref: Reference, device: str, confidence: float = 0.95) -> dict[str, Any]:
    return dict(ref=ref.source, metric=ref.metric, device=device, expected=expected_text(ref),
                tolerance=tolerance_text(ref, confidence), note=ref.note, basis=ref.basis, gate=ref.gates_on(device),
                useful=math.nan if ref.useful is None else ref.useful)


def judge(ref: Reference, device: str, per_seed: dict[int, Any], confidence: float = 0.95,
          level: float | None = None) -> Verdict:
    """Judge a reference against the values measured on each seed of one device.

    ``level`` is the error the check is held to where it states what it could have caught (its detectable shift):
    by default the claim's own (1 - confidence); in a family, what Holm gives its first claim.
    """
    base = _base(ref, device, confidence)
    level = 1 - confidence if level is None else level
    values = [per_seed[s] for s in sorted(per_seed)]
    if not values:
        return Verdict(measured="-", status=SKIPPED, detail="no measurement", **base)
    if ref.comparison == "draw":
        return judge_draws([ref], device, values, confidence, level)
    if ref.over == "interval":
        x = [float(v) for v in values]
        lo, hi = claim_range(ref)
        p_miss, p_rep = significance.mean_p(x, lo, hi)
        sd = float(np.std(x, ddof=1)) if len(x) > 1 else math.nan
        return replace(_judge_interval(ref, base, seeds_interval(x, confidence)), p_value=p_miss,
                       p_reproduced=p_rep, detectable_shift=significance.mean_shift(len(x), sd, level))
    n = len(values)
    checks = [check_one(ref, v) for v in values]
    passed = sum(ok for ok, _ in checks)
    worst = max(off for _, off in checks)
    scalar = not any(isinstance(v, (list, tuple)) for v in values)
    if ref.over == "mean" and scalar:
        mean = float(np.mean(values))
        ok, off = check_one(ref, mean)
        measured = _fmt(mean)
        detail = f"mean {'inside' if ok else f'off by {off:.3g}'}; {passed}/{n} seeds inside"
    else:
        ok, off = passed == n, worst
        if n == 1:
            measured = _fmt(values[0])
        elif scalar:
            measured = _fmt(np.median(values)) + " (median)"
        else:
            measured = _fmt(values[0]) + f" (seed {sorted(per_seed)[0]})"
        if n == 1:
            detail = ("exact" if ref.comparison == "equals" and off == 0 else "inside") if ok else f"off by {off:.3g}"
        else:
            detail = f"{passed}/{n} seeds inside" + ("" if ok else f"; worst off by {off:.3g}")
    spread = _spread(values) if scalar else ""
    if spread:
        detail += f"; {spread}"
    shift = math.nan
    if scalar and n > 1 and ref.comparison != "equals":
        shift = significance.point_shift([float(v) for v in values], *claim_range(ref), every=ref.over == "all")
    return Verdict(measured=measured, status=REPRODUCED if ok else MISSED, detail=detail, detectable_shift=shift,
                   own_status=REPRODUCED if ok else MISSED, **base)


def claim_range(ref: Reference) -> tuple[float, float]:
    """The values a reference on one number accepts, as [lo, hi] (either end may be infinite)."""
    c = ref.comparison
    if c == "at_least":
        return ref.at_least, math.inf
    if c == "at_most":
        return -math.inf, ref.at_most
    if c == "band":
        return ref.band[0] - ref.tol, ref.band[1] + ref.tol
    near = float(ref.near)
    tol = ref.atol + ref.rtol * abs(near)
    return near - tol, near + tol


def decide(ref: Reference, iv: Interval) -> tuple[str, float]:
    """The three-way verdict of a reference on an interval (of rounds or seeds), and how far the interval lies outside.

    Reproduced when the whole interval satisfies the claim, not reproduced when all of it violates the claim,
    inconclusive otherwise (an undefined interval, from too few rounds or seeds, is inconclusive too).
    """
    lo, hi = claim_range(ref)
    if not iv.defined:
        return INCONCLUSIVE, math.nan
    if lo <= iv.low and iv.high <= hi:
        return REPRODUCED, 0.0
    if iv.high < lo or iv.low > hi:
        return MISSED, max(lo - iv.high, iv.low - hi)
    return INCONCLUSIVE, max(lo - iv.low, iv.high - hi)


def _judge_interval(ref: Reference, base: dict[str, Any], iv: Interval, unit: str = "") -> Verdict:
    """The three-way verdict of ``decide`` on an interval over rounds or seeds, with its words."""
    status, off = decide(ref, iv)
    if status == REPRODUCED:
        detail = "whole interval inside"
    elif status == MISSED:
        detail = f"whole interval outside, by {off:.3g}"
    elif iv.defined:
        detail = f"interval straddles the bound (by {off:.3g} on one side)"
    else:
        detail = iv.why_undefined()
    return Verdict(measured=iv.text(unit), status=status, detail=detail, low=iv.low, high=iv.high,
                   rounds=iv.rounds, estimate=iv.estimate, own_status=status, **base)


def judge_draws(refs: list[Reference], device: str, values: list[Any], confidence: float = 0.95,
                level: float | None = None) -> Verdict:
    """A printed draw, or the mean of several editions' draws of one run, against where the mean of as many more
    seeds would fall (the seeds' prediction interval): inside is reproduced, outside not; with one seed, undecided.
    Its p-value is the predictive one (``significance.draw_p``), its detectable shift that of the book's mean."""
    draws = [r.draw for r in refs]
    k, level = len(draws), 1 - confidence if level is None else level
    if isinstance(draws[0], list):
        return _judge_curve(refs[0], device, values, confidence, level)
    x = [float(v) for v in values]
    iv = _prediction(x, confidence, k)
    base = _base(refs[0], device, confidence)
    if k > 1:
        shown = ", ".join(f"{d:g}" for d in draws)
        base |= dict(ref="+".join(dict.fromkeys(r.source for r in refs)),
                     expected=f"{np.mean(draws):.4g} (mean of {k} printed draws: {shown})",
                     note=f"the {k} printed draws of this run, pooled: sharper than any one",
                     tolerance=f"{confidence:.0%} prediction interval of a mean of {k} draws",
                     basis=refs[0].basis if len({r.basis for r in refs}) == 1 else "printed",
                     useful=min((r.useful for r in refs if r.useful is not None), default=math.nan))
    if not iv.defined:
        return Verdict(measured=iv.text(), status=INCONCLUSIVE, detail=iv.why_undefined(), own_status=INCONCLUSIVE,
                       **base)
    drawn = float(np.mean(draws))
    inside = iv.low <= drawn <= iv.high
    off = max(0.0, iv.low - drawn, drawn - iv.high)
    where = "inside" if inside else f"outside by {off:.3g}"
    what = f"the printed {drawn:g}" if k == 1 else f"the mean of the {k} printed draws, {drawn:.4g},"
    detail = (f"{what} lies {where} where {'one more seed' if k == 1 else f'the mean of {k} more seeds'} would fall "
              f"({iv.low:.4g} to {iv.high:.4g}); {_spread(x)}")
    status = REPRODUCED if inside else MISSED
    sd = float(np.std(x, ddof=1))
    return Verdict(measured=f"{iv.estimate:.4g} (mean of {iv.count()})", status=status, own_status=status,
                   detail=detail, low=iv.low, high=iv.high, rounds=iv.rounds, estimate=iv.estimate, claimed=drawn,
                   **base,
                   p_value=float(significance.draw_p(x, draws)),
                   detectable_shift=significance.draw_shift(len(x), sd, level, k))


def _judge_curve(ref: Reference, device: str, values: list[Any], confidence: float, level: float) -> Verdict:
    """A printed curve (a value per epoch) against the seeds' curves, epoch by epoch on each epoch's prediction
    interval; one claim: its p-value the smallest epoch's times the epochs (Bonferroni over the curve), its
    detectable shift the largest of the epochs' at level / epochs (a departure at any one epoch)."""
    base = _base(ref, device, confidence)
    curves = [list(map(float, v)) for v in values]
    epochs = len(ref.draw)
    if any(len(c) != epochs for c in curves):
        return Verdict(measured=f"curves of {sorted({len(c) for c in curves})} epochs", status=MISSED,
                       own_status=MISSED, detail=f"the printed curve has {epochs} epochs", **base)
    x = np.asarray(curves).T  # epochs x seeds
    if x.shape[1] < 2:
        return Verdict(measured="1 seed's curve", status=INCONCLUSIVE, own_status=INCONCLUSIVE,
                       detail="no interval, 1 seed", **base)
    p = np.atleast_1d(significance.draw_p(x, np.asarray(ref.draw)[:, None]))
    p_value = min(1.0, float(p.min()) * epochs)
    outside = [f"epoch {e + 1} ({ref.draw[e]:g}, p {p[e]:.2g})" for e in range(epochs) if p[e] < 1 - confidence]
    status = MISSED if p_value < 1 - confidence else REPRODUCED
    shift = max(significance.draw_shift(x.shape[1], float(np.std(row, ddof=1)), level / epochs) for row in x)
    detail = ("each epoch's printed value against where one more seed would fall at that epoch: "
              + (f"outside at {', '.join(outside)}" if outside else "every epoch inside")
              + f"; the curve's p-value {p_value:.2g} (the smallest epoch's x {epochs})")
    return Verdict(measured=f"{_fmt(x.mean(axis=1).tolist())} (mean of {x.shape[1]} seeds)", status=status,
                   own_status=status, detail=detail, rounds=x.shape[1], p_value=p_value, detectable_shift=shift,
                   **base)


def _prediction(values: list[float], confidence: float, k: int) -> Interval:
    """Where the mean of k more seeds falls: the seeds' prediction interval, narrowed for k > 1 (sqrt(1/k + 1/n))."""
    iv = prediction_interval(values, confidence)
    if k == 1 or not iv.defined:
        return iv
    n = iv.rounds
    half = (iv.high - iv.estimate) * math.sqrt((1 / k + 1 / n) / (1 + 1 / n))
    return replace(iv, low=iv.estimate - half, high=iv.estimate + half)


def judge_timing(ref: Reference, device: str, rounds_by_seed: dict[int, list[float]], unit: str = "",
                 confidence: float = 0.95, level: float | None = None, diagnostics: bool = True) -> Verdict:
    """Judge a timing reference on the interval of its rounds (the rounds of every seed pooled), with its p-values,
    detectable shift (at ``level``, default 1 - confidence) and the rounds' lag-1 autocorrelation and runs test
    (``diagnostics=False`` leaves those three out: the calibration's thousands of trials need the verdict only)."""
    base = _base(ref, device, confidence)
    values = [v for s in sorted(rounds_by_seed) for v in rounds_by_seed[s]]
    if not values:
        return Verdict(measured="-", status=SKIPPED, detail="no rounds measured", **base)
    base["tolerance"] = f"whole {confidence:.0%} CI"
    verdict = _judge_interval(ref, base, rounds_interval(values, confidence), unit)
    if len(rounds_by_seed) > 1:
        verdict = replace(verdict, detail=verdict.detail + f"; rounds of {len(rounds_by_seed)} seeds pooled")
    lo, hi = claim_range(ref)
    p_miss, p_rep = significance.rounds_p(values, lo, hi)
    verdict = replace(verdict, p_value=p_miss, p_reproduced=p_rep)
    if not diagnostics:
        return verdict
    level = 1 - confidence if level is None else level
    return replace(verdict, lag1=lag1(values), runs_p=runs_p(values),
                   detectable_shift=significance.rounds_shift(values, lo, hi, level))


def skipped(ref: Reference, device: str, reason: str) -> Verdict:
    """A reference that could not be checked here, with the reason (for example: no GPU)."""
    return Verdict(measured="-", status=SKIPPED, detail=reason, **_base(ref, device))
