"""B1-B5: learn a kernel from what it does to an image, by plain gradient descent.

``layer: handwritten`` is Dive-into-DL-PyTorch 5.1.4 (Conv2D with a bias, loop corr2d); ``layer: nn_conv2d`` is
d2l v2 6.2.4 (nn.Conv2d without bias on 4-D tensors). The image is the pages' edge image, its transpose (d2l 6.2's
exercise) or a diagonal edge; the target is ``corr2d(image, target_kernel)`` for a kernel of any shape. The loss is
the summed squared error, as both pages compute it, recorded at every step.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from harness.book.models import Conv2D
from harness.book.ops import corr2d, edge_image
from harness.kinds.edge_kernel.settings import Settings

if TYPE_CHECKING:
    from harness.store.tracking import Recorder


def diagonal_image(n: int = 8) -> torch.Tensor:
    """An n x n image, white above the diagonal and black on and below it: an edge at 45 degrees."""
    return torch.triu(torch.ones(n, n), diagonal=1)


def image(name: str) -> torch.Tensor:
    """The spec's input image by name."""
    return {"edge": edge_image, "transposed": lambda: edge_image().t(), "diagonal": diagonal_image}[name]()


def train_handwritten(X, Y, settings: Settings) -> tuple[list[float], nn.Module]:
    """The 5.1.4 loop, as printed: forward, summed squared error, manual SGD step, zero grads."""
    conv2d = Conv2D(kernel_size=settings.kernel_size, init=settings.init)
    losses = []
    for _ in range(settings.steps):
        Y_hat = conv2d(X)
        l = ((Y_hat - Y) ** 2).sum()
        l.backward()
        conv2d.weight.data -= settings.lr * conv2d.weight.grad
        conv2d.bias.data -= settings.lr * conv2d.bias.grad
        conv2d.weight.grad.fill_(0)
        conv2d.bias.grad.fill_(0)
        losses.append(l.item())
    return losses, conv2d


def train_nn_conv2d(X, Y, settings: Settings) -> tuple[list[float], nn.Module]:
    """The d2l v2 6.2.4 loop: nn.Conv2d without bias on (1, 1, H, W) tensors."""
    conv2d = nn.Conv2d(1, 1, kernel_size=settings.kernel_size, bias=False)
    X, Y = X.reshape((1, 1) + X.shape), Y.reshape((1, 1) + Y.shape)
    losses = []
    for _ in range(settings.steps):
        Y_hat = conv2d(X)
        l = (Y_hat - Y) ** 2
        conv2d.zero_grad()
        l.sum().backward()
        conv2d.weight.data[:] -= settings.lr * conv2d.weight.grad
        losses.append(l.sum().item())
    return losses, conv2d


def run(settings: Settings, rec: Recorder) -> dict[str, Any]:
    X = image(settings.image)
    K = torch.tensor(settings.target_kernel)
    Y = corr2d(X, K)
    if settings.layer == "handwritten":
        losses, conv = train_handwritten(X, Y, settings)
    else:
        losses, conv = train_nn_conv2d(X, Y, settings)
    rec.log_series("loss", losses)
    kernel = conv.weight.data.reshape(settings.kernel_size)
    bias = float(conv.bias.data) if getattr(conv, "bias", None) is not None else 0.0
    first, last = losses[0], losses[-1]
    drop = math.log10(first / last) if last > 0 else math.inf
    return {
        "initial_loss": first,
        "final_loss": last,
        "loss_at_checkpoints": [losses[c - 1] for c in settings.checkpoints],
        "loss_drop_orders": min(drop, 99.0),
        "kernel": kernel.tolist(),
        "bias": bias,
        "kernel_max_abs_error": float((kernel - K).abs().max()),
        "kernel_sum": float(kernel.sum()),
        "target_max_abs": float(Y.abs().max()),
        "output_max_abs": float((corr2d(X, kernel) + bias).abs().max()),
    }
