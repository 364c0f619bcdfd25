"""The structure kind's settings and metric table.

Without torch: validating a spec reads this, not the measurement (``measure``).
"""

from __future__ import annotations

from pydantic import Field, model_validator

from harness.book import nets
from harness.kinds.base import Metric
from harness.schema import Strict


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
