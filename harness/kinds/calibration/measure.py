"""The verdict rules' own error rates: the spec's timing policy run on synthetic rounds with a known truth, and whole
families of claims, and suites of them, judged as a spec run and the report judge them.

A self-check of the harness, not a result of the book: for every noise model and true median the spec lists,
``harness.judging.calibration`` runs the real sequential rule ``trials`` times and counts its verdicts; then families
of printed draws and of timings under Holm, and suites of families under Benjamini and Hochberg.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
from pydantic import Field

from harness.judging import calibration
from harness.judging.significance import POWER
from harness.kinds.base import Metric
from harness.schema import Strict

if TYPE_CHECKING:
    from harness.store.tracking import Recorder

NOISE = Literal["lognormal", "t3", "slow-spells"]
DEPENDENT = Literal["ar1-0.3", "ar1-0.6"]


class Settings(Strict):
    noises: list[NOISE] = Field(default=[n for n, v in calibration.NOISES.items() if v.independent], min_length=1)
    truths: list[float] = Field(default=[1.0, 1.1, 1 / 1.1, 1.25, 1 / 1.25], min_length=1,
                                description="true median over the claim's bound")
    trials: int = Field(2000, ge=10, le=100_000, description="runs of the rule per (noise, truth)")
    dependent_noises: list[DEPENDENT] = Field(default=[n for n, v in calibration.NOISES.items() if not v.independent],
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


def _off(truth: float, by: float) -> bool:
    return abs(abs(truth - 1) - by) < 1e-9 or abs(abs(1 / truth - 1) - by) < 1e-9


def _z(rate: float, target: float, trials: int) -> float:
    """How many Monte-Carlo standard errors (at ``target``) a rate from ``trials`` trials lies above ``target``."""
    return (rate - target) / math.sqrt(target * (1 - target) / trials)


def one_claim(settings: Settings, rec: Recorder) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Every (noise, truth) condition, ``trials`` runs of the rule each, under the spec's timing policy."""
    policy = rec.plan.policy
    conditions = ([(n, t, settings.trials) for n in settings.noises for t in settings.truths]
                  + [(n, 1.0, settings.dependent_trials) for n in settings.dependent_noises])
    outcomes = [calibration.simulate(calibration.NOISES[name], truth, policy, trials, settings.bound,
                                     seed=rec.seed * 1000 + i, seconds=settings.round_seconds)
                for i, (name, truth, trials) in enumerate(conditions)]
    judged = [o for o in outcomes if calibration.NOISES[o.noise].independent]  # the others break its assumption
    at_bound = [o for o in judged if o.truth == 1]
    off = [o for o in judged if o.truth != 1]
    near, far = [o for o in off if _off(o.truth, 0.1)], [o for o in off if _off(o.truth, 0.25)]
    out: dict[str, Any] = {"worst_wrong_at_bound": max((o.worst() for o in at_bound), default=float("nan")),
                           "worst_wrong_off_bound": max((o.worst() for o in off), default=float("nan"))}
    if near:
        out["rounds_to_decision_10pct"] = max(o.rounds_to_decision for o in near)
    if far:
        out["rounds_to_decision_25pct"] = max(o.rounds_to_decision for o in far)
        out["decided_25pct"] = min(1 - o.inconclusive / o.trials for o in far)
    return calibration.table(outcomes, policy.confidence), out


def families(settings: Settings, rec: Recorder) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Families of draws by size, independent and correlated, all true and one shifted; timing families on their
    bound; under the family's error, the spec's default."""
    error, seed = rec.plan.error, rec.seed * 1000 + 500
    outcomes = [calibration.draw_family(size, correlated, shifted, settings.family_trials, settings.family_seeds,
                                        error, settings.correlation, seed=seed + i)
                for i, (size, correlated, shifted) in enumerate(
                    (s, c, h) for s in settings.family_sizes for c in (False, True) for h in (False, True))]
    if settings.timing_family_size:
        outcomes += [calibration.timing_family(settings.timing_family_size, correlated, settings.timing_family_trials,
                                               rec.plan.policy, error, settings.correlation, settings.bound,
                                               seed=seed + 100 + correlated, seconds=settings.round_seconds)
                     for correlated in (False, True)]
    df = calibration.families_table(outcomes, error)
    true = df[df["shift"] == "0"]
    timed, shifted = df[df["claims"] == "timings"], df[df["shift"] != "0"]
    out = {"family_false_miss_z": max(_z(r.false_not_reproduced_fraction, error, r.trials)
                                      for r in true.itertuples())}
    if not timed.empty:
        out["family_false_reproduced_z"] = max(_z(r.false_reproduced_fraction, error, r.trials)
                                               for r in timed.itertuples())
    if not shifted.empty:
        out["family_caught_z"] = min(_z(r.caught_fraction, POWER, r.trials)
                                     for r in shifted.itertuples())
    return df, out


def suites(settings: Settings, rec: Recorder) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Suites of specs (families of six correlated draws), none or some with a real shift, under the suite's error."""
    error, seed = rec.plan.error, rec.seed * 1000 + 900
    rows = [calibration.suite(size, shifted, settings.suite_trials, 6, settings.family_seeds, error,
                              settings.correlation, seed=seed + i)
            for i, (size, shifted) in enumerate((s, h) for s in settings.suite_sizes
                                                for h in (0, min(settings.suite_shifted, s)))]
    df = pd.DataFrame(rows)
    return df, ({"suite_fdr_z": max(_z(r.false_discovery_rate, error, r.trials) for r in df.itertuples())}
                if rows else {})


def run(settings: Settings, rec: Recorder) -> dict[str, Any]:
    """One claim's rule, families of claims, suites of families: each table logged, its worst rates returned."""
    out: dict[str, Any] = {}
    for name, part in (("calibration", one_claim), ("families", families), ("suites", suites)):
        table, found = part(settings, rec)
        rec.log_table(name, table)
        out |= found
    return out
