"""What the tests train and compare with: the pages' LeNets by name, and whole trainings of either loop."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from harness.book.data import FashionMNIST
from harness.book.models import LeNet, lenet_d2l
from harness.book.train import HarnessLoop, TrainResult, TutorialLoop, end_epoch


def lenet_pad_max() -> nn.Sequential:
    """The notebook's LeNet (C3's study notebook): padding 2 and max pooling (C3)."""
    return nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.Sigmoid(),
        nn.MaxPool2d(2, 2),
        nn.Conv2d(6, 16, 5), nn.Sigmoid(),
        nn.MaxPool2d(2, 2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(),
        nn.Linear(120, 84), nn.Sigmoid(),
        nn.Linear(84, 10),
    )


# the pages' LeNets, under the names of the networks harness.book.nets builds from its vocabulary
MODELS: dict[str, Callable[[], nn.Module]] = {
    "lenet_nopad_max": LeNet,
    "lenet_pad2_avg": lenet_d2l,
    "lenet_pad2_max": lenet_pad_max,
}


def run_epochs(loop: HarnessLoop | TutorialLoop, epochs: int) -> TrainResult:
    """Train ``loop`` for ``epochs`` epochs, evaluating after each; its result."""
    for _ in range(epochs):
        end_epoch(loop.result, loop.epoch(), None, None)
    return loop.result


def train_fast(net: nn.Module, data: FashionMNIST, *, epochs: int, **kw: Any) -> TrainResult:
    """The harness loop for ``epochs`` epochs (``kw``: ``HarnessLoop``'s settings)."""
    return run_epochs(HarnessLoop(net, data, **kw), epochs)


def train_tutorial(net: nn.Module, root: str, *, epochs: int, **kw: Any) -> TrainResult:
    """The book's loop for ``epochs`` epochs (``kw``: ``TutorialLoop``'s settings)."""
    return run_epochs(TutorialLoop(net, root, **kw), epochs)
