"""Reference + measurements over seeds -> a verdict: reproduced, not reproduced, inconclusive or skipped.

Exact and accuracy references are judged value by value, or on the t interval of the mean over seeds
(``over: interval``); a printed draw against the seeds' prediction interval. A timing reference is judged on
the interval of its rounds (``harness.judging.stats``). An interval verdict is reproduced when the whole interval
satisfies the claim, not reproduced when the whole interval violates it, inconclusive otherwise.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from harness.judging.stats import Interval, prediction_interval, rounds_interval, seeds_interval
from harness.schema import Reference

REPRODUCED, MISSED, INCONCLUSIVE, SKIPPED = "reproduced", "not reproduced", "inconclusive", "skipped"
STATUSES = (REPRODUCED, MISSED, INCONCLUSIVE, SKIPPED)


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
    low: float = math.nan  # the interval of a timing verdict
    high: float = math.nan
    rounds: int = 0

    @property
    def gating_miss(self) -> bool:
        return self.gate and self.status == MISSED

    @property
    def gating_inconclusive(self) -> bool:
        return self.gate and self.status == INCONCLUSIVE

    def as_dict(self) -> dict[str, Any]:
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(self).items()}


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
                tolerance=tolerance_text(ref, confidence), note=ref.note, basis=ref.basis, gate=ref.gates_on(device))


def judge(ref: Reference, device: str, per_seed: dict[int, Any], confidence: float = 0.95) -> Verdict:
    """Judge a reference against the values measured on each seed of one device."""
    base = _base(ref, device, confidence)
    values = [per_seed[s] for s in sorted(per_seed)]
    if not values:
        return Verdict(measured="-", status=SKIPPED, detail="no measurement", **base)
    if ref.comparison == "draw":
        return _judge_draw(ref, base, values, confidence)
    if ref.over == "interval":
        return _judge_interval(ref, base, seeds_interval([float(v) for v in values], confidence))
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
    return Verdict(measured=measured, status=REPRODUCED if ok else MISSED, detail=detail, **base)


def _claim_range(ref: Reference) -> tuple[float, float]:
    """The values a timing reference accepts, as [lo, hi] (either end may be infinite)."""
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
    lo, hi = _claim_range(ref)
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
                   rounds=iv.rounds, **base)


def _judge_draw(ref: Reference, base: dict[str, Any], values: list[Any], confidence: float) -> Verdict:
    """A printed draw inside the seeds' prediction interval is reproduced; outside, not; with one seed, undecided."""
    iv = prediction_interval([float(v) for v in values], confidence)
    if not iv.defined:
        return Verdict(measured=iv.text(), status=INCONCLUSIVE, detail=iv.why_undefined(), **base)
    inside = iv.low <= ref.draw <= iv.high
    off = max(0.0, iv.low - ref.draw, ref.draw - iv.high)
    where = "inside" if inside else f"outside by {off:.3g}"
    detail = (f"the printed {ref.draw:g} lies {where} where one more seed would fall "
              f"({iv.low:.4g} to {iv.high:.4g}); {_spread(values)}")
    return Verdict(measured=f"{iv.estimate:.4g} (mean of {iv.count()})", status=REPRODUCED if inside else MISSED,
                   detail=detail, low=iv.low, high=iv.high, rounds=iv.rounds, **base)


def judge_timing(ref: Reference, device: str, rounds_by_seed: dict[int, list[float]], unit: str = "",
                 confidence: float = 0.95) -> Verdict:
    """Judge a timing reference on the interval of its rounds (the rounds of every seed pooled)."""
    base = _base(ref, device, confidence)
    values = [v for s in sorted(rounds_by_seed) for v in rounds_by_seed[s]]
    if not values:
        return Verdict(measured="-", status=SKIPPED, detail="no rounds measured", **base)
    base["tolerance"] = f"whole {confidence:.0%} CI"
    verdict = _judge_interval(ref, base, rounds_interval(values, confidence), unit)
    if len(rounds_by_seed) > 1:
        verdict = replace(verdict, detail=verdict.detail + f"; rounds of {len(rounds_by_seed)} seeds pooled")
    return verdict


def skipped(ref: Reference, device: str, reason: str) -> Verdict:
    """A reference that could not be checked here, with the reason (for example: no GPU)."""
    return Verdict(measured="-", status=SKIPPED, detail=reason, **_base(ref, device))
