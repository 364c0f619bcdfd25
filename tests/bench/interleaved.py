"""Two loops of a lenet spec timed against each other in one benchmark: an epoch of each a round, interleaved.

pytest-benchmark times the spec's first rounds; while a gating speed-up claim is inconclusive, more rounds follow, up
to the spec's budget, as ``harness run`` does. ``extra_info`` holds every round's examples/s and ratio, the ratio's
interval and the verdict of each speed-up reference: the same story as the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from harness.book.train import EpochStats
from harness.execution.units import plan_for
from harness.judging.rounds import Rounds, run_rounds
from harness.judging.stats import METHOD, rounds_interval
from harness.judging.verdict import judge_timing
from harness.kinds.training.measure import close_loops, make_loops
from harness.kinds.training.settings import other_loop
from harness.machine import device as devices
from harness.specs.spec import load_spec

EXPERIMENTS = Path(__file__).resolve().parents[2] / "experiments"


def interleaved(benchmark, spec_file: str, data) -> tuple[dict[str, Any], dict[str, EpochStats]]:
    """Benchmark the spec's two loops on the CPU; returns ``extra_info`` and each loop's first-epoch stats."""
    spec = load_spec(EXPERIMENTS / spec_file)
    plan = plan_for(spec, "cpu")
    loops = make_loops(spec.settings, data, seed=0, device="cpu", max_epochs=plan.policy.max_rounds)
    other = other_loop(loops)
    first: dict[str, EpochStats] = {}

    def one_round(i: int) -> dict[str, float]:
        eps = {}
        for name, loop in loops.items():
            stats = loop.epoch(evaluate_test=i == 0)
            eps[f"{name}.examples_per_s"] = stats.examples_per_s
            if i == 0:
                first[name] = stats
        return eps | {"speedup": eps["harness.examples_per_s"] / eps[f"{other}.examples_per_s"]}

    rounds = Rounds()

    def timed_round() -> None:
        clock = devices.get("cpu").clock
        t0 = clock()
        rounds.values.append(one_round(len(rounds.values)))
        rounds.seconds.append(clock() - t0)

    try:
        benchmark.pedantic(timed_round, rounds=plan.policy.rounds, iterations=1, warmup_rounds=0)
        if not benchmark.disabled:  # --benchmark-disable (nox -s tests): one round, for the checks
            run_rounds(one_round, plan, done=rounds)
    finally:
        close_loops(loops)
    ratios = rounds.series("speedup")
    iv = rounds_interval(ratios, plan.policy.confidence)
    verdicts = [judge_timing(ref, "cpu", {0: ratios}, unit="x", confidence=plan.policy.confidence)
                for ref in spec.references if ref.metric == "speedup"]
    info = {
        "spec": spec.name, "device": "cpu", "threads": torch.get_num_threads(), "loops": list(loops),
        "rounds": len(ratios), "rounds_timed_by_pytest_benchmark": plan.policy.rounds, "stop": rounds.stop,
        **{f"{name}_examples_per_s_per_round": [round(v, 1) for v in rounds.series(f"{name}.examples_per_s")]
           for name in loops},
        "ratio_per_round": [round(r, 3) for r in ratios],
        "ratio": iv.as_dict() | {"text": iv.text("x"), "method": METHOD},
        "verdicts": [{"claim": f"speedup {v.expected}", "gate": v.gate, "status": v.status, "detail": v.detail}
                     for v in verdicts],
        **{f"{name}_test_acc_after_1_epoch": stats.test_acc for name, stats in first.items()},
    }
    benchmark.extra_info.update(info)
    print(f"\n{spec.name}: harness loop / {other} loop: {iv.text('x')}; " + "; ".join(
        f"{i['claim']}{'' if i['gate'] else ' (info)'}: {i['status']}" for i in info["verdicts"]))
    return info, first
