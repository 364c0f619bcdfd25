"""What the tests train and compare with: the pages' LeNets by name, and whole trainings of either loop."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from harness.book import modern
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


def _b1() -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(1, 64, kernel_size=7, stride=2, padding=3), nn.BatchNorm2d(64), nn.ReLU(),
                         nn.MaxPool2d(kernel_size=3, stride=2, padding=1))


def resnet18() -> nn.Sequential:
    """d2l v2 7.6.3's ResNet-18 as the page assembles it."""
    b1 = _b1()
    b2 = nn.Sequential(*modern.resnet_block(64, 64, 2, first_block=True))
    b3 = nn.Sequential(*modern.resnet_block(64, 128, 2))
    b4 = nn.Sequential(*modern.resnet_block(128, 256, 2))
    b5 = nn.Sequential(*modern.resnet_block(256, 512, 2))
    return nn.Sequential(b1, b2, b3, b4, b5, nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten(), nn.Linear(512, 10))


def densenet() -> nn.Sequential:
    """d2l v2 7.7.4's DenseNet as the page assembles it."""
    b1 = _b1()
    num_channels, growth_rate = 64, 32
    num_convs_in_dense_blocks = [4, 4, 4, 4]
    blks = []
    for i, num_convs in enumerate(num_convs_in_dense_blocks):
        blks.append(modern.DenseBlock(num_convs, num_channels, growth_rate))
        num_channels += num_convs * growth_rate
        if i != len(num_convs_in_dense_blocks) - 1:
            blks.append(modern.transition_block(num_channels, num_channels // 2))
            num_channels = num_channels // 2
    return nn.Sequential(b1, *blks, nn.BatchNorm2d(num_channels), nn.ReLU(), nn.AdaptiveAvgPool2d((1, 1)),
                         nn.Flatten(), nn.Linear(num_channels, 10))


# the pages' later networks, by the names harness.book.nets gives them, with one input example's shape
BOOK_NETS: dict[str, tuple[Callable[[], nn.Module], tuple[int, int, int]]] = {
    "bn_lenet": (lambda: modern.bn_lenet(norm=None), (1, 28, 28)),
    "bn_lenet_scratch": (modern.bn_lenet, (1, 28, 28)),
    "resnet18": (resnet18, (1, 96, 96)),
    "densenet": (densenet, (1, 96, 96)),
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
