"""B1-B5: a convolution kernel learned by gradient descent from what it does to an image."""

from harness.kinds.base import Kind
from harness.kinds.edge_kernel.measure import METRICS, Settings, run
from harness.kinds.edge_kernel.section import section, tables

KIND = Kind(name="edge_kernel", settings=Settings, metrics=METRICS, measure=run, tables=tables, section=section,
            curves=("loss",))
