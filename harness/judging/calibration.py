"""The sequential rule on synthetic rounds with a known truth: how often each verdict comes out, and when.

Each trial runs the code a spec run uses (``run_rounds`` under a ``Plan``, then ``judge_timing``) with a fake clock on
rounds drawn as ``truth * exp(noise)``, against one gating claim ``ratio >= bound``; ``NOISES`` are the ways real
rounds misbehave. A truth on the bound makes every decisive verdict wrong.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.judging.rounds import Plan, run_rounds
from harness.judging.verdict import INCONCLUSIVE, MISSED, REPRODUCED, judge_timing
from harness.schema import Reference, TimingPolicy

METRIC = "ratio"


@dataclass(frozen=True)
class Noise:
    """Per-round noise on the log scale, drawn by ``draw(rng, n)``, and its median (so the truth can be centred)."""

    name: str
    title: str
    draw: Callable[[np.random.Generator, int], np.ndarray]
    median: float = 0.0


def _spell_median(calm: float, p: float, slow: float) -> float:
    """The median of calm normal noise with, in a fraction ``p`` of rounds, one side ``slow`` times slower."""
    from scipy import optimize, stats

    def cdf(m: float) -> float:
        return (1 - p) * stats.norm.cdf(m / calm) + p * stats.norm.cdf((m - math.log(slow)) / calm) - 0.5

    return float(optimize.brentq(cdf, -1, 1))


NOISES = {
    "lognormal": Noise("lognormal", "log-normal, sd 0.12",
                       lambda rng, n: rng.normal(0.0, 0.12, n)),
    "t3": Noise("t3", "Student t, 3 df, scale 0.08 (heavy tails)",
                lambda rng, n: 0.08 * rng.standard_t(3, n)),
    "slow-spells": Noise("slow-spells", "calm (sd 0.05); one round in ten, one side 1.5x slow",
                         lambda rng, n: rng.normal(0.0, 0.05, n) + math.log(1.5) * (rng.random(n) < 0.1),
                         median=_spell_median(0.05, 0.1, 1.5)),
}


class FakeRounds:
    """A round function and a fake clock: round i returns ``truth * exp(noise[i])`` and takes ``seconds``."""

    def __init__(self, truth: float, noise: np.ndarray, seconds: float = 1.0):
        self.values = truth * np.exp(noise)
        self.seconds, self.now = seconds, 0.0

    def clock(self) -> float:
        return self.now

    def __call__(self, i: int) -> dict[str, float]:
        self.now += self.seconds
        return {METRIC: float(self.values[i])}


@dataclass(frozen=True)
class Outcome:
    """How the trials of one condition ended."""

    noise: str
    truth: float  # true median over the bound (1: on the bound)
    trials: int
    reproduced: int
    missed: int
    inconclusive: int
    rounds_to_decision: float  # median over the decided trials (NaN if none decided)

    def wrong(self) -> dict[str, float]:
        """The rate of each decisive verdict that contradicts the truth: both at the bound, where either means the
        interval missed the true median; one of them either side of it."""
        out = {}
        if self.truth <= 1:
            out[REPRODUCED] = self.reproduced / self.trials
        if self.truth >= 1:
            out[MISSED] = self.missed / self.trials
        return out

    def worst(self) -> float:
        return max(self.wrong().values())

    def standard_error(self, rate: float) -> float:
        """The Monte-Carlo standard error of a rate estimated from ``trials`` trials."""
        return math.sqrt(rate * (1 - rate) / self.trials)


def claim(bound: float) -> Reference:
    return Reference(metric=METRIC, source="simulation", basis="self-check", working="synthetic", at_least=bound)


def simulate(noise: Noise, truth: float, policy: TimingPolicy, trials: int, bound: float = 3.0, seed: int = 0,
             seconds: float = 1.0) -> Outcome:
    """``trials`` runs of the rule with the true median at ``truth * bound``, each with its own noise."""
    ref = claim(bound)
    plan = Plan(device="cpu", refs=(ref,), policy=policy)
    rng = np.random.default_rng(seed)
    counts = {REPRODUCED: 0, MISSED: 0, INCONCLUSIVE: 0}
    decided_at = []
    for _ in range(trials):
        fake = FakeRounds(truth * bound, noise.draw(rng, policy.max_rounds) - noise.median, seconds)
        rounds = run_rounds(fake, plan, clock=fake.clock)
        status = judge_timing(ref, "cpu", {0: rounds.series(METRIC)}, confidence=policy.confidence).status
        counts[status] += 1
        if status != INCONCLUSIVE:
            decided_at.append(len(rounds.values))
    return Outcome(noise.name, truth, trials, counts[REPRODUCED], counts[MISSED], counts[INCONCLUSIVE],
                   float(np.median(decided_at)) if decided_at else math.nan)


def table(outcomes: list[Outcome], confidence: float) -> pd.DataFrame:
    """One row per condition: each verdict's rate, the worst wrong one against its nominal rate, the rounds."""
    nominal = (1 - confidence) / 2
    rows = []
    for o in outcomes:
        rows.append({"noise": o.noise, "truth / bound": o.truth, "trials": o.trials,
                     "reproduced (fraction)": o.reproduced / o.trials,
                     "not reproduced (fraction)": o.missed / o.trials,
                     "inconclusive (fraction)": o.inconclusive / o.trials,
                     "wrong verdict": " and ".join(o.wrong()), "worst wrong (fraction)": o.worst(),
                     "nominal (fraction)": nominal, "Monte-Carlo se (fraction)": o.standard_error(nominal),
                     "median rounds to a decision": o.rounds_to_decision})
    return pd.DataFrame(rows)
