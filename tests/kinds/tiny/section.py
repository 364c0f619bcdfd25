"""Its tables and report section."""

from __future__ import annotations

import pandas as pd

from harness.reading.markdown import md_table


def tables(view) -> dict[str, pd.DataFrame]:
    return {"tiny": pd.concat([view.table("tiny", device, seed).assign(device=device, seed=int(seed))
                               for device, seeds in view.measured.items() for seed in seeds], ignore_index=True)}


def section(view) -> str:
    return "### The tiny kind's own section\n\n" + md_table(tables(view)["tiny"])
