"""A1-A15: the book's worked convolution, pooling, LeNet-shape, batch-norm and skip-block examples."""

from harness.kinds.base import Kind
from harness.kinds.worked_examples.measure import METRICS, Settings, run
from harness.kinds.worked_examples.section import section, tables

KIND = Kind(name="worked_examples", settings=Settings, metrics=METRICS, measure=run, tables=tables, section=section)
