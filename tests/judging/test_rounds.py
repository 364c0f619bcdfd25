"""The sequential rule, driven by a seeded synthetic timer and a fake clock: no real timing anywhere.

A claim far inside the interval is reproduced and one far outside is not, both at the first look; a claim the
rounds straddle buys extra rounds until the budget is spent and stays inconclusive.
"""

from __future__ import annotations

import numpy as np
import pytest

from harness.judging.rounds import Plan, recorded_rounds, run_rounds
from harness.judging.verdict import INCONCLUSIVE, MISSED, REPRODUCED, judge_timing
from harness.machine import device as devices
from harness.machine.device import FakeCuda
from harness.schema import Reference, TimingPolicy

SRC = "C1"


def claim(**kw) -> Reference:
    return Reference.model_validate({"metric": "speedup", "source": SRC, "basis": "chosen before measuring", **kw})


class SyntheticTimer:
    """Rounds of a ratio drawn around ``center`` (log-normal, seeded); each round "takes" ``seconds`` on a fake clock.

    With ``paired``, noise comes in +e/-e pairs, so the median of every even number of rounds is exactly
    ``center``: a claim at ``center`` is straddled however many rounds are bought. ``script`` gives the values.
    """

    def __init__(self, center: float = 1.0, sigma: float = 0.15, seed: int = 0, seconds: float = 1.0,
                 paired: bool = False, script: list[float] | None = None):
        self.center, self.sigma, self.seconds, self.paired, self.script = center, sigma, seconds, paired, script
        self.rng = np.random.default_rng(seed)
        self.now = 0.0
        self.last = 0.0

    def clock(self) -> float:
        return self.now

    def __call__(self, i: int) -> dict[str, float]:
        self.now += self.seconds
        if self.script is not None:
            return {"speedup": self.script[i]}
        if self.paired and i % 2:
            e = -self.last
        else:
            e = self.last = float(self.rng.normal(0, self.sigma))
        return {"speedup": self.center * float(np.exp(e))}


def run(timer: SyntheticTimer, ref: Reference, policy: TimingPolicy, device="cpu"):
    rounds = run_rounds(timer, Plan(device=device, refs=(ref,), policy=policy), clock=timer.clock)
    return rounds, judge_timing(ref, device, {0: rounds.series("speedup")}, unit="x")


POLICY = TimingPolicy(rounds=8, max_rounds=100, budget_s=10)


def test_claim_far_inside_the_interval_is_reproduced_at_the_first_look():
    rounds, verdict = run(SyntheticTimer(center=10.0), claim(at_least=3), POLICY)
    assert verdict.status == REPRODUCED and verdict.low >= 3
    assert len(rounds.values) == 8 and rounds.extra == 0 and rounds.stop == "every gating claim decided"


def test_claim_far_outside_the_interval_is_not_reproduced_at_the_first_look():
    rounds, verdict = run(SyntheticTimer(center=1.0), claim(at_least=3), POLICY)
    assert verdict.status == MISSED and verdict.high < 3 and "whole interval outside" in verdict.detail
    assert len(rounds.values) == 8 and rounds.extra == 0


def test_straddled_claim_buys_rounds_up_to_the_budget_and_stays_inconclusive():
    rounds, verdict = run(SyntheticTimer(center=3.0, paired=True, seconds=1.0), claim(at_least=3), POLICY)
    assert verdict.status == INCONCLUSIVE and verdict.low < 3 < verdict.high
    # 8 first rounds, then 1 s rounds while the next one fits in the 10 s budget for extra rounds
    assert rounds.extra == 10 and len(rounds.values) == 18 and verdict.rounds == 18
    assert "budget" in rounds.stop and "95% CI" in verdict.measured and "18 rounds" in verdict.measured


def test_max_rounds_caps_the_extra_rounds():
    policy = TimingPolicy(rounds=8, max_rounds=11, budget_s=86_400)
    rounds, verdict = run(SyntheticTimer(center=3.0, paired=True), claim(at_least=3), policy)
    assert len(rounds.values) == 11 and verdict.status == INCONCLUSIVE and "max_rounds" in rounds.stop


def test_an_undecided_claim_that_turns_decisive_stops_the_rounds():
    """One slow first round puts the bound inside the first interval; steady extra rounds lift it above."""
    script = [2.5, 6.0] + [4.0, 3.9, 4.1] * 20
    rounds, verdict = run(SyntheticTimer(script=script), claim(at_least=3), TimingPolicy(rounds=8, max_rounds=60))
    assert judge_timing(claim(at_least=3), "cpu", {0: script[:8]}).status == INCONCLUSIVE  # the first look
    assert verdict.status == REPRODUCED and rounds.stop == "every gating claim decided"
    assert 0 < rounds.extra < 52 and len(rounds.values) == 8 + rounds.extra


@pytest.mark.parametrize("ref", [claim(at_least=3, gate=False), claim(at_least=3, gate=["cuda"])])
def test_claims_that_do_not_gate_here_buy_no_rounds(ref):
    rounds, verdict = run(SyntheticTimer(center=3.0, paired=True), ref, POLICY)
    assert len(rounds.values) == 8 and rounds.stop == "no gating timing claim on this device"
    assert verdict.status == INCONCLUSIVE and not verdict.gate


def test_every_round_is_handed_to_the_recorder():
    seen = []
    timer = SyntheticTimer(center=10.0)
    run_rounds(timer, Plan(refs=(claim(at_least=3),), policy=POLICY), clock=timer.clock,
               on_round=lambda n, v: seen.append((n, v["speedup"])))
    assert [n for n, _ in seen] == [1, 2, 3, 4, 5, 6, 7, 8]


def test_a_recorder_without_a_plan_measures_the_default_rounds_and_no_more(memory_recorder):
    rec = memory_recorder(device="cuda")
    timer = SyntheticTimer(center=2.0)
    with devices.use(FakeCuda()) as fake:  # the rounds read the device's clock: a stand-in for CUDA here
        rounds = recorded_rounds(rec, timer)
    assert fake.calls.count("clock") == 2 * len(rounds.values)
    assert rec.plan == Plan(device="cuda")
    assert len(rounds.values) == TimingPolicy().rounds and rounds.stop == "no gating timing claim on this device"
    assert [n for n, _ in rec.rounds] == list(range(1, TimingPolicy().rounds + 1)) and "rounds" in rec.tables


def test_measured_gives_the_median_round_every_round_and_how_the_rounds_went():
    script = [3.0, 1.0, 2.0, 5.0, 4.0, 6.0, 8.0, 7.0]
    timer = SyntheticTimer(script=script, seconds=0.5)
    rounds = run_rounds(timer, Plan(policy=POLICY), clock=timer.clock)
    rounds.values[-1]["partial"] = 1.0  # a metric some rounds lack: no estimate
    out = rounds.measured({"speedup", "partial"})
    assert out["speedup"] == 4.5 and out["rounds"]["speedup"] == script
    assert np.isnan(out["partial"]) and out["rounds"]["partial"][-1] == 1.0 and np.isnan(out["rounds"]["partial"][0])
    assert out["rounds_info"] == {"rounds": 8, "first": 8, "extra": 0, "seconds": 4.0,
                                  "stop": "no gating timing claim on this device", "alone": 0, "alone_seconds": None}
