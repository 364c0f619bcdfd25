"""B1-B5: a convolution kernel learned by gradient descent from what it does to an image."""

from harness.kinds.base import Kind, parts
from harness.kinds.edge_kernel.settings import METRICS, Settings

KIND = Kind(name="edge_kernel", settings=Settings, metrics=METRICS, **parts(__name__, "locate"), curves=("loss",))
