"""Benchmark: each of the harness loop's switches against the loop as it ships, interleaved an epoch each a round.

Issue 27's rule for speed-ups: a change is kept only if an interleaved ratio shows that it wins. Each case trains two
harness loops from the same weights, the shipped one and one with a single switch changed, an epoch of each a round
(training only), and records the ratio shipped / variant of examples/s in every round, its 95% interval over the
rounds (``harness.judging.stats.rounds_interval``) and what the interval says: the shipped setting wins (the whole
interval above 1), loses (below 1) or is undecided. Recorded in ``extra_info``, never asserted.
"""

from __future__ import annotations

import pytest
import torch

from harness.book import nets
from harness.book.models import init_xavier
from harness.book.train import HarnessLoop
from harness.judging.stats import METHOD, rounds_interval

ROUNDS = 8  # the fewest that give an interval at 95%
C2 = {"model": "lenet_pad2_avg", "lr": 0.9}
BN = {"model": "bn_lenet", "lr": 1.0}
CASES = {  # id: (network, the switch as the shipped loop has it, the variant)
    "c2-fold-4-vs-1": (C2, {"fold": 4}, {"fold": 1}),
    "c2-fold-4-vs-8": (C2, {"fold": 4}, {"fold": 8}),
    "bn-lenet-fold-1-vs-4": (BN, {"fold": None}, {"fold": 4}),  # by default batch norm is not folded
    "c2-channels-last-vs-contiguous": (C2, {"channels_last": True}, {"channels_last": False}),
    "c2-fused-sgd-vs-foreach": (C2, {"fused": True}, {"fused": False}),
    "c2-eager-vs-compiled": (C2, {"compile": False}, {"compile": True}),
}


def _loop(net_settings: dict, data, subset: int | None, **switch) -> HarnessLoop:
    torch.manual_seed(0)
    net = init_xavier(nets.build(net_settings["model"], (1, 28, 28)))
    return HarnessLoop(net, data, optimizer="sgd", lr=net_settings["lr"], batch_size=256, seed=0,
                       train_subset=subset, **switch)


@pytest.mark.benchmark(group="loop-switches")
@pytest.mark.parametrize("case", sorted(CASES))
def test_bench_each_switch_against_the_shipped_loop(benchmark, fashion_mnist, case):
    net, shipped, variant = CASES[case]
    if benchmark.disabled and variant.get("compile"):
        pytest.skip("compiling takes longer than the default test run should")
    subset = 2560 if benchmark.disabled else None  # the default test run: ten batches, to check the body runs
    loops = {"shipped": _loop(net, fashion_mnist, subset, **shipped),
             "variant": _loop(net, fashion_mnist, subset, **variant)}
    if variant.get("compile"):  # its compilations (the full batch, then the last, shorter one) are not the epochs'
        loops["variant"].epoch(evaluate_test=False)
        loops["variant"].epoch(evaluate_test=False)
    speed: dict[str, list[float]] = {"shipped": [], "variant": []}

    def one_round() -> None:
        for name, loop in loops.items():
            speed[name].append(loop.epoch(evaluate_test=False).examples_per_s)

    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1, warmup_rounds=0)
    ratios = [s / v for s, v in zip(speed["shipped"], speed["variant"])]
    iv = rounds_interval(ratios, 0.95)
    says = ("undecided" if not iv.defined or iv.low <= 1 <= iv.high
            else "the shipped setting wins" if iv.low > 1 else "the variant wins")
    benchmark.extra_info.update({
        "case": case, "shipped": shipped, "variant": variant, "threads": torch.get_num_threads(),
        "shipped_examples_per_s_per_round": [round(v, 1) for v in speed["shipped"]],
        "variant_examples_per_s_per_round": [round(v, 1) for v in speed["variant"]],
        "ratio_per_round": [round(r, 3) for r in ratios],
        "ratio": iv.as_dict() | {"text": iv.text("x"), "method": METHOD}, "says": says})
    print(f"\n{case}: shipped / variant examples/s {iv.text('x')}: {says}")
    assert all(r > 0 for r in ratios)
