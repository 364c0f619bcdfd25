"""Verdicts: each comparison, aggregation over seeds, and the honest 'by how much'."""

from __future__ import annotations

import pytest

from harness.judging.stats import Interval
from harness.judging.verdict import (
    INCONCLUSIVE,
    MISSED,
    REPRODUCED,
    SKIPPED,
    check_one,
    decide,
    judge,
    judge_timing,
    skipped,
)
from harness.schema import Reference

SRC = "B1"


def ref(**kw) -> Reference:
    return Reference.model_validate({"metric": "m", "source": SRC, "basis": "chosen before measuring", **kw})


@pytest.mark.parametrize("kw,value,ok", [
    ({"equals": [[1, 2], [3, 4]]}, [[1, 2], [3, 4]], True),
    ({"equals": [[1, 2], [3, 4]]}, [[1, 2], [3, 4.0001]], False),
    ({"equals": [[1, 2]]}, [[1, 2, 3]], False),
    ({"equals": [[1, 2], [3]]}, [[1, 2], [3]], True),  # ragged lists (shape tables) compare leaf by leaf
    ({"equals": [[1, 2], [3]]}, [[1], [2, 3]], False),
    ({"near": [1, -1], "atol": 0.05}, [1.04, -0.96], True),
    ({"near": [1, -1], "atol": 0.05}, [1.06, -1.0], False),
    ({"near": 100, "rtol": 0.02}, 101.9, True),
    ({"at_most": 0.01}, 0.01, True),
    ({"at_most": 0.01}, float("nan"), False),
    ({"at_least": 2}, 1.99, False),
    ({"band": [0.7, 0.8], "tol": 0.02}, 0.815, True),
    ({"band": [0.7, 0.8], "tol": 0.02}, 0.675, False),
])
def test_check_one(kw, value, ok):
    assert check_one(ref(**kw), value)[0] is ok


def test_by_how_much():
    assert check_one(ref(at_most=1.0), 1.5) == (False, 0.5)
    assert check_one(ref(band=[0.7, 0.8], tol=0.0), 0.6)[1] == pytest.approx(0.1)


def test_all_seeds_must_hold_and_spread_is_reported():
    v = judge(ref(at_least=2), "cpu", {0: 2.5, 1: 3.0, 2: 1.5})
    assert v.status == MISSED
    assert v.detail.startswith("2/3 seeds inside; worst off by 0.5") and "range [1.5, 3]" in v.detail


def test_mean_over_seeds():
    r = ref(band=[0.70, 0.76], tol=0.01, over="mean")
    v = judge(r, "cpu", {0: 0.78, 1: 0.74, 2: 0.72})
    assert v.status == REPRODUCED and "mean inside; 2/3 seeds inside" in v.detail
    assert judge(r, "cpu", {0: 0.9, 1: 0.9, 2: 0.72}).status == MISSED


def test_skipped_carries_reason_and_gate():
    v = skipped(ref(at_most=1, gate=False), "cuda", "no GPU found")
    assert v.status == SKIPPED and v.detail == "no GPU found" and not v.gate and not v.gating_miss


def test_informational_miss_does_not_gate():
    v = judge(ref(at_most=1, gate=False), "cpu", {0: 2.0})
    assert v.status == MISSED and not v.gating_miss


@pytest.mark.parametrize("kw,low,high,status", [
    ({"at_least": 3}, 3.1, 4.0, REPRODUCED),
    ({"at_least": 3}, 2.0, 2.9, MISSED),
    ({"at_least": 3}, 2.9, 4.0, INCONCLUSIVE),
    ({"at_most": 102.4}, 70.0, 100.0, REPRODUCED),
    ({"at_most": 102.4}, 103.0, 117.0, MISSED),
    ({"at_most": 102.4}, 81.0, 117.0, INCONCLUSIVE),
    ({"band": [83, 332]}, 84.0, 100.0, REPRODUCED),
    ({"band": [83, 332], "tol": 5}, 79.0, 82.0, REPRODUCED),
    ({"band": [83, 332]}, 50.0, 60.0, MISSED),
    ({"band": [83, 332]}, 300.0, 400.0, INCONCLUSIVE),
    ({"near": 10.0, "rtol": 0.1}, 9.5, 10.5, REPRODUCED),
    ({"near": 10.0, "atol": 1}, 11.5, 12.0, MISSED),
])
def test_three_way_decision_on_an_interval(kw, low, high, status):
    iv = Interval((low + high) / 2, low, high, 8)
    assert decide(ref(**kw), iv)[0] == status


def test_decision_says_by_how_much_the_interval_misses():
    assert decide(ref(at_least=3), Interval(2.5, 2.0, 2.75, 6)) == (MISSED, 0.25)
    assert decide(ref(at_least=3), Interval(3.0, float("nan"), float("nan"), 1))[0] == INCONCLUSIVE  # one round


def test_timing_verdict_pools_seeds_and_states_its_interval():
    v = judge_timing(ref(at_least=3), "cpu", {0: [4.0, 4.2, 3.9, 4.4, 4.05], 1: [4.1, 4.0, 4.3, 3.95]}, unit="x")
    assert v.status == REPRODUCED and v.rounds == 9 and (v.low, v.high) == (3.9, 4.4)
    assert v.measured == "4.05x (95% CI 3.9-4.4, 9 rounds)" and "rounds of 2 seeds pooled" in v.detail
    assert v.basis == "chosen before measuring"
    assert judge_timing(ref(at_least=3), "cpu", {0: []}).status == SKIPPED


def test_too_few_rounds_are_inconclusive_and_say_why():
    v = judge_timing(ref(at_least=3), "cpu", {0: [4.0, 4.2, 3.9]}, unit="x")
    assert v.status == INCONCLUSIVE and v.detail == "no interval: 3 rounds, 8 needed at 95%"


@pytest.mark.parametrize("gaps,status", [
    ([0.002, -0.003, 0.001, 0.0, -0.001], REPRODUCED),  # the whole t interval within 0.01
    ([0.03, 0.025, 0.035, 0.028, 0.031], MISSED),  # the whole interval above it
    ([0.02, -0.01, 0.015, 0.0, 0.012], INCONCLUSIVE),  # straddles 0.01
    ([0.002], INCONCLUSIVE),  # one seed: no interval
])
def test_the_mean_over_seeds_judged_on_its_t_interval(gaps, status):
    v = judge(ref(band=[-0.01, 0.01], over="interval"), "cpu", dict(enumerate(gaps)))
    assert v.status == status and v.rounds == len(gaps)
    assert v.tolerance == "whole 95% CI of the mean over seeds" and "seed" in v.measured


def test_a_printed_draw_against_the_seeds_prediction_interval():
    seeds = {0: 0.80, 1: 0.81, 2: 0.79}  # mean 0.8, sd 0.01: one more seed falls in 0.8 +- 4.30 * 0.01 * 1.155
    inside = judge(ref(draw=0.779), "cpu", seeds)
    assert inside.status == REPRODUCED and inside.low == pytest.approx(0.8 - 0.0497, abs=1e-3)
    assert "the printed 0.779 lies inside" in inside.detail and inside.expected == "0.779 (one printed draw)"
    outside = judge(ref(draw=0.741), "cpu", seeds)
    assert outside.status == MISSED and "outside by" in outside.detail
    assert judge(ref(draw=0.779), "cpu", {0: 0.8}).status == INCONCLUSIVE


def test_gate_per_device():
    r = ref(at_most=102.4, gate=["cuda"])
    cpu = judge_timing(r, "cpu", {0: [100.0, 110.0, 95.0, 120.0] * 2})
    cuda = judge_timing(r, "cuda", {0: [100.0, 110.0, 95.0, 120.0] * 2})
    assert cpu.status == cuda.status == INCONCLUSIVE
    assert not cpu.gate and not cpu.gating_inconclusive and cuda.gating_inconclusive
    assert skipped(r, "cuda", "no GPU").gate and not skipped(r, "cpu", "x").gate
