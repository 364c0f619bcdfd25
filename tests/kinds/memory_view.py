"""A recorded spec run held in memory: what a kind's ``tables(view)`` and ``section(view)`` read, without a store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from harness.reading.view import RunView


class MemoryView:
    """``RunView``'s reading side over units measured in the test: ``units`` maps (device, seed) to what the kind's
    ``run`` returned and the ``MemoryRecorder`` it logged to; ``spec`` is the resolved spec (``Spec.resolved()``)."""

    figure_path = RunView.figure_path

    def __init__(self, spec: dict[str, Any], units: dict[tuple[str, int], tuple[dict[str, Any], Any]],
                 figures: Path | None = None):
        self.spec, self.name, self.kind = spec, spec["name"], spec["kind"]
        self.figures, self.suffix, self.run_id = figures, "", ""  # no recorded run: its figures stay files
        self.devices = list(dict.fromkeys(device for device, _ in units))
        self.measured = {d: {str(s): values for (dd, s), (values, _) in units.items() if dd == d}
                         for d in self.devices}
        self._recorders = {(d, str(s)): rec for (d, s), (_, rec) in units.items()}

    def series(self, name: str, device: str, seed: int | str) -> pd.DataFrame:
        steps, values = self._recorders[(device, str(seed))].series[name]
        return pd.DataFrame({"step": steps, "value": values})

    def table(self, name: str, device: str, seed: int | str) -> pd.DataFrame:
        return self._recorders[(device, str(seed))].tables[name].copy()


def markdown_rows(text: str) -> int:
    """The rows of the markdown tables in ``text`` (header and rule lines included)."""
    return sum(line.startswith("|") for line in text.splitlines())
