"""One module per kind of experiment, each providing what ``Kind`` states.

``run(settings, rec)`` runs one (device, seed) and returns the measured values by metric name (timings among them
with their rounds); ``tables(view)`` reads a recorded spec run's tables back (numbers, units in the column names:
the report's CSVs and ``harness.results.table``); ``section(view)`` renders the kind's part of the report. A kind
may also say which way its ratios improve (``DIRECTIONS``: metric -> +1 higher is better, -1 lower) and which
metrics are only computed from its timings (``DERIVED``: name prefixes), for ``harness compare``, and which metric
histories are its learning curves (``CURVES``: two runs of one seed should give them bit for bit; the report's
Determinism section checks).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from harness.schema import Strict
from harness.tasks import (
    batch_speed,
    calibration,
    conv_throughput,
    edge_kernel,
    lenet,
    modern_cnn,
    structure,
    worked_examples,
)

if TYPE_CHECKING:
    import pandas as pd

    from harness.reportkit import RunView
    from harness.tracking import Recorder


class Kind(Protocol):
    """What a kind of experiment provides."""

    KIND: str
    Settings: type[Strict]  # validates a spec's ``settings``
    METRICS: set[str]  # the names references may use
    TIMINGS: dict[str, str]  # the metrics measured in rounds (judged on their interval), with their units

    def run(self, settings: Any, rec: Recorder) -> dict[str, Any]: ...

    def tables(self, view: RunView) -> dict[str, pd.DataFrame]: ...

    def section(self, view: RunView) -> str: ...


KINDS: tuple[Kind, ...] = (worked_examples, structure, edge_kernel, conv_throughput, batch_speed, lenet, modern_cnn,
                          calibration)
TASKS: dict[str, Kind] = {m.KIND: m for m in KINDS}
