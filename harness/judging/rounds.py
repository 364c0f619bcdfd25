"""Timings in rounds, and the sequential rule: more rounds while a gating timing claim is undecided.

A kind calls ``run_rounds`` with a function that measures one round (every variant once, interleaved) and returns
its values. After the first ``rounds`` rounds each gating timing reference is judged on its interval, at the level
its spec's family gives it (Holm over the family, ``harness.judging.family``, the spec's other claims taken to
hold); while one is inconclusive another round is bought, until all are decided, ``max_rounds`` is reached or
``budget_s`` would be passed. The interval holds at every round at once, so stopping at the first decisive look
keeps its error rate. The round at which each claim's own interval alone would have stopped is kept too: what the
family's adjustment cost.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import pandas as pd

from harness.judging import significance
from harness.judging.family import ERROR, holm
from harness.judging.stats import median
from harness.judging.verdict import claim_range
from harness.schema import Reference, TimingPolicy

RoundFn = Callable[[int], dict[str, float]]


class RoundsRecorder(Protocol):
    """What ``recorded_rounds`` needs of a recorder (``harness.store.tracking.Recorder`` is one)."""

    device: str
    plan: Plan

    def log_round(self, number: int, values: dict[str, float]) -> None: ...

    def log_table(self, name: str, df: pd.DataFrame) -> None: ...


@dataclass(frozen=True)
class Plan:
    """The timing references of one spec on one device, the policy for its rounds, and the family they are judged
    in: its size, how many of its claims are two-sided, and its error."""

    device: str = "cpu"
    refs: tuple[Reference, ...] = ()
    policy: TimingPolicy = field(default_factory=TimingPolicy)
    family: int = 1
    two_sided: int = 1
    error: float = ERROR

    @property
    def judged(self) -> bool:
        """Does any reference (gating or not) look at a timing here? Then rounds are worth measuring."""
        return bool(self.refs)

    @property
    def claims(self) -> tuple[Reference, ...]:
        """The references that buy extra rounds: those that gate on this device."""
        return tuple(r for r in self.refs if r.gates_on(self.device))

    def pvalues(self, series: Callable[[str], list[float]]) -> np.ndarray:
        """Each gating claim's p-values on its rounds so far: against the claim holding, and against it failing."""
        return np.array([significance.rounds_p(series(r.metric), *claim_range(r)) for r in self.claims]).reshape(-1, 2)

    def undecided(self, series: Callable[[str], list[float]], alone: bool = False,
                  p: np.ndarray | None = None) -> list[Reference]:
        """The gating claims still inconclusive: neither Holm-adjusted p-value (the spec's other claims taken to hold,
        p = 1) is at most the family's error; ``alone``: on each claim's own interval, at 1 - confidence. ``p``: the
        claims' ``pvalues``, where they are at hand."""
        claims, p = self.claims, self.pvalues(series) if p is None else p
        if alone:
            error, miss, rep = 1 - self.policy.confidence, p[:, 0], p[:, 1]
        else:
            error = self.error
            miss, rep = holm(p[:, 0], self.family), holm(p[:, 1], self.two_sided)
        return [r for r, a, b in zip(claims, miss, rep) if a > error and b > error]


@dataclass
class Rounds:
    """The values of every round (raw timings and the metrics derived from them), and why rounds stopped."""

    values: list[dict[str, float]] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    first: int = 0
    stop: str = ""
    alone: int = 0  # the look at which every claim's own interval had decided (0: none did)

    def series(self, name: str) -> list[float]:
        return [float(v.get(name, math.nan)) for v in self.values]

    @property
    def extra(self) -> int:
        return max(0, len(self.values) - self.first)

    def table(self) -> pd.DataFrame:
        return pd.DataFrame([{"round": i + 1, "seconds": s, **v}
                             for i, (v, s) in enumerate(zip(self.values, self.seconds))])

    def measured(self, metrics: list[str] | set[str]) -> dict[str, Any]:
        """Point estimates (median rounds) of ``metrics``, their rounds, and how the rounds went."""
        out: dict[str, Any] = {m: median(self.series(m)) for m in sorted(metrics)}
        out["rounds"] = {m: self.series(m) for m in sorted(metrics)}
        out["rounds_info"] = {"rounds": len(self.values), "first": self.first, "extra": self.extra,
                              "stop": self.stop, "seconds": sum(self.seconds), "alone": self.alone,
                              "alone_seconds": sum(self.seconds[:self.alone]) if self.alone else None}
        return out


def run_rounds(one_round: RoundFn, plan: Plan, first: int | None = None,
               on_round: Callable[[int, dict[str, float]], None] | None = None,
               clock: Callable[[], float] = time.perf_counter, done: Rounds | None = None) -> Rounds:
    """Measure ``first`` rounds (default: the policy's), then more while a gating claim is inconclusive.

    ``one_round(i)`` measures round ``i`` (0-based) and returns its values by name. Extra rounds stop when
    every gating claim is decided, at ``max_rounds``, or when one more round (at the mean round's length so far)
    would take the extra rounds past ``budget_s``. ``on_round(number, values)`` records each round as it ends.
    ``done`` carries on from rounds measured elsewhere (a benchmark's own rounds).
    """
    policy = plan.policy
    out = done or Rounds()
    out.first = policy.rounds if first is None else first
    while True:
        n = len(out.values)
        if n >= out.first:
            if not plan.claims:
                out.stop = "no gating timing claim on this device"
                break
            p = plan.pvalues(out.series)
            if not out.alone and not plan.undecided(out.series, alone=True, p=p):
                out.alone = n
            if not plan.undecided(out.series, p=p):
                out.stop = "every gating claim decided"
                break
            if n >= max(policy.max_rounds, out.first):
                out.stop = f"still inconclusive at max_rounds ({policy.max_rounds})"
                break
            extra_s = sum(out.seconds[out.first:])
            if extra_s + sum(out.seconds) / max(n, 1) > policy.budget_s:
                out.stop = f"still inconclusive: the budget of {policy.budget_s:g} s for extra rounds is spent"
                break
        t0 = clock()
        values = one_round(n)
        out.seconds.append(clock() - t0)
        out.values.append(values)
        if on_round is not None:
            on_round(n + 1, values)
    return out


def recorded_rounds(rec: RoundsRecorder, one_round: RoundFn, first: int | None = None) -> Rounds:
    """``run_rounds`` under the recorder's plan, each round logged as it ends and the rounds kept as a table."""
    from harness.machine import device as devices  # torch: only where rounds are run, not where they are read

    out = run_rounds(one_round, rec.plan, first, on_round=rec.log_round, clock=devices.get(rec.device).clock)
    rec.log_table("rounds", out.table())
    return out
