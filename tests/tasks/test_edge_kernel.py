"""B1-B3: the loss falls by orders of magnitude, the kernel is learned, and runs are deterministic."""

from __future__ import annotations

import torch

from harness.ops import corr2d
from harness.seeding import seed_everything
from harness.tasks.edge_kernel import Settings, train_handwritten, train_nn_conv2d
from harness.tasks.worked_examples import edge_image


def train(layer: str, init: str, lr: float, steps: int, seed: int, target=((1.0, -1.0),)):
    X = edge_image()
    Y = corr2d(X, torch.tensor(target))
    settings = Settings(layer=layer, init=init, lr=lr, steps=steps, target_kernel=[list(target[0])])
    seed_everything(seed)
    fn = train_handwritten if layer == "handwritten" else train_nn_conv2d
    return fn(X, Y, settings)


def test_handwritten_learns_edge_kernel_b1():
    for seed in range(3):
        losses, conv = train("handwritten", "randn", 0.01, 20, seed)
        assert len(losses) == 20 and losses[-1] < losses[0] / 100
        assert torch.allclose(conv.weight.data, torch.tensor([[1.0, -1.0]]), atol=0.2)
        assert abs(float(conv.bias.detach())) < 0.05


def test_longer_training_converges_to_the_kernel():
    losses, conv = train("handwritten", "randn", 0.01, 200, seed=0)
    assert losses[-1] < 1e-8
    assert torch.allclose(conv.weight.data, torch.tensor([[1.0, -1.0]]), atol=1e-4)


def test_nn_conv2d_learns_edge_kernel_b2():
    losses, conv = train("nn_conv2d", "default", 0.03, 10, seed=0)
    assert losses[-1] < losses[0] / 10
    assert torch.allclose(conv.weight.data.reshape(1, 2), torch.tensor([[1.0, -1.0]]), atol=0.15)


def test_large_target_curve_b3():
    losses, conv = train("handwritten", "randn", 0.01, 100, seed=0, target=((1000.0, -0.1),))
    assert 1.5e6 < losses[4] < 1.7e6 and 10 < losses[49] < 12 and losses[-1] < 5e-4
    assert abs(float(conv.weight.detach()[0, 1]) + 0.1) < 0.01


def test_same_seed_same_curve_other_seed_other_curve():
    a, _ = train("handwritten", "randn", 0.01, 20, seed=7)
    b, _ = train("handwritten", "randn", 0.01, 20, seed=7)
    c, _ = train("handwritten", "randn", 0.01, 20, seed=8)
    assert a == b and a != c
