"""the worked convolution and pooling examples, the output shapes, and library agreement.

Each example is the page's own input fed to the page's own function; the spec's references are the printed
outputs. The from-scratch operations are also checked against the library's on random inputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from harness.book.models import LeNet, layer_shapes, lenet_d2l
from harness.book.ops import corr2d, corr2d_multi_in, corr2d_multi_in_out, corr2d_multi_in_out_1x1, pool2d
from harness.kinds.base import Metric
from harness.machine.seeding import generator
from harness.schema import Strict

if TYPE_CHECKING:
    from harness.store.tracking import Recorder


Channels = Annotated[int, Field(ge=1, le=16)]
Side = Annotated[int, Field(ge=1, le=64)]
KernelSide = Annotated[int, Field(ge=1, le=8)]


class RandomCase(Strict):
    """One random check: input (C_i, H, W) against kernels (C_o, C_i, kh, kw); pools use kh x kw."""

    c_in: Channels
    height: Side
    width: Side
    c_out: Channels
    kh: KernelSide
    kw: KernelSide


class Settings(Strict):
    random_cases: list[RandomCase] = Field(default_factory=list)


def _output(name: str, meaning: str) -> Metric:
    """An example's exact output (a tensor as nested lists, a shape, a count): no direction is better."""
    return Metric(name, "", "none", meaning)


def _gap(name: str, meaning: str) -> Metric:
    """The largest absolute difference between two ways of computing the same thing: the smaller, the better."""
    return Metric(name, "", "lower", meaning)


METRICS: tuple[Metric, ...] = (
    _output("corr2d", "corr2d of the 3x3 input and the 2x2 kernel"),
    _output("edge_detect", "the 1x2 edge kernel on the stripe image"),
    _output("edge_detect_transposed", "the 1x2 edge kernel on the transposed stripe image"),
    _output("multi_in", "corr2d_multi_in of the two-channel input"),
    _output("multi_in_out", "corr2d_multi_in_out with three output channels"),
    _gap("conv1x1_abs_diff", "summed |1x1 as matrix product - 1x1 as corr2d| on a random input"),
    _output("conv_shapes_8x8", "output shapes of four paddings and strides on an 8x8 input"),
    _output("pool_max", "pool2d max of the 3x3 input"),
    _output("pool_avg", "pool2d avg of the 3x3 input"),
    _output("maxpool_w3", "nn.MaxPool2d(3) on the 4x4 input"),
    _output("maxpool_w3_p1_s2", "nn.MaxPool2d(3, padding=1, stride=2) on the 4x4 input"),
    _output("maxpool_w23_s23_p01", "nn.MaxPool2d((2, 3), stride=(2, 3), padding=(0, 1)) on the 4x4 input"),
    _output("maxpool_2ch", "nn.MaxPool2d(3, padding=1, stride=2) on two channels"),
    _output("conv_pool_shapes", "output shapes of a padded convolution and a strided pool"),
    _output("lenet_d2l_shapes", "d2l LeNet's output shape after each layer"),
    _output("lenet_55_shapes", "the 5.5 LeNet's output shape after each layer"),
    _output("lenet_55_first_linear_in", "in_features of the 5.5 LeNet's first Linear layer"),
    _gap("max_abs_diff_conv", "largest |corr2d_multi_in_out - F.conv2d| over the random cases"),
    _gap("max_abs_diff_maxpool", "largest |pool2d max - F.max_pool2d| over the random cases"),
    _gap("max_abs_diff_avgpool", "largest |pool2d avg - F.avg_pool2d| over the random cases"),
)


def edge_image() -> torch.Tensor:
    """The 6x8 image of a black stripe on white (A2)."""
    X = torch.ones((6, 8))
    X[:, 2:6] = 0
    return X


def comp_conv2d(conv2d: nn.Conv2d, X: torch.Tensor) -> list[int]:
    """d2l's helper: add batch and channel dimensions, convolve, report the spatial shape."""
    X = X.reshape((1, 1) + X.shape)
    Y = conv2d(X)
    return list(Y.reshape(Y.shape[2:]).shape)


def conv_examples() -> dict[str, Any]:
    """cross-correlation, edges, channels, 1x1, padding and stride."""
    X = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
    K = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    out: dict[str, Any] = {"corr2d": corr2d(X, K)}

    E, K_edge = edge_image(), torch.tensor([[1.0, -1.0]])
    out["edge_detect"] = corr2d(E, K_edge)
    out["edge_detect_transposed"] = corr2d(E.t(), K_edge)

    X2 = torch.tensor([[[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]],
                       [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]]])
    K2 = torch.tensor([[[0.0, 1.0], [2.0, 3.0]], [[1.0, 2.0], [3.0, 4.0]]])
    out["multi_in"] = corr2d_multi_in(X2, K2)
    out["multi_in_out"] = corr2d_multi_in_out(X2, torch.stack((K2, K2 + 1, K2 + 2), 0))

    X3, K3 = torch.normal(0, 1, (3, 3, 3)), torch.normal(0, 1, (2, 3, 1, 1))
    out["conv1x1_abs_diff"] = float(torch.abs(corr2d_multi_in_out_1x1(X3, K3) - corr2d_multi_in_out(X3, K3)).sum())

    X8 = torch.rand(size=(8, 8))
    out["conv_shapes_8x8"] = [
        comp_conv2d(nn.Conv2d(1, 1, kernel_size=3, padding=1), X8),
        comp_conv2d(nn.Conv2d(1, 1, kernel_size=(5, 3), padding=(2, 1)), X8),
        comp_conv2d(nn.Conv2d(1, 1, kernel_size=3, padding=1, stride=2), X8),
        comp_conv2d(nn.Conv2d(1, 1, kernel_size=(3, 5), padding=(0, 1), stride=(3, 4)), X8),
    ]
    return out


def pool_examples() -> dict[str, Any]:
    """pool2d, nn.MaxPool2d with padding and stride, two channels, shapes."""
    X = torch.tensor([[0.0, 1.0, 2.0], [3.0, 4.0, 5.0], [6.0, 7.0, 8.0]])
    out: dict[str, Any] = {"pool_max": pool2d(X, (2, 2)), "pool_avg": pool2d(X, (2, 2), "avg")}

    X = torch.arange(16, dtype=torch.float32).reshape((1, 1, 4, 4))
    out["maxpool_w3"] = nn.MaxPool2d(3)(X)[0, 0]
    out["maxpool_w3_p1_s2"] = nn.MaxPool2d(3, padding=1, stride=2)(X)[0, 0]
    out["maxpool_w23_s23_p01"] = nn.MaxPool2d((2, 3), stride=(2, 3), padding=(0, 1))(X)[0, 0]
    X = torch.cat((X, X + 1), 1)
    out["maxpool_2ch"] = nn.MaxPool2d(3, padding=1, stride=2)(X)[0]

    conv = nn.Conv2d(2, 3, (3, 5), padding=(1, 2))
    pool = nn.MaxPool2d(3, padding=1, stride=(2, 1))
    out["conv_pool_shapes"] = [list(conv(torch.rand(4, 2, 3, 5)).shape),
                               list(pool(torch.rand(1, 2, 4, 4)).shape)]
    return out


def lenet_examples() -> dict[str, Any]:
    """LeNet's layer-by-layer shapes and the 5.5 LeNet's first Linear layer."""
    X = torch.rand(size=(1, 1, 28, 28), dtype=torch.float32)
    net = LeNet()
    return {
        "lenet_d2l_shapes": [shape for _, shape in layer_shapes(lenet_d2l(), X)],
        "lenet_55_shapes": [shape for _, shape in layer_shapes(net, X)],
        "lenet_55_first_linear_in": net.fc[0].in_features,
    }


def library_agreement(cases: list[RandomCase], seed: int) -> dict[str, float]:
    """Largest gap between the tutorial's loops and the library ops on random inputs."""
    g = generator(seed)
    gaps = {"max_abs_diff_conv": 0.0, "max_abs_diff_maxpool": 0.0, "max_abs_diff_avgpool": 0.0}
    for c in cases:
        if c.kh > c.height or c.kw > c.width:
            continue
        X = torch.randn(c.c_in, c.height, c.width, generator=g)
        K = torch.randn(c.c_out, c.c_in, c.kh, c.kw, generator=g)
        mine, lib = corr2d_multi_in_out(X, K), F.conv2d(X[None], K)[0]
        gaps["max_abs_diff_conv"] = max(gaps["max_abs_diff_conv"], float((mine - lib).abs().max()))
        for mode, fn in (("max", F.max_pool2d), ("avg", F.avg_pool2d)):
            mine = pool2d(X[0], (c.kh, c.kw), mode)
            lib = fn(X[0][None, None], (c.kh, c.kw), stride=1)[0, 0]
            key = f"max_abs_diff_{mode}pool"
            gaps[key] = max(gaps[key], float((mine - lib).abs().max()))
    return gaps


def run(settings: Settings, rec: Recorder) -> dict[str, Any]:
    """Run every worked example; the spec's references pick which ones it checks."""
    measured = {**conv_examples(), **pool_examples(), **lenet_examples(),
                **library_agreement(settings.random_cases, rec.seed)}
    measured = {k: v.tolist() if isinstance(v, torch.Tensor) else v for k, v in measured.items()}
    rec.log_json("outputs", measured)
    return measured
