"""The verdict rules' own error rates: the spec's timing policy run on synthetic rounds with a known truth, and whole
families of claims, and suites of them, judged as a spec run and the report judge them.

A self-check of the harness, not a result of the book: for every noise model and true median the spec lists,
``harness.judging.calibration`` runs the real sequential rule ``trials`` times and counts its verdicts; then families
of printed draws and of timings under Holm, and suites of families under Benjamini and Hochberg.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import pandas as pd

from harness.judging import calibration
from harness.judging.significance import POWER
from harness.kinds.calibration.settings import Settings

if TYPE_CHECKING:
    from harness.store.tracking import Recorder

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
