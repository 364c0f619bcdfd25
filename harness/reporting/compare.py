"""``harness compare A B``: what changed between two suites (or spec runs), judged against its noise.

A timing is compared as the ratio of median rounds within both sides' confidence sequences, anything else as the
difference of means over seeds (paired t or Welch); the verdict is the three-way rule against a noise threshold,
in the words of the kind's metric table (docs/internals.md, "Tables, comparisons and history").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.judging.stats import Interval, median, number, ratio_interval, seeds_interval, welch_interval
from harness.kinds import registry
from harness.kinds.base import Metric
from harness.reading import results
from harness.store import tags as tag

THRESHOLD = 0.05  # relative: a timing within 5% either way, a value within 5% of A's, is not a change
DRIFT_THRESHOLDS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5)
FALSE_CALLS = 0.05  # in an A/A pair, at most this fraction of timings may be called faster or slower
ABS_FLOOR = 1e-6  # values this close count as equal whatever their size (a loss of 1e-9 against 1.1e-9)
ENV_KEYS = ["git.commit", "git.dirty", "lock", "torch", "torch.cuda", "cudnn", "python", "numpy", "scipy", "cpu.model",
            "cpu.count", "gpu.model", "torch.threads", "platform", tag.EXECUTOR]
NO_CHANGE, INCONCLUSIVE = "no change", "inconclusive"
HOW = ("timings: B / A of the median rounds, within both sides' confidence sequences at half the error each; "
       "other values: B - A of the means over seeds, Student's t (paired by seed) or Welch's t.")
COLUMNS = ["spec", "device", "metric", "basis", "a", "b", "change", "low", "high", "n_a", "n_b", "verdict"]


@dataclass(frozen=True)
class Direction:
    """Which way a metric improves (+1 higher, -1 lower, 0 neither) and the words for up and down."""

    sign: int
    up: str
    down: str


def entry(kind: str, metric: str) -> Metric | None:
    """The kind's metric table entry for ``metric`` (None for an unknown kind or a metric it no longer declares)."""
    found = registry.get(kind, required=False)
    return found.metric(metric) if found else None


def direction(kind: str, metric: str, timing: bool) -> Direction:
    """How to read a change, from the kind's metric table: which way is better, and whether it is a speed."""
    declared = entry(kind, metric)
    if declared is None or declared.sign == 0:
        return Direction(0, "higher", "lower")
    good, bad = ("faster", "slower") if timing or declared.speed else ("better", "worse")
    return Direction(declared.sign, good, bad) if declared.sign > 0 else Direction(declared.sign, bad, good)


def _timing(a: list[float], b: list[float], threshold: float, confidence: float) -> tuple[Interval, float, float]:
    same = sorted(a) == sorted(b)  # the same run on both sides: no change, however wide the intervals
    iv = Interval(1.0, 1.0, 1.0, len(a), confidence) if same else ratio_interval(a, b, confidence)
    return iv, 1 / (1 + threshold), 1 + threshold


def _values(a: pd.Series, b: pd.Series, threshold: float, confidence: float) -> tuple[Interval, float, float]:
    common = [s for s in a["seeds"] if s in b["seeds"]]
    if common and len(common) == len(a["seeds"]) == len(b["seeds"]):  # the same seeds: paired differences
        va, vb = dict(zip(a["seeds"], a["values"])), dict(zip(b["seeds"], b["values"]))
        diffs = [vb[s] - va[s] for s in common]
        iv = seeds_interval(diffs, confidence)
        if all(d == 0 for d in diffs):
            iv = Interval(0.0, 0.0, 0.0, len(diffs), confidence)
    else:
        iv = welch_interval(a["values"], b["values"], confidence)
    band = max(threshold * abs(float(np.mean(a["values"]))), ABS_FLOOR)
    return iv, -band, band


def verdict(iv: Interval, low_band: float, high_band: float, way: Direction) -> str:
    """Three-way: the whole interval beyond the band (a change, in ``way``'s words), inside it, or neither."""
    if iv.defined and low_band <= iv.low and iv.high <= high_band:
        return NO_CHANGE
    if iv.defined and iv.low > high_band:
        return way.up
    if iv.defined and iv.high < low_band:
        return way.down
    return INCONCLUSIVE


def _without_repeats(both: pd.DataFrame) -> pd.DataFrame:
    """Each number once: a per-seed value whose rounds are there too goes, and so does ``<loop>.<name>`` where it
    holds exactly the numbers of ``<name>`` on both sides (the same loop, logged under both names)."""
    timed = set(zip(both.loc[both["basis"] == "rounds", "device"], both.loc[both["basis"] == "rounds", "metric"]))
    plain = {(r["device"], r["basis"], r["metric"]): (r["values A"], r["values B"]) for _, r in both.iterrows()}
    keep = []
    for _, r in both.iterrows():
        name = r["metric"].split(".", 1)[-1]
        repeat = "." in r["metric"] and plain.get((r["device"], r["basis"], name)) == (r["values A"], r["values B"])
        keep.append(not repeat and not (r["basis"] == "seeds" and (r["device"], r["metric"]) in timed))
    return both[pd.Series(keep, index=both.index, dtype=bool)]


def compare_runs(spec: str, a: pd.Series, b: pd.Series, threshold: float = THRESHOLD,
                 confidence: float = 0.95) -> pd.DataFrame:
    """Every (device, metric) two runs of one spec both measured: A, B, the change, its interval, the verdict."""
    kind = tag.value(b, tag.KIND) or tag.value(a, tag.KIND)
    sa, sb = (results.samples(run) for run in (a, b))
    both = sa.merge(sb, on=["device", "metric", "basis"], suffixes=(" A", " B"))
    derived = [bool((e := entry(kind, m)) and e.derived_from) for m in both["metric"]]
    both = both[~pd.Series(derived, index=both.index, dtype=bool)]
    both = _without_repeats(both)
    rows = []
    for _, r in both.iterrows():
        va, vb = r["values A"], r["values B"]
        if not va or not vb:
            continue
        timing = r["basis"] == "rounds"
        if timing:
            iv, lo, hi = _timing(va, vb, threshold, confidence)
            mean_a, mean_b = median(va), median(vb)
        else:
            iv, lo, hi = _values(pd.Series({"seeds": r["seeds A"], "values": va}),
                                 pd.Series({"seeds": r["seeds B"], "values": vb}), threshold, confidence)
            mean_a, mean_b = float(np.mean(va)), float(np.mean(vb))
        if not (math.isfinite(mean_a) and math.isfinite(mean_b)):
            continue
        rows.append({"spec": spec, "device": r["device"], "metric": r["metric"], "basis": r["basis"],
                     "a": mean_a, "b": mean_b, "change": iv.estimate, "low": iv.low, "high": iv.high,
                     "n_a": len(va), "n_b": len(vb),
                     "verdict": verdict(iv, lo, hi, direction(kind, r["metric"], timing))})
    return pd.DataFrame(rows, columns=COLUMNS)


def compare(a: results.RunSet, b: results.RunSet, threshold: float = THRESHOLD,
            confidence: float = 0.95) -> pd.DataFrame:
    """Every spec both sides hold, compared metric by metric."""
    frames = [compare_runs(name, a.runs[name], b.runs[name], threshold, confidence)
              for name in sorted(set(a.runs) & set(b.runs))]
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=COLUMNS)


def environment(a: results.RunSet, b: results.RunSet) -> pd.DataFrame:
    """The environment of each side, the keys that differ first."""
    rows = [{"key": k, "A": a.tag(k) or "-", "B": b.tag(k) or "-"} for k in ENV_KEYS]
    df = pd.DataFrame(rows)
    df["differs"] = df["A"] != df["B"]
    return df.sort_values("differs", ascending=False, kind="stable").reset_index(drop=True)


def shown(df: pd.DataFrame) -> pd.DataFrame:
    """The comparison as text: ``0.52x`` for a timing, ``+0.0123`` for a value, the interval beside it."""
    def change(r: pd.Series) -> str:
        return f"{number(r['change'])}x" if r["basis"] == "rounds" else f"{r['change']:+.3g}"

    def ci(r: pd.Series) -> str:
        if not (math.isfinite(r["low"]) and math.isfinite(r["high"])):
            return "no interval"
        if r["basis"] == "rounds":
            return f"{number(r['low'])}-{number(r['high'])}x"
        return f"{r['low']:+.3g} to {r['high']:+.3g}"

    return pd.DataFrame({
        "device": df["device"], "metric": df["metric"], "basis": [f"{b} ({na}/{nb})" for b, na, nb in
                                                                  zip(df["basis"], df["n_a"], df["n_b"])],
        "A": [f"{v:.4g}" for v in df["a"]], "B": [f"{v:.4g}" for v in df["b"]],
        "B vs A": [change(r) for _, r in df.iterrows()], "95% CI": [ci(r) for _, r in df.iterrows()],
        "verdict": df["verdict"]})


def called(df: pd.DataFrame, threshold: float) -> pd.Series:
    """Which rows of a comparison a threshold calls a change: the whole interval beyond the noise band."""
    timed = df["basis"] == "rounds"
    band = np.maximum(threshold * df["a"].abs(), ABS_FLOOR)
    low = np.where(timed, 1 / (1 + threshold), -band)
    high = np.where(timed, 1 + threshold, band)
    return (df["low"] > high) | (df["high"] < low)


def drift(a: results.RunSet, b: results.RunSet, thresholds: tuple[float, ...] = DRIFT_THRESHOLDS,
          confidence: float = 0.95) -> pd.DataFrame:
    """An A/A pair (two suites of one commit on one machine, so nothing real changed): at each noise threshold,
    how many of the compared numbers a comparison calls a change, timings and per-seed values apart.

    The intervals cover the noise within each run's rounds; what two runs of one machine differ by besides (its
    drift) only a threshold absorbs. The smallest threshold whose rates stay within ``FALSE_CALLS`` is the one to
    pass to ``harness compare --threshold`` on that machine.
    """
    df = compare(a, b, THRESHOLD, confidence)
    rows = []
    for threshold in thresholds:
        hit = called(df, threshold)
        for basis, label in (("rounds", "timings"), ("seeds", "per-seed values")):
            mine = df["basis"] == basis
            n = int(mine.sum())
            rows.append({"threshold": threshold, "compared": label, "numbers": n, "called": int((hit & mine).sum()),
                         "called_fraction": float((hit & mine).sum() / n) if n else float("nan")})
    return pd.DataFrame(rows)


def calibrated_threshold(table: pd.DataFrame) -> float:
    """The smallest threshold of a ``drift`` table at which at most ``FALSE_CALLS`` of the timings, and of the
    per-seed values, are called a change (NaN if none is)."""
    worst = table.groupby("threshold")["called_fraction"].max()  # NaN (none compared) is skipped
    ok = worst[worst <= FALSE_CALLS]
    return float(ok.index.min()) if not ok.empty else float("nan")


def drift_advice(table: pd.DataFrame) -> str:
    """What a ``drift`` table advises, in the words both the report and ``harness compare --drift`` print."""
    best = calibrated_threshold(table)
    if best == best:
        return (f"At a threshold of {best:.0%} or more (`--threshold {best:g}`, or HARNESS_COMPARE_THRESHOLD), at most "
                f"{FALSE_CALLS:.0%} of the timings and of the per-seed values are called a change: compare suites of "
                "this machine with it.")
    return (f"No threshold up to {max(DRIFT_THRESHOLDS):.0%} keeps the calls within {FALSE_CALLS:.0%}: this machine "
            "drifts more than a comparison can tell apart from a change.")
