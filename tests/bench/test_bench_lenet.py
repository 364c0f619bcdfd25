"""Benchmark: the tutorial's loop (DataLoader + ToTensor + train_ch5) vs this harness's loop, in one run.

Each round trains C1's LeNet (Adam lr 0.001, batch 256) for one epoch of the real Fashion-MNIST with each loop,
alternating them so that both see the same machine state, from the same initial weights. pytest-benchmark
times the rounds; ``extra_info`` holds each loop's training examples/s (best and median over the rounds),
their ratio, and the accuracies after the epoch. Run with ``pytest --benchmark-only tests/bench``.
"""

from __future__ import annotations

import os
import statistics

import pytest
import torch

from harness import data as D
from harness.models import build
from harness.train import train_fast, train_tutorial

ROUNDS = int(os.environ.get("LENET_BENCH_ROUNDS", "3"))
TARGET_RATIO = 4.0  # issue 3: the harness loop should train >= 4x the tutorial's examples/s on the 2-core CPU


@pytest.fixture(scope="module")
def fashion_mnist():
    try:
        return D.load_fashion_mnist()
    except D.DataError as err:
        pytest.skip(str(err))


@pytest.mark.benchmark(group="lenet-loops")
def test_bench_harness_loop_vs_tutorial_loop(benchmark, fashion_mnist):
    kw = dict(optimizer="adam", lr=0.001, batch_size=256, epochs=1)
    seen: dict[str, list] = {"harness": [], "tutorial": []}

    def one_round():
        torch.manual_seed(0)
        seen["tutorial"].append(train_tutorial(build("lenet_nopad_max"), str(fashion_mnist.root), num_workers=4,
                                               style="ch5", **kw))
        torch.manual_seed(0)
        seen["harness"].append(train_fast(build("lenet_nopad_max"), fashion_mnist, seed=0, **kw))

    benchmark.pedantic(one_round, rounds=ROUNDS, iterations=1, warmup_rounds=0)
    eps = {k: [r.examples_per_sec for r in v] for k, v in seen.items()}
    ratios = [h / t for h, t in zip(eps["harness"], eps["tutorial"])]
    info = {
        "device": "cpu", "threads": torch.get_num_threads(), "rounds": ROUNDS, "tutorial_workers": 4,
        "harness_examples_per_sec_best": max(eps["harness"]),
        "tutorial_examples_per_sec_best": max(eps["tutorial"]),
        "harness_examples_per_sec_median": statistics.median(eps["harness"]),
        "tutorial_examples_per_sec_median": statistics.median(eps["tutorial"]),
        "ratio_best": max(eps["harness"]) / max(eps["tutorial"]),
        "ratio_median": statistics.median(ratios),
        "ratio_per_round": [round(r, 3) for r in ratios],
        "harness_test_acc_after_1_epoch": seen["harness"][0].final.test_acc,
        "tutorial_test_acc_after_1_epoch": seen["tutorial"][0].final.test_acc,
    }
    benchmark.extra_info.update(info)
    print("\n" + "\n".join(f"{k}: {v:.4g}" if isinstance(v, float) else f"{k}: {v}" for k, v in info.items()))
    # the same optimisation from the same weights: one epoch lands in the same place (shuffles differ)
    assert abs(info["harness_test_acc_after_1_epoch"] - info["tutorial_test_acc_after_1_epoch"]) < 0.05
    # A benchmark, not a timed test: the ratio is measured and reported against the target, never asserted.
    met = "met" if info["ratio_best"] >= TARGET_RATIO else "NOT met"
    benchmark.extra_info["target_ratio"] = TARGET_RATIO
    print(f"harness loop {info['ratio_best']:.2f}x the tutorial's loop (target >= {TARGET_RATIO:g}x: {met})")
