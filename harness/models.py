"""The chapter's models: the hand-written Conv2D layer and the LeNet variants, by name.

The code follows the pages (d2l v2 section 6.2 and 6.6; Dive-into-DL-PyTorch 5.1 and 5.5)
so it stays recognisable; ``MODELS`` maps the names a spec may choose to builders.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from harness.ops import corr2d


class Conv2D(nn.Module):
    """The hand-written 2D convolution layer: corr2d plus a scalar bias.

    ``init='randn'`` is Dive-into-DL-PyTorch 5.1 (weight and bias ~ N(0, 1));
    ``init='rand'`` is d2l v2 6.2 (weight ~ U[0, 1), bias 0).
    """

    def __init__(self, kernel_size, init: str = "randn"):
        super().__init__()
        if init == "randn":
            self.weight = nn.Parameter(torch.randn(kernel_size))
            self.bias = nn.Parameter(torch.randn(1))
        elif init == "rand":
            self.weight = nn.Parameter(torch.rand(kernel_size))
            self.bias = nn.Parameter(torch.zeros(1))
        else:
            raise ValueError(f"unknown init {init!r}")

    def forward(self, x):
        return corr2d(x, self.weight) + self.bias


class LeNet(nn.Module):
    """Dive-into-DL-PyTorch 5.5's LeNet: no padding, max pooling, fc 256-120-84-10 (C1, A13)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(1, 6, 5),  # in_channels, out_channels, kernel_size
            nn.Sigmoid(),
            nn.MaxPool2d(2, 2),  # kernel_size, stride
            nn.Conv2d(6, 16, 5),
            nn.Sigmoid(),
            nn.MaxPool2d(2, 2),
        )
        self.fc = nn.Sequential(
            nn.Linear(16 * 4 * 4, 120),
            nn.Sigmoid(),
            nn.Linear(120, 84),
            nn.Sigmoid(),
            nn.Linear(84, 10),
        )

    def forward(self, img):
        feature = self.conv(img)
        return self.fc(feature.reshape(img.shape[0], -1))


def lenet_d2l() -> nn.Sequential:
    """d2l v2 6.6's LeNet: padding 2 on the first conv, average pooling (C2, A12)."""
    return nn.Sequential(
        nn.Conv2d(1, 6, kernel_size=5, padding=2), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Conv2d(6, 16, kernel_size=5), nn.Sigmoid(),
        nn.AvgPool2d(kernel_size=2, stride=2),
        nn.Flatten(),
        nn.Linear(16 * 5 * 5, 120), nn.Sigmoid(),
        nn.Linear(120, 84), nn.Sigmoid(),
        nn.Linear(84, 10),
    )


def lenet_pad_max() -> nn.Sequential:
    """The notebook's LeNet (page 000): padding 2 and max pooling (C3)."""
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


def init_xavier(net: nn.Module) -> nn.Module:
    """d2l's train_ch6 initialisation: Xavier-uniform weights on every Linear and Conv2d."""

    def init_weights(m):
        if type(m) is nn.Linear or type(m) is nn.Conv2d:
            nn.init.xavier_uniform_(m.weight)

    return net.apply(init_weights)


MODELS: dict[str, Callable[[], nn.Module]] = {
    "lenet_nopad_max": LeNet,
    "lenet_pad2_avg": lenet_d2l,
    "lenet_pad2_max": lenet_pad_max,
}


def build(name: str) -> nn.Module:
    """A fresh model by its spec name."""
    return MODELS[name]()


def _layers(net: nn.Module) -> list[nn.Module]:
    """The leaf layers in order (LeNet's two halves joined by the flatten its forward does)."""
    return list(net) if isinstance(net, nn.Sequential) else [*net.conv, nn.Flatten(), *net.fc]


def pool_before_sigmoid(net: nn.Module) -> nn.Sequential:
    """The same network with every ``Sigmoid, MaxPool2d`` pair run as ``MaxPool2d, Sigmoid``: the harness's fast order.

    The sigmoid is increasing, so the max of the sigmoids is the sigmoid of the max: the outputs are identical (bit
    for bit, tested) while the sigmoid and its gradient run on a quarter of the values. The gradients are the same
    except where two different pre-activations of one window round to the same sigmoid value (saturation), where
    the tutorial's order passes the gradient to the first of them and this order to the larger. Average pooling does
    not commute with the sigmoid and is left where it is. The layers (so the parameters) are ``net``'s own.
    """
    out: list[nn.Module] = []
    for layer in _layers(net):
        if isinstance(layer, nn.MaxPool2d) and out and isinstance(out[-1], nn.Sigmoid):
            out.insert(len(out) - 1, layer)
        else:
            out.append(layer)
    return nn.Sequential(*out)


def layer_shapes(net: nn.Module, x: torch.Tensor) -> list[tuple[str, list[int]]]:
    """d2l's layer-by-layer walk: each leaf layer's name and output shape."""
    out = []
    for layer in _layers(net):
        x = layer(x)
        out.append((layer.__class__.__name__, list(x.shape)))
    return out
