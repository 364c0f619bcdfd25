"""A1-A13: the book's worked convolution, pooling and LeNet-shape examples, each value exact."""

from harness.kinds.base import Kind
from harness.kinds.worked_examples.measure import METRICS, Settings, run
from harness.kinds.worked_examples.section import section, tables

KIND = Kind(name="worked_examples", settings=Settings, metrics=METRICS, measure=run, tables=tables, section=section)
