"""H4: the timing rule's own error rates, on synthetic rounds with a known truth (a self-check)."""

from harness.kinds.base import Kind
from harness.kinds.calibration.measure import METRICS, Settings, run
from harness.kinds.calibration.section import section, tables

KIND = Kind(name="calibration", settings=Settings, metrics=METRICS, measure=run, tables=tables, section=section)
