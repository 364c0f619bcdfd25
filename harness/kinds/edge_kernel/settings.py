"""The edge kernel's settings and metric table.

Without torch: validating a spec reads this, not the measurement (``measure``).
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, field_validator, model_validator

from harness.kinds.base import Metric
from harness.schema import Strict

IMAGES = ("edge", "transposed", "diagonal")
IMAGE_SHAPES = {"edge": (6, 8), "transposed": (8, 6), "diagonal": (8, 8)}  # (height, width) of ``measure.image``


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
        h, w = IMAGE_SHAPES[self.image]
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
