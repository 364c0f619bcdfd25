"""E1-E6 and EX1-EX4: the modern CNNs' structure, each block's output shape and the parameter count.

The book's check, as d2l 7.1-7.4 print it: a random example pushed through the network one top-level layer (or
block) at a time, printing each output shape. The FLOP per layer come from ``torch.utils.flop_counter``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd
import torch
from pydantic import Field, model_validator

from harness.book import nets
from harness.kinds.base import Metric
from harness.schema import Strict

if TYPE_CHECKING:
    from harness.store.tracking import Recorder


class Settings(Strict):
    model: nets.ModelRef = Field(description="a named network (harness.book.nets.NAMED) or a network definition")
    input: list[int] | None = Field(None, min_length=3, max_length=3, description="one example's (C, H, W); "
                                    "default: the network's own")

    @property
    def input_shape(self) -> tuple[int, ...]:
        """One example's (C, H, W): the spec's, else the network's own."""
        return tuple(self.input) if self.input else nets.input_shape(self.model)

    @model_validator(mode="after")
    def _builds(self) -> Settings:
        try:
            nets.trace(self.model, self.input_shape)
        except nets.NetError as err:
            raise ValueError(f"model.{err}") from None
        return self


METRICS: tuple[Metric, ...] = (
    Metric("block_shapes", "", "none", "the output shape after each top-level layer or block, for one example"),
    Metric("output_shape", "", "none", "the network's output shape for one example"),
    Metric("parameters", "", "none", "the network's parameter count"),
    Metric("forward_flop", "FLOP", "none", "forward FLOP per example (matrix products and convolutions)"),
)


def run(settings: Settings, rec: Recorder) -> dict[str, Any]:
    """Build the network on the unit's device, push the book's random input through it block by block."""
    shape = settings.input_shape
    net = nets.build(settings.model, shape, device=rec.device).eval()  # one example: batch norm needs eval mode
    X = torch.randn((1, *shape), device=rec.device)
    shapes = []
    with torch.inference_mode():
        for layer in net:
            X = layer(X)
            shapes.append(list(X.shape))
    table = pd.DataFrame(nets.layer_table(settings.model, shape))
    table["module"] = [type(m).__name__ for m in net]
    rec.log_table("layers", table)
    return {"block_shapes": shapes, "output_shape": shapes[-1], "parameters": nets.parameters(net),
            "forward_flop": int(table["forward FLOP"].sum())}
