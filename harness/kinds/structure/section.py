"""The structure report: the network layer by layer, and its totals."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from harness.reading.view import RunView

COLUMNS = {"output shape": "output_shape", "forward FLOP": "forward_flop"}  # the layer table as units log it


def tables(view: RunView) -> dict[str, pd.DataFrame]:
    """The layer table of the first unit: module, output shape, parameters and forward FLOP per layer."""
    device = view.devices[0]
    table = view.table("layers", device, next(iter(view.measured[device]))).rename(columns=COLUMNS)
    table["output_shape"] = table["output_shape"].map(lambda s: "x".join(map(str, s)))
    return {"layers": table[["layer", "module", "type", "output_shape", "parameters", "forward_flop"]]}


def section(view: RunView) -> str:
    """The layer table, and the network's totals."""
    from harness.reading.markdown import md_table

    device = view.devices[0]
    m = view.measured[device][next(iter(view.measured[device]))]
    shown = md_table(tables(view)["layers"], fmt={"parameters": "{:,}".format,
                                                  "forward_flop": lambda v: f"{v / 1e6:,.1f}"},
                     headers={"output_shape": "output shape", "forward_flop": "forward MFLOP"})
    return "\n".join(["### Layer by layer", "", shown, "",
                      f"Total: {m['parameters']:,} parameters, {m['forward_flop'] / 1e9:.3f} GFLOP forward per "
                      "example (multiply-add = 2 FLOP; matrix products and convolutions only).", ""])
