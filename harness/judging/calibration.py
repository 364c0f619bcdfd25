"""The verdict rules on synthetic data with a known truth: how often each verdict comes out, and when.

One claim: each trial runs the code a spec run uses (``run_rounds`` under a ``Plan``, then ``judge_timing``) with a
fake clock on rounds drawn as ``truth * exp(noise)``, against one gating claim ``ratio >= bound``; ``NOISES`` are the
ways real rounds misbehave (the AR(1) ones break the rule's assumption of independent rounds, shown for information).
A truth on the bound makes every decisive verdict wrong.

A family (``simulate_family``): a spec's claims judged together by Holm, printed draws against seeds or timings
against their bound, independent or correlated as the loss and accuracies of one run are; all true, or one shifted by
its detectable shift. A suite (``simulate_suite``): specs of such families, the not-reproduced ones kept by
Benjamini and Hochberg. Both run the p-value, Holm and suite functions a spec run calls, on many trials at once.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from harness.judging import family, significance
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
    independent: bool = True  # the rule's assumption: rounds independent of each other


def _spell_median(calm: float, p: float, slow: float) -> float:
    """The median of calm normal noise with, in a fraction ``p`` of rounds, one side ``slow`` times slower."""
    from scipy import optimize, stats

    def cdf(m: float) -> float:
        return (1 - p) * stats.norm.cdf(m / calm) + p * stats.norm.cdf((m - math.log(slow)) / calm) - 0.5

    return float(optimize.brentq(cdf, -1, 1))


def _ar1(phi: float, sd: float) -> Callable[[np.random.Generator, int], np.ndarray]:
    """AR(1) noise, stationary from the first round with sd ``sd``: each round keeps ``phi`` of the last one's."""
    from scipy import signal

    def draw(rng: np.random.Generator, n: int) -> np.ndarray:
        shocks = rng.normal(0.0, sd * math.sqrt(1 - phi ** 2), n)
        shocks[0] = rng.normal(0.0, sd)
        return signal.lfilter([1.0], [1.0, -phi], shocks)

    return draw


NOISES = {
    "lognormal": Noise("lognormal", "log-normal, sd 0.12",
                       lambda rng, n: rng.normal(0.0, 0.12, n)),
    "t3": Noise("t3", "Student t, 3 df, scale 0.08 (heavy tails)",
                lambda rng, n: 0.08 * rng.standard_t(3, n)),
    "slow-spells": Noise("slow-spells", "calm (sd 0.05); one round in ten, one side 1.5x slow",
                         lambda rng, n: rng.normal(0.0, 0.05, n) + math.log(1.5) * (rng.random(n) < 0.1),
                         median=_spell_median(0.05, 0.1, 1.5)),
    "ar1-0.3": Noise("ar1-0.3", "log-normal, sd 0.12, AR(1) phi 0.3 (rounds not independent)",
                     _ar1(0.3, 0.12), independent=False),
    "ar1-0.6": Noise("ar1-0.6", "log-normal, sd 0.12, AR(1) phi 0.6 (rounds not independent)",
                     _ar1(0.6, 0.12), independent=False),
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
        status = judge_timing(ref, "cpu", {0: rounds.series(METRIC)}, confidence=policy.confidence,
                              diagnostics=False).status
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
        rows.append({"noise": o.noise, "independent rounds": NOISES[o.noise].independent,
                     "truth / bound": o.truth, "trials": o.trials,
                     "reproduced (fraction)": o.reproduced / o.trials,
                     "not reproduced (fraction)": o.missed / o.trials,
                     "inconclusive (fraction)": o.inconclusive / o.trials,
                     "wrong verdict": " and ".join(o.wrong()), "worst wrong (fraction)": o.worst(),
                     "nominal (fraction)": nominal, "Monte-Carlo se (fraction)": o.standard_error(nominal),
                     "median rounds to a decision": o.rounds_to_decision})
    return pd.DataFrame(rows)


def _normals(rng: np.random.Generator, shape: tuple[int, int, int], rho: float) -> np.ndarray:
    """Standard normals (trials, claims, columns), correlated ``rho`` within each block of three claims (a run's
    loss, train and test accuracy), independent across blocks, columns and trials."""
    trials, claims, columns = shape
    blocks = rng.standard_normal((trials, -(-claims // 3), columns)).repeat(3, axis=1)[:, :claims]
    return math.sqrt(rho) * blocks + math.sqrt(1 - rho) * rng.standard_normal(shape)


@dataclass(frozen=True)
class FamilyOutcome:
    """How the trials of one family ended: the spec's verdict, and the rows' wrong verdicts."""

    claims: str  # "draws" or "timings"
    family_size: int
    dependence: str  # "independent" or "correlated"
    shift: str  # "0" (every claim true; timings: on the bound) or "detectable" (one claim shifted by its own)
    trials: int
    spec_not_reproduced: int
    spec_reproduced: int
    false_not_reproduced: int  # trials where a claim that holds was called not reproduced
    false_reproduced: int  # trials where a claim that fails was called reproduced (timings on the bound)
    caught: int  # trials where the shifted claim was called not reproduced


def draw_family(size: int, correlated: bool, shifted: bool, trials: int, seeds: int, error: float, rho: float,
                seed: int = 0) -> FamilyOutcome:
    """``size`` printed draws, each against ``seeds`` seeds of its own metric; with ``shifted``, the book's mean of the
    first claim lies its detectable shift (at error / size, the seeds' sd 1) from the seeds'."""
    rng = np.random.default_rng(seed)
    values = _normals(rng, (trials, size, seeds + 1), rho if correlated else 0.0)
    if shifted:
        values[:, 0, -1] += significance.draw_shift(seeds, 1.0, error / size)
    missed = family.holm(significance.draw_p(values[..., :-1], values[..., -1:])) <= error
    true_missed = missed[:, 1:] if shifted else missed
    return FamilyOutcome("draws", size, "correlated" if correlated else "independent",
                         "detectable" if shifted else "0", trials, int(missed.any(-1).sum()),
                         int((~missed.any(-1)).sum()), int(true_missed.any(-1).sum()), 0,
                         int(missed[:, 0].sum()) if shifted else 0)


class FakeFamilyRounds(FakeRounds):
    """Rounds of several ratios at once (one round measures every variant): ``noise`` has a row per ratio."""

    def __call__(self, i: int) -> dict[str, float]:
        self.now += self.seconds
        return {f"{METRIC}{j}": float(v) for j, v in enumerate(self.values[:, i])}


def timing_family(size: int, correlated: bool, trials: int, policy: TimingPolicy, error: float, rho: float,
                  bound: float = 3.0, seed: int = 0, seconds: float = 1.0) -> FamilyOutcome:
    """``size`` timing claims ``ratio_j >= bound``, every true median on its bound (where either decisive verdict is
    wrong), under the sequential rule with the family's Holm levels; log-normal rounds (sd 0.12)."""
    refs = tuple(claim(bound).model_copy(update={"metric": f"{METRIC}{j}"}) for j in range(size))
    plan = Plan(device="cpu", refs=refs, policy=policy, family=size, two_sided=size, error=error)
    rng = np.random.default_rng(seed)
    missed_any = reproduced_all = reproduced_any = 0
    for _ in range(trials):
        noise = 0.12 * _normals(rng, (1, size, policy.max_rounds), rho if correlated else 0.0)[0]
        fake = FakeFamilyRounds(bound, noise, seconds)
        rounds = run_rounds(fake, plan, clock=fake.clock)
        p = plan.pvalues(rounds.series)
        missed, reproduced = family.holm(p[:, 0]) <= error, family.holm(p[:, 1]) <= error
        missed_any += bool(missed.any())
        reproduced_any += bool((reproduced & ~missed).any())
        reproduced_all += bool((reproduced & ~missed).all())
    return FamilyOutcome("timings", size, "correlated" if correlated else "independent", "0", trials, missed_any,
                         reproduced_all, missed_any, reproduced_any, 0)


def families_table(outcomes: list[FamilyOutcome], error: float) -> pd.DataFrame:
    """One row per family: the spec's verdicts and the rows' wrong ones, against the family's error."""
    rows = []
    for o in outcomes:
        rows.append({"claims": o.claims, "family_size": o.family_size, "dependence": o.dependence, "shift": o.shift,
                     "trials": o.trials, "spec_not_reproduced_fraction": o.spec_not_reproduced / o.trials,
                     "spec_reproduced_fraction": o.spec_reproduced / o.trials,
                     "false_not_reproduced_fraction": o.false_not_reproduced / o.trials,
                     "false_reproduced_fraction": o.false_reproduced / o.trials if o.claims == "timings" else math.nan,
                     "caught_fraction": o.caught / o.trials if o.shift != "0" else math.nan,
                     "family_error_fraction": error,
                     "monte_carlo_se_fraction": math.sqrt(error * (1 - error) / o.trials)})
    return pd.DataFrame(rows)


def suite(size: int, shifted: int, trials: int, claims: int, seeds: int, error: float, rho: float,
          seed: int = 0) -> dict[str, float]:
    """``size`` specs, each a family of ``claims`` correlated draws; in ``shifted`` of them one claim lies its
    detectable shift off. Each spec's family p-value (``family.family_p``'s rule: the smallest Holm-adjusted p) goes
    through Benjamini and Hochberg at ``error``: the false discovery rate among the specs kept, against the chance
    that some true spec is not reproduced at its own family level (what the suite would show without the step)."""
    rng = np.random.default_rng(seed)
    values = _normals(rng, (trials * size, claims, seeds + 1), rho).reshape(trials, size, claims, seeds + 1)
    values[:, :shifted, 0, -1] += significance.draw_shift(seeds, 1.0, error / claims)
    spec_p = family.holm(significance.draw_p(values[..., :-1], values[..., -1:])).min(axis=-1)
    kept = np.array([family.suite_kept(list(row), error) for row in spec_p])
    false = kept[:, shifted:].sum(axis=1)
    return {"suite_size": size, "shifted_specs": shifted, "trials": trials, "claims_per_spec": claims,
            "false_discovery_rate": float(np.mean(false / np.maximum(kept.sum(axis=1), 1))),
            "some_true_spec_not_reproduced_fraction": float(np.mean((spec_p[:, shifted:] <= error).any(axis=1))),
            "shifted_specs_kept_fraction": float(kept[:, :shifted].mean()) if shifted else math.nan,
            "suite_error_fraction": error, "monte_carlo_se_fraction": math.sqrt(error * (1 - error) / trials)}
