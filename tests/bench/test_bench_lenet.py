"""Benchmark: the tutorial's loop (DataLoader + ToTensor + train_ch5) vs this harness's loop, in one run.

The loops of the ``lenet-loops`` spec (C1's LeNet, Adam lr 0.001, batch 256, on the real Fashion-MNIST) run
interleaved from the same initial weights, an epoch of each a round (``tests/bench/interleaved.py``).
Run with ``pytest --benchmark-only tests/bench``.
"""

from __future__ import annotations

import pytest

from tests.bench.interleaved import interleaved


@pytest.mark.benchmark(group="lenet-loops")
def test_bench_harness_loop_vs_tutorial_loop(benchmark, fashion_mnist):
    _, first = interleaved(benchmark, "studies/lenet-loops.yaml", fashion_mnist)
    # the same optimisation from the same weights: one epoch lands in the same place (shuffles differ)
    assert abs(first["harness"].test_acc - first["tutorial"].test_acc) < 0.05
    # A benchmark, not a timed test: the verdict is recorded, never asserted.
