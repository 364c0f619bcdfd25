"""D2: the loop, unfold, a strided einsum, the library and torch.compile convolving a grid of shapes."""

from harness.kinds.base import Kind, parts
from harness.kinds.conv_throughput.settings import METRICS, Settings

KIND = Kind(name="conv_throughput", settings=Settings, metrics=METRICS, **parts(__name__, "derive", "speedups"))
