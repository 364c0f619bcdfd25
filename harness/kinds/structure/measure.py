"""E1-E6 and EX1-EX4: the modern CNNs' structure, each block's output shape and the parameter count.

The book's check, as d2l 7.1-7.4 print it: a random example pushed through the network one top-level layer (or
block) at a time, printing each output shape. The FLOP per layer come from ``torch.utils.flop_counter``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd
import torch

from harness.book import nets
from harness.kinds.structure.settings import Settings

if TYPE_CHECKING:
    from harness.store.tracking import Recorder


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
