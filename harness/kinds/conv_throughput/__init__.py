"""D2: the loop, unfold, a strided einsum, the library and torch.compile convolving a grid of shapes."""

from harness.kinds.base import Kind
from harness.kinds.conv_throughput.measure import METRICS, Settings, run
from harness.kinds.conv_throughput.section import derive, section, speedups, tables

KIND = Kind(name="conv_throughput", settings=Settings, metrics=METRICS, measure=run, tables=tables, section=section,
            derive=derive, speedups=speedups)
