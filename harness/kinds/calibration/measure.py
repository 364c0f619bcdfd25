"""The verdict rule's own error rates: the spec's timing policy run on synthetic rounds with a known truth.

A self-check of the harness, not a result of the book: for every noise model and true median the spec lists,
``harness.judging.calibration`` runs the real sequential rule ``trials`` times and counts its verdicts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from harness.judging import calibration
from harness.kinds.base import Metric
from harness.schema import Strict

if TYPE_CHECKING:
    from harness.store.tracking import Recorder

NOISE = Literal["lognormal", "t3", "slow-spells"]


class Settings(Strict):
    noises: list[NOISE] = Field(default=list(calibration.NOISES), min_length=1)
    truths: list[float] = Field(default=[1.0, 1.1, 1 / 1.1, 1.25, 1 / 1.25], min_length=1,
                                description="true median over the claim's bound")
    trials: int = Field(2000, ge=10, le=100_000, description="runs of the rule per (noise, truth)")
    bound: float = Field(3.0, gt=0, description="the claim: ratio at least this")
    round_seconds: float = Field(1.0, gt=0, description="what a round takes on the fake clock (against budget_s)")


METRICS: tuple[Metric, ...] = (
    Metric("worst_wrong_at_bound", "fraction", "lower",
           "the highest rate of either wrong verdict with the true median on the bound, over the noises"),
    Metric("worst_wrong_off_bound", "fraction", "lower",
           "the highest rate of the wrong verdict with the true median off the bound, over noises and truths"),
    Metric("rounds_to_decision_10pct", "", "lower",
           "the largest median rounds to a decision with the true median 10% from the bound, over the noises"),
    Metric("rounds_to_decision_25pct", "", "lower",
           "the largest median rounds to a decision with the true median 25% from the bound, over the noises"),
    Metric("decided_25pct", "fraction", "higher",
           "the lowest rate of decided (not inconclusive) runs with the true median 25% from the bound"),
)


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
