"""The verdict rule's own error rates: the spec's timing policy run on synthetic rounds with a known truth.

A self-check of the harness, not a result of the book: for every noise model and every true median (on a claim's
bound, and 10% and 25% either side of it) ``harness.calibration`` runs the real sequential rule ``trials`` times
and counts its verdicts. At the bound every decisive verdict is wrong; its rate per side is what a timing
verdict's printed confidence promises to keep.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
from pydantic import Field

from harness import calibration
from harness.schema import Strict

if TYPE_CHECKING:
    from harness.reportkit import RunView
    from harness.tracking import Recorder

KIND = "calibration"
NOISE = Literal["lognormal", "t3", "slow-spells"]


class Settings(Strict):
    noises: list[NOISE] = Field(default=list(calibration.NOISES), min_length=1)
    truths: list[float] = Field(default=[1.0, 1.1, 1 / 1.1, 1.25, 1 / 1.25], min_length=1,
                                description="true median over the claim's bound")
    trials: int = Field(2000, ge=10, le=100_000, description="runs of the rule per (noise, truth)")
    bound: float = Field(3.0, gt=0, description="the claim: ratio at least this")
    round_seconds: float = Field(1.0, gt=0, description="what a round takes on the fake clock (against budget_s)")


TIMINGS: dict[str, str] = {}  # simulated: nothing here is timed
METRICS = {"worst_wrong_at_bound", "worst_wrong_off_bound", "rounds_to_decision_10pct", "rounds_to_decision_25pct",
           "decided_25pct"}


def _off(truth: float, by: float) -> bool:
    return abs(abs(truth - 1) - by) < 1e-9 or abs(abs(1 / truth - 1) - by) < 1e-9


def run(settings: Settings, rec: Recorder) -> dict[str, Any]:
    """Every (noise, truth) condition, ``trials`` runs of the rule each, under the spec's timing policy."""
    policy = rec.plan.policy
    outcomes = [calibration.simulate(calibration.NOISES[name], truth, policy, settings.trials, settings.bound,
                                     seed=rec.seed * 1000 + i, seconds=settings.round_seconds)
                for i, (name, truth) in enumerate((n, t) for n in settings.noises for t in settings.truths)]
    table = calibration.table(outcomes, policy.confidence)
    rec.log_table("calibration", table)
    at_bound = [o for o in outcomes if o.truth == 1]
    off = [o for o in outcomes if o.truth != 1]
    near, far = [o for o in off if _off(o.truth, 0.1)], [o for o in off if _off(o.truth, 0.25)]
    out: dict[str, Any] = {"worst_wrong_at_bound": max((o.worst() for o in at_bound), default=float("nan")),
                           "worst_wrong_off_bound": max((o.worst() for o in off), default=float("nan"))}
    if near:
        out["rounds_to_decision_10pct"] = max(o.rounds_to_decision for o in near)
    if far:
        out["rounds_to_decision_25pct"] = max(o.rounds_to_decision for o in far)
        out["decided_25pct"] = min(1 - o.inconclusive / o.trials for o in far)
    return out


def tables(view: RunView) -> dict[str, pd.DataFrame]:
    """The verdicts' rates per (noise, truth), read back from the first unit."""
    device = view.devices[0]
    return {"calibration": view.table("calibration", device, next(iter(view.measured[device])))}


def section(view: RunView) -> str:
    """The rates table and what it shows."""
    from harness.reportkit import md_table, percent, sig

    df = tables(view)["calibration"]
    policy = view.spec.get("timing", {})
    frac = percent(1)
    shown = md_table(df.drop(columns=["trials"]), fmt={
        "truth / bound": sig(3), "reproduced (fraction)": frac, "not reproduced (fraction)": frac,
        "inconclusive (fraction)": frac, "worst wrong (fraction)": frac, "nominal (fraction)": frac,
        "Monte-Carlo se (fraction)": percent(2), "median rounds to a decision": sig(3)})
    return "\n".join([
        "### The rule on synthetic rounds", "",
        f"{int(df['trials'].iloc[0]):,} runs of the timing rule per row, under this spec's timing policy (first look "
        f"after {policy.get('rounds')} rounds, then one more round at a time up to {policy.get('max_rounds')}), "
        "against the claim `ratio >= bound`, with the true median round at `truth / bound` times the bound. On the "
        "bound (1) both decisive verdicts are wrong; above it, *not reproduced* is; below it, *reproduced*. Each "
        "wrong rate is to be set against its nominal rate (half the error the confidence leaves) give or take its "
        "Monte-Carlo standard error; the last column is what an honest verdict costs in rounds.", "",
        shown, ""])
