"""The calibration kind's settings and metric table.

Without torch: validating a spec reads this, not the simulations (``measure``).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from harness.kinds.base import Metric
from harness.schema import Strict

INDEPENDENT = ("lognormal", "t3", "slow-spells")  # harness.judging.calibration.NOISES: the rule's assumption holds
DEPENDENT = ("ar1-0.3", "ar1-0.6")  # and breaks

NOISE = Literal["lognormal", "t3", "slow-spells"]
AR1 = Literal["ar1-0.3", "ar1-0.6"]


class Settings(Strict):
    noises: list[NOISE] = Field(default=list(INDEPENDENT), min_length=1)
    truths: list[float] = Field(default=[1.0, 1.1, 1 / 1.1, 1.25, 1 / 1.25], min_length=1,
                                description="true median over the claim's bound")
    trials: int = Field(2000, ge=10, le=100_000, description="runs of the rule per (noise, truth)")
    dependent_noises: list[AR1] = Field(default=list(DEPENDENT),
                                              description="noises whose rounds are not independent, for information: "
                                              "on the bound only, where they make the rule wrong")
    dependent_trials: int = Field(1000, ge=10, le=100_000)
    bound: float = Field(3.0, gt=0, description="the claim: ratio at least this")
    round_seconds: float = Field(1.0, gt=0, description="what a round takes on the fake clock (against budget_s)")
    family_sizes: list[int] = Field(default=[1, 6, 18, 54], description="families of printed draws, by size")
    family_seeds: int = Field(3, ge=2, le=100, description="seeds each draw is judged against")
    family_trials: int = Field(2000, ge=10, le=100_000, description="trials per family of draws")
    correlation: float = Field(0.8, ge=0, lt=1, description="between the claims of one run (loss, train and test "
                               "accuracy), in the correlated families")
    timing_family_size: int = Field(6, ge=0, le=50, description="a family of timing claims on their bound (0: none)")
    timing_family_trials: int = Field(200, ge=10, le=100_000)
    suite_sizes: list[int] = Field(default=[16, 45], description="suites of specs, each a family of six draws")
    suite_shifted: int = Field(4, ge=0, description="specs with a claim off by its detectable shift, in one run of "
                               "each suite size (the other has none)")
    suite_trials: int = Field(1000, ge=10, le=100_000)


METRICS: tuple[Metric, ...] = (
    Metric("worst_wrong_at_bound", "fraction", "lower",
           "the highest rate of either wrong verdict with the true median on the bound, over the independent noises"),
    Metric("worst_wrong_off_bound", "fraction", "lower",
           "the highest rate of the wrong verdict with the true median off the bound, over independent noises and "
           "truths"),
    Metric("rounds_to_decision_10pct", "", "lower",
           "the largest median rounds to a decision with the true median 10% from the bound, over the noises"),
    Metric("rounds_to_decision_25pct", "", "lower",
           "the largest median rounds to a decision with the true median 25% from the bound, over the noises"),
    Metric("decided_25pct", "fraction", "higher",
           "the lowest rate of decided (not inconclusive) runs with the true median 25% from the bound"),
    Metric("family_false_miss_z", "", "lower",
           "over the families whose claims all hold: the largest rate of 'some claim called not reproduced', in "
           "Monte-Carlo standard errors above the family's error"),
    Metric("family_false_reproduced_z", "", "lower",
           "over the timing families on their bound: the largest rate of 'some claim called reproduced', in "
           "Monte-Carlo standard errors above the family's error"),
    Metric("family_caught_z", "", "higher",
           "over the families with one claim off by its detectable shift: the lowest rate at which it is called not "
           "reproduced, in Monte-Carlo standard errors from the 80% the shift is defined by"),
    Metric("suite_fdr_z", "", "lower",
           "over the suites: the largest false discovery rate among the specs kept as not reproduced, in Monte-Carlo "
           "standard errors above the suite's error"),
)
