"""the worked convolution, pooling, batch-norm and skip-block examples, the output shapes, and library agreement.

Each example is the page's own input fed to the page's own function; the spec's references are the printed
outputs. The from-scratch operations are also checked against the library's on random inputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import nn

from harness.book import modern
from harness.book.models import LeNet, layer_shapes, lenet_d2l
from harness.book.ops import corr2d, corr2d_multi_in, corr2d_multi_in_out, corr2d_multi_in_out_1x1, edge_image, pool2d
from harness.kinds.worked_examples.settings import RandomCase, Settings
from harness.machine.seeding import generator

if TYPE_CHECKING:
    from harness.store.tracking import Recorder


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
    out["maxpool_w24_p12_s23"] = nn.MaxPool2d((2, 4), padding=(1, 2), stride=(2, 3))(X)[0, 0]  # the port's 5.4
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


@torch.no_grad()
def skip_examples() -> dict[str, Any]:
    """The residual and dense blocks on the pages' random inputs: the shapes they print."""
    X = torch.rand(4, 3, 6, 6)
    Y = modern.DenseBlock(2, 3, 10)(torch.randn(4, 3, 8, 8))
    return {"residual_shapes": [list(modern.Residual(3, 3)(X).shape),
                                list(modern.Residual(3, 6, use_1x1conv=True, strides=2)(X).shape)],
            "dense_block_shapes": [list(Y.shape), list(modern.transition_block(23, 10)(Y).shape)]}


@torch.no_grad()
def batch_norm_examples(seed: int) -> dict[str, float]:
    """The book's from-scratch batch norm against the library's: training outputs, moving statistics, BN-LeNets."""
    g = generator(seed)
    out = {"bn_train_max_abs_diff": 0.0, "bn_moving_mean_max_abs_diff": 0.0}
    for shape in ((16, 6, 10, 10), (256, 84)):
        X = torch.randn(shape, generator=g) * 3 + 1
        mine = modern.BatchNorm(shape[1], num_dims=len(shape))
        lib = nn.BatchNorm2d(shape[1]) if len(shape) == 4 else nn.BatchNorm1d(shape[1])
        out["bn_train_max_abs_diff"] = max(out["bn_train_max_abs_diff"], float((mine(X) - lib(X)).abs().max()))
        gap = float((mine.moving_mean.flatten() - lib.running_mean).abs().max())
        out["bn_moving_mean_max_abs_diff"] = max(out["bn_moving_mean_max_abs_diff"], gap)
    mine, lib = modern.BatchNorm(3, num_dims=4), nn.BatchNorm2d(3)
    X = torch.randn((2, 3, 2, 2), generator=g)
    mine(X), lib(X)
    out["bn_moving_var_ratio"] = float(((lib.running_var - 0.9) / (mine.moving_var.flatten() - 0.9)).mean())
    torch.manual_seed(seed)
    scratch = modern.bn_lenet()
    torch.manual_seed(seed)
    concise = modern.bn_lenet(norm=None)
    X = torch.rand((256, 1, 28, 28), generator=g)
    out["bn_lenet_max_abs_diff"] = float((scratch(X) - concise(X)).abs().max())
    return out


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
    measured = {**conv_examples(), **pool_examples(), **lenet_examples(), **skip_examples(),
                **batch_norm_examples(rec.seed), **library_agreement(settings.random_cases, rec.seed)}
    measured = {k: v.tolist() if isinstance(v, torch.Tensor) else v for k, v in measured.items()}
    rec.log_json("outputs", measured)
    return measured
