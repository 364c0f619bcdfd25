"""E1-E4: the modern CNNs' structure: each block's output shape for the book's input, and the parameter count.

The book's check, as d2l 7.1-7.4 print it: ``X = torch.randn(1, 1, 224, 224)`` (96x96 for GoogLeNet) pushed through
the network one top-level layer (or block) at a time, printing each output shape. Exact, cheap, and run on every
device; the FLOP per layer come from ``torch.utils.flop_counter``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd
import torch
from pydantic import Field, model_validator

from harness import nets
from harness.schema import Strict

if TYPE_CHECKING:
    from harness.reportkit import RunView
    from harness.tracking import Recorder

KIND = "structure"


class Settings(Strict):
    model: nets.ModelRef = Field(description="a named network (harness.nets.NAMED) or a network definition")
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


TIMINGS: dict[str, str] = {}  # nothing here is timed
METRICS = {"block_shapes", "output_shape", "parameters", "forward_flop"}


def run(settings: Settings, rec: Recorder) -> dict[str, Any]:
    """Build the network on the unit's device, push the book's random input through it block by block."""
    shape = settings.input_shape
    net = nets.build(settings.model, shape, device=rec.device)
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


def tables(view: RunView) -> dict[str, pd.DataFrame]:
    """The layer table of the first unit: module, output shape, parameters and forward FLOP per layer."""
    device = view.devices[0]
    table = view.table("layers", device, next(iter(view.measured[device])))
    table["output shape"] = table["output shape"].map(lambda s: "x".join(map(str, s)))
    table["forward MFLOP"] = table.pop("forward FLOP") / 1e6
    return {"layers": table[["layer", "module", "type", "output shape", "parameters", "forward MFLOP"]]}


def section(view: RunView) -> str:
    """The layer table, and the network's totals."""
    from harness.reportkit import md_table

    device = view.devices[0]
    m = view.measured[device][next(iter(view.measured[device]))]
    shown = md_table(tables(view)["layers"], fmt={"parameters": "{:,}".format, "forward MFLOP": "{:,.1f}".format})
    return "\n".join(["### Layer by layer", "", shown, "",
                      f"Total: {m['parameters']:,} parameters, {m['forward_flop'] / 1e9:.3f} GFLOP forward per "
                      "example (multiply-add = 2 FLOP; matrix products and convolutions only).", ""])
