"""B1-B5: learn a kernel from what it does to an image, by plain gradient descent.

``layer: handwritten`` is Dive-into-DL-PyTorch 5.1.4 (Conv2D with a bias, loop corr2d); ``layer: nn_conv2d`` is
d2l v2 6.2.4 (nn.Conv2d without bias on 4-D tensors). The image is the pages' edge image, its transpose (d2l 6.2's
exercise) or a diagonal edge; the target is ``corr2d(image, target_kernel)`` for a kernel of any shape. The loss is
the summed squared error, as both pages compute it, recorded at every step.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal

import torch
from pydantic import Field, field_validator, model_validator
from torch import nn

from harness.book.models import Conv2D
from harness.book.ops import corr2d
from harness.kinds.base import Metric
from harness.kinds.worked_examples.measure import edge_image
from harness.schema import Strict

if TYPE_CHECKING:
    from harness.store.tracking import Recorder


IMAGES = ("edge", "transposed", "diagonal")


def diagonal_image(n: int = 8) -> torch.Tensor:
    """An n x n image, white above the diagonal and black on and below it: an edge at 45 degrees."""
    return torch.triu(torch.ones(n, n), diagonal=1)


def image(name: str) -> torch.Tensor:
    """The spec's input image by name."""
    return {"edge": edge_image, "transposed": lambda: edge_image().t(), "diagonal": diagonal_image}[name]()


class Settings(Strict):
    layer: Literal["handwritten", "nn_conv2d"]
    image: Literal["edge", "transposed", "diagonal"] = "edge"
    init: Literal["randn", "rand", "default"] = "randn"
    target_kernel: list[list[float]] = Field(default=[[1.0, -1.0]])
    lr: float = Field(gt=0, le=10)
    steps: int = Field(ge=1, le=100_000)
    checkpoints: list[int] = Field(default_factory=list, description="steps whose loss the page printed")

    @field_validator("target_kernel")
    @classmethod
    def _kernel(cls, k: list[list[float]]) -> list[list[float]]:
        if not k or not k[0] or any(len(row) != len(k[0]) for row in k):
            raise ValueError("target_kernel must be a rectangular kernel: rows of equal length, like [[1, -1]] "
                             "or [[1], [-1]]")
        if not all(math.isfinite(v) for row in k for v in row):
            raise ValueError("target_kernel must hold finite numbers")
        return k

    @model_validator(mode="after")
    def _init_fits_layer(self) -> Settings:
        allowed = ("randn", "rand") if self.layer == "handwritten" else ("default",)
        if self.init not in allowed:
            raise ValueError(f"init {self.init!r} does not fit layer {self.layer!r} (use {' or '.join(allowed)})")
        if any(not 1 <= c <= self.steps for c in self.checkpoints):
            raise ValueError(f"checkpoints must lie in [1, steps={self.steps}]")
        h, w = image(self.image).shape
        if len(self.target_kernel) > h or len(self.target_kernel[0]) > w:
            raise ValueError(f"target_kernel {self.kernel_size[0]}x{self.kernel_size[1]} is larger than the "
                             f"{self.image} image ({h}x{w})")
        return self

    @property
    def kernel_size(self) -> tuple[int, int]:
        return len(self.target_kernel), len(self.target_kernel[0])


METRICS: tuple[Metric, ...] = (
    Metric("loss", "", "lower", "summed squared error at each step (a curve, one point a step)"),
    Metric("initial_loss", "", "lower", "the loss at the first step"),
    Metric("final_loss", "", "lower", "the loss at the last step"),
    Metric("loss_at_checkpoints", "", "lower", "the loss at each of the spec's checkpoint steps"),
    Metric("loss_drop_orders", "", "higher", "log10(initial loss / final loss), at most 99"),
    Metric("kernel", "", "none", "the learned kernel"),
    Metric("bias", "", "none", "the learned bias (0 for a layer without one)"),
    Metric("kernel_max_abs_error", "", "lower", "largest |learned kernel - target kernel|"),
    Metric("kernel_sum", "", "none", "the sum of the learned kernel's weights"),
    Metric("target_max_abs", "", "none", "largest |corr2d(image, target kernel)|: the target's strongest response"),
    Metric("output_max_abs", "", "none", "largest |output| of the learned kernel and bias on the image"),
)


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
