"""One level up from a claim: a spec's gating claims on one device are a family, and its verdict has a stated error.

The family is the claims judged at a level: printed draws (and, where several editions printed one run, the mean of
their draws), means over seeds on their t interval, timings on their rounds. Each gives a p-value against "the claim
holds" (``harness.judging.significance``); Holm's step-down over the family calls a claim *not reproduced* when its
adjusted p-value is at most the family's error (5% by default), so the chance that any claim which holds is called
not reproduced stays within that error, whatever the dependence between the claims. The claims judged on an interval
have a second wrong verdict, *reproduced* while the claim fails: the same step-down over their p-values against
"the claim fails" bounds it alike. A printed draw has no such test: *reproduced* there means consistent with the
seeds, and what it could have missed is its detectable shift. Exact checks, and point checks on each seed or on the
mean, decide by their own rule: they spend none of the family's error, and a point check's own error is not stated
(its detectable shift says what it can catch).

Across a suite, the specs' family p-values (the smallest adjusted p-value in each) go through Benjamini and
Hochberg's step-up: of the specs it keeps as not reproduced, the expected share that reproduce after all is at most
the suite's error (``suite_kept``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import replace

import numpy as np

from harness.judging.verdict import INCONCLUSIVE, MISSED, REPRODUCED, SKIPPED, Verdict
from harness.schema import FAMILY_ERROR, Reference

ERROR = FAMILY_ERROR


def member(ref: Reference, timed: bool) -> bool:
    """Is the claim judged at a level (so one of its family), rather than by an exact or point rule?"""
    return timed or ref.comparison == "draw" or ref.over == "interval"


def two_sided(ref: Reference, timed: bool) -> bool:
    """Can the claim be wrongly called reproduced at a level too (a timing, a mean on its interval)?"""
    return timed or ref.over == "interval"


def pools(refs: Iterable[Reference], device: str) -> list[list[Reference]]:
    """Several editions' printed draws of one run: the gating draws of one number on ``device``, two or more."""
    groups: dict[str, list[Reference]] = {}
    for ref in refs:
        if ref.comparison == "draw" and not isinstance(ref.draw, list) and ref.gates_on(device):
            groups.setdefault(ref.metric, []).append(ref)
    return [group for group in groups.values() if len(group) > 1]


def sizes(refs: list[Reference], device: str, timed: set[str]) -> tuple[int, int]:
    """The family of ``refs`` on ``device``: how many claims it holds, and how many of them are two-sided."""
    gating = [r for r in refs if r.gates_on(device) and member(r, r.metric in timed)]
    return len(gating) + len(pools(refs, device)), sum(two_sided(r, r.metric in timed) for r in gating)


def holm(p: np.ndarray | list[float], size: int = 0) -> np.ndarray:
    """Holm's adjusted p-values along the last axis (NaN counts as 1): the i-th smallest p times (m - i + 1), made
    non-decreasing. A claim is rejected at family error alpha when its adjusted p-value is at most alpha. ``size``
    above the number given: the family holds that many claims, the others with p = 1 (they change no adjusted p
    but the factors)."""
    p = np.asarray(p, dtype=float)
    m = max(p.shape[-1], size)
    if p.ndim == 1:  # one family: plain Python, quicker than numpy's machinery at these sizes (the rule's looks)
        values = [1.0 if v != v else v for v in p.tolist()]
        out, running = np.empty(len(values)), 0.0
        for rank, i in enumerate(sorted(range(len(values)), key=values.__getitem__)):
            running = max(running, min(1.0, values[i] * (m - rank)))
            out[i] = running
        return out
    p = np.where(np.isnan(p), 1.0, p)
    order = np.argsort(p, axis=-1, kind="stable")
    ranked = np.take_along_axis(p, order, axis=-1) * (m - np.arange(p.shape[-1]))
    adjusted = np.minimum(1.0, np.maximum.accumulate(ranked, axis=-1))
    out = np.empty_like(adjusted)
    np.put_along_axis(out, order, adjusted, axis=-1)
    return out


def adjust(verdicts: list[Verdict], error: float = ERROR) -> list[Verdict]:
    """The verdicts of one device with the family's statuses: each member (``family`` > 0) is not reproduced when
    Holm's adjusted p-value is at most ``error``; a two-sided member is reproduced when the same holds of its
    p-value against the claim failing, inconclusive otherwise; a draw is reproduced (consistent) when not rejected."""
    members = [i for i, v in enumerate(verdicts) if v.family and v.status != SKIPPED]
    if not members:
        return verdicts
    adjusted = holm([verdicts[i].p_value for i in members])
    sided = [i for i in members if not math.isnan(verdicts[i].p_reproduced)]  # timings and intervals
    against_failing = dict(zip(sided, holm([verdicts[i].p_reproduced for i in sided]).tolist()))
    out = list(verdicts)
    for i, adj in zip(members, adjusted.tolist()):
        v, rep = verdicts[i], against_failing.get(i)
        if adj <= error:
            status = MISSED
        elif rep is not None:
            status = REPRODUCED if rep <= error else INCONCLUSIVE
        else:
            status = INCONCLUSIVE if v.own_status == INCONCLUSIVE else REPRODUCED
        out[i] = replace(v, status=status, adjusted_p=adj,
                         detail=f"{v.detail}; {_holm_words(v, status, adj, rep, len(members), error)}")
    return out


def _holm_words(v: Verdict, status: str, adjusted: float, rep: float | None, m: int, error: float) -> str:
    """``reproduced after Holm over 6 claims at 5% (adjusted p 0.24)``, saying where the family changed the verdict;
    a two-sided claim gives its adjusted p-value against failing too."""
    ps = f"adjusted p {adjusted:.2g}" + ("" if rep is None else f" against the claim, {rep:.2g} against its failing")
    over = f"Holm over {m} claim{'s' * (m > 1)} at {error:.0%} ({ps})"
    if status == v.own_status:
        return over
    return f"{v.own_status} on its own interval; {status} after {over}"


def family_p(verdicts: Iterable[Verdict]) -> float:
    """The family's p-value against "every claim holds": 0 when a gating exact or point check failed, else the
    smallest adjusted p-value of its members (1 when it has none)."""
    p = 1.0
    for v in verdicts:
        if not v.gate:
            continue
        if v.family and not math.isnan(v.adjusted_p):
            p = min(p, v.adjusted_p)
        elif not v.family and v.status == MISSED:
            return 0.0
    return p


def suite_kept(p_values: list[float], error: float = ERROR) -> np.ndarray:
    """Benjamini and Hochberg over the family p-values of a suite's specs on one device: which not-reproduced specs
    the suite keeps at false discovery rate ``error`` (valid for independent or positively dependent specs)."""
    from scipy import stats

    if not p_values:
        return np.zeros(0, dtype=bool)
    return stats.false_discovery_control(np.asarray(p_values, dtype=float), method="bh") <= error
