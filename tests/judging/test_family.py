"""A spec's claims judged as a family (Holm) and a suite's specs (Benjamini and Hochberg): the arithmetic by hand, the
statuses a row shows, and the sequential rule under the family's levels."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from harness.judging import family
from harness.judging.rounds import Plan, run_rounds
from harness.judging.verdict import INCONCLUSIVE, MISSED, REPRODUCED, Verdict, judge_draws
from harness.schema import Reference, TimingPolicy
from tests.judging.test_rounds import SyntheticTimer, claim


def ref(**kw) -> Reference:
    return Reference.model_validate({"metric": "m", "source": "C2", "basis": "chosen before measuring", **kw})


def verdict(p: float, p_rep: float = math.nan, status: str = REPRODUCED, size: int = 1, gate: bool = True) -> Verdict:
    return Verdict(ref="C2", metric="m", device="cpu", expected="", measured="", tolerance="", status=status,
                   own_status=status, detail="own", gate=gate, p_value=p, p_reproduced=p_rep, family=size)


def test_holm_by_hand():
    """Sorted 0.01, 0.03, 0.04, 0.5 times 4, 3, 2, 1: 0.04, 0.09, 0.08, 0.5, made non-decreasing."""
    assert family.holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert family.holm([0.02, math.nan]) == pytest.approx([0.04, 1.0])  # an undefined p counts as 1
    assert family.holm([0.02], size=3) == pytest.approx([0.06])  # two more claims, each p = 1
    np.testing.assert_allclose(family.holm([[0.01, 0.04], [0.5, 0.3]]), [[0.02, 0.04], [0.6, 0.6]])  # trials, rows


def test_the_one_family_path_agrees_with_the_array_path():
    rng = np.random.default_rng(0)
    for _ in range(500):
        m = int(rng.integers(1, 9))
        p, size = rng.random(m) * rng.choice([1, 0.1]), m + int(rng.integers(0, 4))
        padded = np.pad(p, (0, size - m), constant_values=1.0)[None, :]
        assert family.holm(p, size) == pytest.approx(family.holm(padded)[0, :m])


def test_a_chance_miss_among_six_draws_stands_reproduced_after_holm():
    """The bn-lenet-concise case: one printed draw outside its own 95% interval (p 0.04) among six."""
    draws = [verdict(0.04, status=MISSED, size=6)] + [verdict(p, size=6) for p in (0.3, 0.5, 0.6, 0.7, 0.9)]
    out = family.adjust(draws)
    assert [v.status for v in out] == [REPRODUCED] * 6
    assert out[0].own_status == MISSED and out[0].adjusted_p == pytest.approx(0.24)
    assert out[0].detail == ("own; not reproduced on its own interval; reproduced after Holm over 6 claims at 5% "
                             "(adjusted p 0.24)")
    assert out[1].detail == "own; Holm over 6 claims at 5% (adjusted p 1)"


def test_a_real_miss_survives_the_family():
    out = family.adjust([verdict(0.001, status=MISSED, size=6)] + [verdict(0.5, size=6)] * 5)
    assert out[0].status == MISSED and out[0].adjusted_p == pytest.approx(0.006)


def test_a_timing_decided_alone_is_inconclusive_in_a_family_of_two():
    """Eight rounds all above the bound: p against failing 18/511 = 0.035, decided alone; in a family of two
    two-sided claims Holm gives 0.070 > 5%: inconclusive, the rule's cue to buy another round. Once the other claim
    is decided (0.001 x 2), the step down judges this one at 5% again."""
    timing = verdict(1.0, 18 / 511, size=2)
    assert family.adjust([replace(timing, family=1)])[0].status == REPRODUCED
    out = family.adjust([timing, verdict(1.0, 0.5, size=2)])
    assert [v.status for v in out] == [INCONCLUSIVE, INCONCLUSIVE] and out[0].own_status == REPRODUCED
    assert [v.status for v in family.adjust([timing, verdict(1.0, 0.001, size=2)])] == [REPRODUCED, REPRODUCED]


def test_exact_checks_and_info_rows_stay_as_judged():
    exact = verdict(math.nan, status=MISSED, size=0)
    info = verdict(0.001, status=MISSED, size=0, gate=False)
    out = family.adjust([exact, info, verdict(0.5, size=1)])
    assert out[:2] == [exact, info]


def test_family_p_and_the_suites_step_by_hand():
    members = family.adjust([verdict(0.01, size=3), verdict(0.3, size=3), verdict(0.5, size=3)])
    assert family.family_p(members) == pytest.approx(0.03)
    assert family.family_p(members + [verdict(math.nan, status=MISSED, size=0)]) == 0.0  # a failed exact check
    assert family.family_p([verdict(math.nan, size=0)]) == 1.0  # nothing could fail by chance
    # BH at 5%: sorted 0.001, 0.02, 0.04, 0.5 against 0.0125, 0.025, 0.0375, 0.05
    assert list(family.suite_kept([0.04, 0.001, 0.5, 0.02])) == [False, True, False, True]


def test_sizes_count_members_and_pools():
    refs = [ref(draw=0.78), ref(draw=0.81), ref(metric="loss", draw=0.4), ref(metric="loss", draw=0.5, gate=False),
            ref(metric="acc", at_least=0.7), ref(metric="speed", at_least=3), ref(metric="mu", band=[0, 1],
                                                                                   over="interval")]
    assert [len(g) for g in family.pools(refs, "cpu")] == [2]  # m's two gating draws; loss has one that gates
    assert family.sizes(refs, "cpu", {"speed"}) == (3 + 1 + 1 + 1, 2)  # draws, pool, timing, interval; 2 two-sided


def test_pooled_draws_are_sharper_than_either():
    seeds = [0.80, 0.81, 0.79, 0.805, 0.795]
    one = [judge_draws([ref(draw=d)], "cpu", seeds) for d in (0.775, 0.776)]
    both = judge_draws([ref(draw=0.775), ref(draw=0.776)], "cpu", seeds)
    assert both.p_value < min(v.p_value for v in one)
    assert both.detectable_shift < min(v.detectable_shift for v in one)
    assert both.expected.startswith("0.7755 (mean of 2 printed draws") and both.ref == "C2"


def test_the_rule_buys_rounds_until_the_family_decides():
    """Rounds far above the bound: alone the claim is decided at the first look (8 rounds); in a family of 4 it needs
    2/M(n) <= 5%/4, reached at 10 rounds; the rounds record both."""
    policy = TimingPolicy(rounds=8, max_rounds=40, budget_s=100)
    timer = SyntheticTimer(center=10.0, sigma=0.05, seed=1)
    alone = run_rounds(timer, Plan(refs=(claim(at_least=3),), policy=policy), clock=timer.clock)
    assert len(alone.values) == 8 and alone.alone == 8
    timer = SyntheticTimer(center=10.0, sigma=0.05, seed=1)
    plan = Plan(refs=(claim(at_least=3),), policy=policy, family=4, two_sided=4)
    four = run_rounds(timer, plan, clock=timer.clock)
    assert len(four.values) == 10 and four.alone == 8
    assert four.measured({"speedup"})["rounds_info"]["alone_seconds"] == 8.0
