"""E1-E6 and EX1-EX4: the modern CNNs' output shape block by block, parameter count and forward FLOP."""

from harness.kinds.base import Kind
from harness.kinds.structure.measure import METRICS, Settings, run
from harness.kinds.structure.section import section, tables

KIND = Kind(name="structure", settings=Settings, metrics=METRICS, measure=run, tables=tables, section=section)
